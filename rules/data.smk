# Data generation. Seeded and deterministic, so outputs are cacheable across workflow
# copies (`--cache` with $SNAKEMAKE_OUTPUT_CACHE set).


rule pathstar_data:
    output:
        train=f"{OUT}/pathstar/data/{{task}}/train.parquet",
        test=f"{OUT}/pathstar/data/{{task}}/test.parquet",
        meta=f"{OUT}/pathstar/data/{{task}}/meta.json",
    input:
        code=lib("data/pathstar.py", "data/dataset.py"),
    params:
        benchmark="pathstar",
        data=lambda w: bench_cfg("pathstar")["data"],
    log:
        f"{OUT}/logs/pathstar_data/{{task}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    cache: "omit-software"
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/make_data.py"
