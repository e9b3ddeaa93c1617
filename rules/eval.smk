# Checkpoint evaluation on held-out data: one rule per enabled benchmark (`<name>_eval`),
# its outputs the files the benchmark's spec declares (eval.json, and e.g. generated samples).

for _name, _spec in SPECS.items():

    rule:
        name:
            f"{_name}_eval"
        output:
            **_outputs(_spec.eval_outputs, run_dir(_name, "{run}")),
        input:
            unpack(run_data),
            model=f"{OUT}/{_name}/runs/{{run}}/model.pt",
            code=lambda w, b=_name: code("nextlat.stages.evaluate", objective_module(run_of(w).method),
                                         slice_module(b, "evaluate")),
        params:
            cfg=run_cfg,
            eval=lambda w, b=_name: bench_cfg(b)["eval"],
        log:
            f"{OUT}/logs/eval/{_name}/{{run}}.log",
        benchmark:
            f"{OUT}/benchmarks/eval/{_name}/{{run}}.tsv"
        threads: RUNTIME["num_threads"] or 1
        resources:
            **EVAL_RESOURCES,
        conda:
            "../envs/eval.yaml"
        script:
            "../workflow_scripts/evaluate.py"
