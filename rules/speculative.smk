# Self-speculative decoding (paper Tables 3 and 7), for every benchmark whose config block has an
# enabled `speculative:` section: one `speculative` job per run whose method drafts for itself
# (nextlat.decoding.drafters: NextLat, MTP, JTP) times plain KV-cached decoding and speculative
# decoding at every draft length in one process. The slice's own rules (rules/<name>.smk) make
# the prompts, results/<scale>/<name>/speculative/prompts.json, and the report targets (table3,
# table7, ...) from speculative_of(<name>).
from nextlat.decoding.drafters import SELF_DRAFTING

SPECULATIVE = [name for name in ENABLED if bench_cfg(name).get("speculative", {}).get("enabled", False)]


def speculative_file(benchmark, run_id):
    return f"{run_dir(benchmark, run_id)}/speculative.json"


def speculative_of(benchmark):
    """The speculative records of a benchmark's runs that can draft for themselves."""
    return [speculative_file(benchmark, r.run_id) for r in RUNS.values()
            if r.benchmark == benchmark and r.method in SELF_DRAFTING]


if SPECULATIVE:

    rule speculative:
        output:
            record=f"{OUT}/{{benchmark}}/runs/{{run}}/speculative.json",
        input:
            unpack(run_data),  # the draft vocabulary is ranked on the training data
            prompts=f"{OUT}/{{benchmark}}/speculative/prompts.json",
            model=f"{OUT}/{{benchmark}}/runs/{{run}}/model.pt",
            code=lambda w: code("nextlat.stages.speculative", objective_module(run_of(w).method),
                                slice_module(w.benchmark, SPECS[w.benchmark].train_data_module)),
        params:
            cfg=run_cfg,
            decoding=lambda w: bench_cfg(w.benchmark)["speculative"]["decoding"],
        wildcard_constraints:
            benchmark="|".join(SPECULATIVE),
        log:
            f"{OUT}/logs/speculative/{{benchmark}}/{{run}}.log",
        benchmark:
            f"{OUT}/benchmarks/speculative/{{benchmark}}/{{run}}.tsv"
        threads: RUNTIME["num_threads"] or 1
        resources:
            **EVAL_RESOURCES,
        conda:
            "../envs/eval.yaml"
        script:
            "../workflow_scripts/speculative.py"
