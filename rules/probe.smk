# Linear probes of a trained run (paper F.4): one `probe` job per run of every benchmark whose
# spec sets `probes` (its config block has `probe:`). Reruns only when the run's model, the
# probe settings or the probe code change.
PROBED = [name for name in ENABLED if SPECS[name].probes]


def probe_file(benchmark, run_id):
    return f"{run_dir(benchmark, run_id)}/probes.json"


def probes_of(benchmark):
    return [probe_file(benchmark, r.run_id) for r in RUNS.values() if r.benchmark == benchmark]


if PROBED:

    rule probe:
        output:
            probes=f"{OUT}/{{benchmark}}/runs/{{run}}/probes.json",
            curve=f"{OUT}/{{benchmark}}/runs/{{run}}/probes.csv",
        input:
            unpack(run_data),
            model=f"{OUT}/{{benchmark}}/runs/{{run}}/model.pt",
            code=lambda w: code("nextlat.stages.probe", objective_module(run_of(w).method),
                                slice_module(w.benchmark, SPECS[w.benchmark].train_data_module)),
        params:
            cfg=run_cfg,
            probe=lambda w: bench_cfg(w.benchmark)["probe"],
        wildcard_constraints:
            benchmark="|".join(PROBED),
        log:
            f"{OUT}/logs/probe/{{benchmark}}/{{run}}.log",
        benchmark:
            f"{OUT}/benchmarks/probe/{{benchmark}}/{{run}}.tsv"
        threads: RUNTIME["num_threads"] or 1
        resources:
            **job_resources(1, RUNTIME["runtime_min"]),  # one device; 20k probe steps take a while
        conda:
            "../envs/eval.yaml"
        script:
            "../workflow_scripts/probe.py"
