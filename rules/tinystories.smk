# TinyStories (Figures 8, 16, ablations 12-14): corpus -> tokenizer (one per corpus) -> token
# shards (the generic `tinystories_data` rule, fed by the spec's data_inputs) -> training ->
# `tinystories_eval` (held-out loss, generated stories) and the generic `probe` rule (20
# linear probes per run, rules/probe.smk) -> the figures. Code: nextlat/benchmarks/tinystories/.

TS = bench_cfg("tinystories")
TS_DIR = f"{OUT}/tinystories"
TS_JOB = SPECS["tinystories"].data_job(TS)  # threads, memory, time of the corpus/tokenizer jobs


def ts_runs():
    return [r for r in RUNS.values() if r.benchmark == "tinystories"]


use rule benchmark_stage as tinystories_corpus with:
    output:
        train=f"{TS_DIR}/corpus/train.parquet",
        validation=f"{TS_DIR}/corpus/validation.parquet",
        stats=f"{TS_DIR}/corpus/stats.json",
    input:
        files=lambda w: TS["corpus"]["files"]["train"] + TS["corpus"]["files"]["validation"]
        if TS["corpus"]["source"] == "files" else [],
        code=code(slice_module("tinystories", "corpus")),
    params:
        benchmark="tinystories",
        stage="corpus:make_corpus",
        corpus=lambda w: TS["corpus"],
    log:
        f"{OUT}/logs/data/tinystories/corpus.log",
    resources:
        mem_mb=TS_JOB.mem_mb,
        runtime=TS_JOB.runtime_min,
    cache: "omit-software"


use rule benchmark_stage as tinystories_tokenizer with:
    output:
        tokenizer=f"{TS_DIR}/tokenizer.json",
    input:
        train=f"{TS_DIR}/corpus/train.parquet",
        given=lambda w: [TS["tokenizer"]["file"]] if TS["tokenizer"].get("file") else [],
        code=code(slice_module("tinystories", "tokenizer")),
    params:
        benchmark="tinystories",
        stage="tokenizer:make_tokenizer",
        tokenizer=lambda w: TS["tokenizer"],
    log:
        f"{OUT}/logs/data/tinystories/tokenizer.log",
    threads: TS_JOB.threads
    resources:
        mem_mb=TS_JOB.mem_mb,
        runtime=TS_JOB.runtime_min,
    cache: "omit-software"


def ts_figure(target, category):
    return {"png": report(f"{OUT}/figures/{target}_tinystories.png", caption=f"report/{target}.rst",
                          category=category),
            "pdf": f"{OUT}/figures/{target}_tinystories.pdf",
            "csv": f"{OUT}/tables/{target}_tinystories.csv", "md": f"{OUT}/tables/{target}_tinystories.md"}


TS_FIGURES = {
    "fig8": "Figure 8: TinyStories probes vs GPT",
    "fig16": "Figure 16: TinyStories probe CE",
    "fig12": "Figure 12: ablation, latent terms",
    "fig13": "Figure 13: ablation, KL vs CE",
    "fig14": "Figure 14: ablation, stop-gradients",
}


use rule benchmark_report as fig8 with:
    output:
        **ts_figure("fig8", TS_FIGURES["fig8"]),
    input:
        probes=lambda w: probes_of("tinystories"),
        code=code(slice_module("tinystories", "report")),
    params:
        benchmark="tinystories",
        stage="report:fig8",
    log:
        f"{OUT}/logs/fig8.log",


use rule fig8 as fig16 with:
    output:
        **ts_figure("fig16", TS_FIGURES["fig16"]),
    params:
        benchmark="tinystories",
        stage="report:fig16",
    log:
        f"{OUT}/logs/fig16.log",


use rule fig8 as fig12 with:
    output:
        **ts_figure("fig12", TS_FIGURES["fig12"]),
    params:
        benchmark="tinystories",
        stage="report:fig12",
    log:
        f"{OUT}/logs/fig12.log",


use rule fig8 as fig13 with:
    output:
        **ts_figure("fig13", TS_FIGURES["fig13"]),
    params:
        benchmark="tinystories",
        stage="report:fig13",
    log:
        f"{OUT}/logs/fig13.log",


use rule fig8 as fig14 with:
    output:
        **ts_figure("fig14", TS_FIGURES["fig14"]),
    params:
        benchmark="tinystories",
        stage="report:fig14",
    log:
        f"{OUT}/logs/fig14.log",


use rule benchmark_report as stories with:
    output:
        md=report(f"{OUT}/tables/stories_tinystories.md", caption="report/stories.rst",
                  category="TinyStories: generated stories"),
    input:
        evals=lambda w: evals_of("tinystories"),
        stories=lambda w: [f"{TS_DIR}/runs/{r.run_id}/stories.json" for r in ts_runs()],
        stats=f"{TS_DIR}/corpus/stats.json",
        meta=lambda w: data_files("tinystories", TS["tasks"][0])["meta"],
        code=code(slice_module("tinystories", "report")),
    params:
        benchmark="tinystories",
        stage="report:stories",
    log:
        f"{OUT}/logs/stories.log",


ALL_TARGETS.extend(rules.fig8.output)
ALL_TARGETS.extend(rules.fig16.output)
ALL_TARGETS.extend(rules.fig12.output)
ALL_TARGETS.extend(rules.fig13.output)
ALL_TARGETS.extend(rules.fig14.output)
ALL_TARGETS.extend(rules.stories.output)
