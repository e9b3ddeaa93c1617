# Data generation: one rule per enabled benchmark (`<name>_data`), its outputs the files the
# benchmark's spec declares. Seeded and deterministic, so outputs are cacheable across
# workflow copies (`--cache` with $SNAKEMAKE_OUTPUT_CACHE set).

for _name, _spec in SPECS.items():
    _job = _spec.data_job(bench_cfg(_name))  # threads, memory and time (read at definition)

    rule:
        name:
            f"{_name}_data"
        output:
            **data_outputs(_name),
        input:
            unpack(lambda w, b=_name: data_inputs(b, w.task)),
            sources=lambda w, b=_name: SPECS[b].data_sources(bench_cfg(b)),
            code=code("nextlat.stages.data", slice_module(_name, "data")),
        params:
            benchmark=_name,
            data=lambda w, b=_name: data_config(b, bench_cfg(b)),
        log:
            f"{OUT}/logs/data/{_name}/{{task}}.log",
        threads: _job.threads
        resources:
            mem_mb=_job.mem_mb,
            runtime=_job.runtime_min,
        cache: "omit-software"
        conda:
            "../envs/data.yaml"
        script:
            "../workflow_scripts/make_data.py"
