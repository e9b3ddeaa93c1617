# Training: one job per run of the matrix (benchmark x task x method x horizon x seed).


def train_code(wildcards):
    """The code that defines the run's weights (nextlat.stages.train.code_modules: the
    training stage, the run's objective, its benchmark's training-data module) and what it
    imports; the run's checkpoint identity hashes the same files."""
    return code(*code_modules(run_of(wildcards).config))


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
    benchmark:
        f"{OUT}/benchmarks/train/{{benchmark}}/{{run}}.tsv"
    threads: RUNTIME["num_threads"] or 1
    resources:
        **TRAIN_RESOURCES,
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train.py"
