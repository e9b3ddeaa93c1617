# Checkpoint evaluation on held-out data, one rule for every benchmark.


rule eval:
    wildcard_constraints:
        benchmark=GENERIC,
    output:
        f"{OUT}/{{benchmark}}/runs/{{run}}/eval.json",
    input:
        unpack(run_data),
        model=f"{OUT}/{{benchmark}}/runs/{{run}}/model.pt",
        model_code=model_code,
        code=lambda w: lib(f"evaluation/{w.benchmark}.py", "training/checkpoint.py"),
    params:
        cfg=run_cfg,
        eval=lambda w: bench_cfg(w.benchmark)["eval"],
    log:
        f"{OUT}/logs/eval/{{benchmark}}/{{run}}.log",
    threads: RUNTIME["num_threads"] or 1
    resources:
        **EVAL_RESOURCES,
    conda:
        "../envs/eval.yaml"
    script:
        "../workflow_scripts/evaluate.py"
