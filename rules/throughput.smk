# Training throughput (paper Table 4), for every benchmark whose config block has an enabled
# `throughput:` section: one `throughput` job times a training step of each listed method on
# the benchmark's model, in one process on the device its runs use (interleaved rounds, so
# machine load hits every method alike), and counts its FLOPs and parameters
# (nextlat.stages.throughput). The slice's own rules make the table from throughput_of(<name>).
from nextlat.stages.throughput import batch_rows, check_throughput, resolve_methods

THROUGHPUT = [name for name in ENABLED if bench_cfg(name).get("throughput", {}).get("enabled", False)]


def bench_model(benchmark):
    """The resolved model block of the benchmark's runs (vocabulary and block size filled in)."""
    runs = [r for r in RUNS.values() if r.benchmark == benchmark]
    if not runs:
        raise WorkflowError(f"benchmarks.{benchmark}.throughput: the benchmark has no runs to take a model from")
    return runs[0].config["model"]


def throughput_of(benchmark):
    return f"{OUT}/{benchmark}/throughput.json"


for _name in THROUGHPUT:
    try:
        check_throughput(_name, bench_cfg(_name), bench_model(_name)["block_size"])
    except nlconfig.ConfigError as err:
        raise WorkflowError(f"config.yaml: {err}") from None


if THROUGHPUT:

    rule throughput:
        output:
            record=f"{OUT}/{{benchmark}}/throughput.json",
        input:
            code=lambda w: code("nextlat.stages.throughput", *sorted(
                {objective_module(m["name"]) for m in bench_cfg(w.benchmark)["throughput"]["methods"]})),
        params:
            model=lambda w: bench_model(w.benchmark),
            settings=lambda w: {**bench_cfg(w.benchmark)["throughput"], "methods": resolve_methods(bench_cfg(w.benchmark))},
            rows=lambda w: batch_rows(bench_cfg(w.benchmark)),
        wildcard_constraints:
            benchmark="|".join(THROUGHPUT),
        log:
            f"{OUT}/logs/throughput/{{benchmark}}.log",
        benchmark:
            f"{OUT}/benchmarks/throughput/{{benchmark}}.tsv"
        threads: RUNTIME["num_threads"] or 1
        resources:
            **job_resources(1, 60),
        conda:
            "../envs/train.yaml"
        script:
            "../workflow_scripts/throughput.py"
