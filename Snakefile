# nextlat-pipeline: every table and figure of the NextLat paper as a build target.
#   snakemake --cores 2 fig6                 # Figure 6 (Path-Star) at the default scale
#   snakemake --cores 2 table1 fig3          # Table 1 and Figure 3 (Manhattan world models)
#   snakemake --cores 2 --config scale=smoke # the whole DAG, tiny
# See README.md and config.yaml.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "rules/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/eval.smk"
include: "rules/figures.smk"
include: "rules/manhattan.smk"


rule all:
    default_target: True
    input:
        all_targets(),
