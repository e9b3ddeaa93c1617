# Data generation, one rule for every benchmark. Seeded and deterministic, so outputs are
# cacheable across workflow copies (`--cache` with $SNAKEMAKE_OUTPUT_CACHE set).


rule data:
    wildcard_constraints:
        benchmark=GENERIC,
    output:
        train=f"{OUT}/{{benchmark}}/data/{{task}}/train.parquet",
        test=f"{OUT}/{{benchmark}}/data/{{task}}/test.parquet",
        meta=f"{OUT}/{{benchmark}}/data/{{task}}/meta.json",
    input:
        code=lambda w: lib(f"data/{w.benchmark}.py", "data/dataset.py", "data/store.py"),
    params:
        data=lambda w: data_config(w.benchmark, bench_cfg(w.benchmark)),
    log:
        f"{OUT}/logs/data/{{benchmark}}/{{task}}.log",
    threads: lambda w: DATA_THREADS.get(w.benchmark, 1)
    resources:
        mem_mb=2000,
        runtime=30,
    cache: "omit-software"
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/make_data.py"
