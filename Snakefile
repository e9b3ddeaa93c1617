# nextlat-pipeline: every table and figure of the NextLat paper as a build target.
#   snakemake --cores 2                      # every target at the default scale
#   snakemake --cores 2 fig6                 # one target (README lists them)
#   snakemake --cores 2 --config scale=smoke # the whole DAG, tiny
# See README.md and config.yaml. Each benchmark is a slice (nextlat/benchmarks/<name>/) plus
# rules/<name>.smk; the generic data, train and eval rules serve every one of them.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "rules/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/eval.smk"
include: "rules/probe.smk"
include: "rules/stages.smk"
include: "rules/speculative.smk"
include: "rules/throughput.smk"
include: "rules/claims.smk"
include: "rules/study.smk"


for _benchmark in ENABLED:  # a benchmark's own rules: report targets and extra stages
    _targets = len(ALL_TARGETS)

    include: f"rules/{_benchmark}.smk"

    if _benchmark in SWEPT:  # its reports would pool a sweep's points as seeds: `all` builds the study
        del ALL_TARGETS[_targets:]
        ALL_TARGETS.append(f"{OUT}/{_benchmark}/study.csv")


rule all:
    default_target: True
    input:
        ALL_TARGETS,
