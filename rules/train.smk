# Training: one job per run of the matrix (benchmark x task x method x horizon x seed).


rule train:
    output:
        model=f"{OUT}/{{benchmark}}/runs/{{run}}/model.pt",
        config=f"{OUT}/{{benchmark}}/runs/{{run}}/config.yaml",
    input:
        unpack(run_data),
        model_code=model_code,
        code=lib("training/*.py", "data/dataset.py", "data/store.py", "pipeline.py"),
    params:
        cfg=run_cfg,
    log:
        f"{OUT}/logs/train/{{benchmark}}/{{run}}.log",
    threads: RUNTIME["num_threads"] or 1
    resources:
        **TRAIN_RESOURCES,
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train.py"
