# Base rules for a benchmark's own stages. rules/<name>.smk specialises them with
# `use rule benchmark_report as fig6 with:` (report targets, run on the submit host) or
# `use rule benchmark_stage as <name>_oracle with:` (jobs), setting output, input, log,
# params.benchmark and params.stage: the "module:function" of the slice that the thin
# script workflow_scripts/stage.py calls with the rule's inputs, outputs and params.


rule benchmark_stage:
    output:
        f"{OUT}/.base_rules/{{stage}}",
    params:
        benchmark=None,
        stage=None,
    log:
        f"{OUT}/logs/{{stage}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../envs/eval.yaml"
    script:
        "../workflow_scripts/stage.py"


rule benchmark_report:
    output:
        f"{OUT}/.base_rules/report_{{stage}}",
    params:
        benchmark=None,
        stage=None,
    log:
        f"{OUT}/logs/{{stage}}.log",
    localrule: True
    conda:
        "../envs/plots.yaml"
    script:
        "../workflow_scripts/stage.py"
