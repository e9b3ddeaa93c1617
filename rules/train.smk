# Training: one job per run of the matrix (benchmark x task x method x horizon x seed).


def train_code(wildcards):
    """The training stage, the run's objective and the module its training data is read by."""
    run = run_of(wildcards)
    spec = SPECS[run.benchmark]
    return code("nextlat.stages.train", objective_module(run.method), spec.module_name(spec.train_data_module))


rule train:
    output:
        model=f"{OUT}/{{benchmark}}/runs/{{run}}/model.pt",
        config=f"{OUT}/{{benchmark}}/runs/{{run}}/config.yaml",
    input:
        unpack(run_data),
        code=train_code,
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
