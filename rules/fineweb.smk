# FineWeb-Edu (Tables 2 and 6): corpus parts -> `fineweb_tokenize` jobs (each a range of
# parts; run them on as many nodes) -> the gather (the generic `fineweb_data` rule, fed by
# the spec's data_inputs: fixed-size uint16 shards and an index) -> training with random
# windows -> `fineweb_eval` (validation perplexity, the LM Evaluation Harness) -> the tables
# and the validation-loss figure. Code: nextlat/benchmarks/fineweb/.

FW = bench_cfg("fineweb")
FW_DIR = f"{OUT}/fineweb"
FW_JOB = SPECS["fineweb"].data_job(FW)  # threads, memory, time of the corpus/tokenize jobs


def fw_runs():
    return [r for r in RUNS.values() if r.benchmark == "fineweb"]


use rule benchmark_stage as fineweb_corpus with:
    output:
        corpus=directory(f"{FW_DIR}/corpus"),
    input:
        files=lambda w: FW["corpus"]["files"]["paths"] if FW["corpus"]["source"] == "files" else [],
        code=code(slice_module("fineweb", "corpus")),
    params:
        benchmark="fineweb",
        stage="corpus:make_corpus",
        corpus=lambda w: SPECS["fineweb"].corpus_config(FW["corpus"]),
    log:
        f"{OUT}/logs/data/fineweb/corpus.log",
    resources:
        mem_mb=FW_JOB.mem_mb,
        runtime=FW_JOB.runtime_min,
    cache: "omit-software"


# One job per range of corpus parts; deleted once gathered (keep them with --notemp).
use rule benchmark_stage as fineweb_tokenize with:
    output:
        tokens=temp(directory(f"{FW_DIR}/tokens/job-{{job}}")),
    input:
        corpus=f"{FW_DIR}/corpus",
        code=code(slice_module("fineweb", "tokenize")),
    params:
        benchmark="fineweb",
        stage="tokenize:tokenize_job",
        job=lambda w: int(w.job),
        jobs=FW["tokenize"]["jobs"],
        threads=lambda w, threads: threads,  # what Snakemake gives the job (may be below the request)
        tokenize=lambda w: {k: v for k, v in FW["tokenize"].items() if k not in ("resources", "jobs")},
    log:
        f"{OUT}/logs/data/fineweb/tokenize-{{job}}.log",
    wildcard_constraints:
        job=r"\d+",
    threads: FW_JOB.threads
    resources:
        mem_mb=FW_JOB.mem_mb,
        runtime=FW_JOB.runtime_min,


use rule benchmark_report as table2 with:
    output:
        csv=report(f"{OUT}/tables/table2.csv", caption="report/table2.rst",
                   category="Tables 2 and 6: FineWeb-Edu"),
        md=f"{OUT}/tables/table2.md",
    input:
        evals=lambda w: evals_of("fineweb"),
        code=code(slice_module("fineweb", "report")),
    params:
        benchmark="fineweb",
        stage="report:table2",
    log:
        f"{OUT}/logs/table2.log",


use rule table2 as table6 with:
    output:
        csv=report(f"{OUT}/tables/table6.csv", caption="report/table6.rst",
                   category="Tables 2 and 6: FineWeb-Edu"),
        md=f"{OUT}/tables/table6.md",
    params:
        benchmark="fineweb",
        stage="report:table6",
    log:
        f"{OUT}/logs/table6.log",


use rule benchmark_report as fig_val_loss with:
    output:
        png=report(f"{OUT}/figures/val_loss_fineweb.png", caption="report/fig_val_loss.rst",
                   category="Tables 2 and 6: FineWeb-Edu"),
        pdf=f"{OUT}/figures/val_loss_fineweb.pdf",
    input:
        evals=lambda w: evals_of("fineweb"),
        # metrics.csv is written beside model.pt by training (not a declared output of it)
        models=lambda w: [f"{FW_DIR}/runs/{r.run_id}/model.pt" for r in fw_runs()],
        code=code(slice_module("fineweb", "report")),
    params:
        benchmark="fineweb",
        stage="report:fig_val_loss",
        tokens_per_step=FW["train"]["batch_size"] * (FW["data"]["block_size"] - 1),
    log:
        f"{OUT}/logs/fig_val_loss.log",


ALL_TARGETS.extend(rules.table2.output)
ALL_TARGETS.extend(rules.table6.output)
ALL_TARGETS.extend(rules.fig_val_loss.output)


# Tables 3 and 7 and the draft-length figure: self-speculative decoding of the NextLat, MTP and
# JTP runs (rules/speculative.smk) on the prompts of prompts.py's four domains (built by `all`
# unless speculative.enabled is false).

use rule benchmark_stage as fineweb_prompts with:
    output:
        prompts=f"{FW_DIR}/speculative/prompts.json",
    input:
        code=code(slice_module("fineweb", "prompts")),
    params:
        benchmark="fineweb",
        stage="prompts:make_prompts",
        prompts=lambda w: FW["speculative"]["prompts"],
    log:
        f"{OUT}/logs/speculative/fineweb/prompts.log",
    cache: "omit-software"


use rule benchmark_report as table3 with:
    output:
        csv=report(f"{OUT}/tables/table3.csv", caption="report/table3.rst",
                   category="Tables 3 and 7: self-speculative decoding"),
        md=f"{OUT}/tables/table3.md",
    input:
        records=lambda w: speculative_of("fineweb"),
        prompts=f"{FW_DIR}/speculative/prompts.json",
        code=code(slice_module("fineweb", "decoding_report")),
    params:
        benchmark="fineweb",
        stage="decoding_report:table3",
    log:
        f"{OUT}/logs/table3.log",

use rule table3 as table7 with:
    output:
        csv=report(f"{OUT}/tables/table7.csv", caption="report/table7.rst",
                   category="Tables 3 and 7: self-speculative decoding"),
        md=f"{OUT}/tables/table7.md",
    params:
        benchmark="fineweb",
        stage="decoding_report:table7",
    log:
        f"{OUT}/logs/table7.log",

use rule table3 as fig_draft_length with:
    output:
        png=report(f"{OUT}/figures/draft_length_fineweb.png", caption="report/fig_draft_length.rst",
                   category="Tables 3 and 7: self-speculative decoding"),
        pdf=f"{OUT}/figures/draft_length_fineweb.pdf",
    params:
        benchmark="fineweb",
        stage="decoding_report:fig_draft_length",
    log:
        f"{OUT}/logs/fig_draft_length.log",

if "fineweb" in SPECULATIVE:
    ALL_TARGETS.extend(rules.table3.output)
    ALL_TARGETS.extend(rules.table7.output)
    ALL_TARGETS.extend(rules.fig_draft_length.output)


# Table 4: training throughput of every method on this benchmark's model (the generic
# `throughput` rule, rules/throughput.smk), beside the paper's numbers.
use rule benchmark_report as table4 with:
    output:
        csv=report(f"{OUT}/tables/table4.csv", caption="report/table4.rst", category="Table 4: training cost"),
        md=f"{OUT}/tables/table4.md",
    input:
        record=throughput_of("fineweb"),
        code=code(slice_module("fineweb", "throughput_report")),
    params:
        benchmark="fineweb",
        stage="throughput_report:table4",
    log:
        f"{OUT}/logs/table4.log",


if "fineweb" in THROUGHPUT:
    ALL_TARGETS.extend(rules.table4.output)
