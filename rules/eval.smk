# Checkpoint evaluation on held-out data.


rule eval_pathstar:
    output:
        f"{OUT}/pathstar/runs/{{run}}/eval.json",
    input:
        model=f"{OUT}/pathstar/runs/{{run}}/model.pt",
        meta=lambda w: f"{data_dir('pathstar', RUNS[w.run].task)}/meta.json",
        test=lambda w: f"{data_dir('pathstar', RUNS[w.run].task)}/test.parquet",
        model_code=model_code,
        code=lib("evaluation/pathstar.py", "training/checkpoint.py"),
    params:
        cfg=run_cfg,
        eval=lambda w: bench_cfg("pathstar")["eval"],
    log:
        f"{OUT}/logs/eval/pathstar/{{run}}.log",
    threads: RUNTIME["num_threads"] or 1
    resources:
        **EVAL_RESOURCES,
    conda:
        "../envs/eval.yaml"
    script:
        "../workflow_scripts/evaluate.py"
