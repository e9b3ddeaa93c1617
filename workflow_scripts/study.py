"""A study: the points of one benchmark's sweep side by side (rule benchmark_study)."""
import sys

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.stages.study import study  # noqa: E402

study(snakemake.wildcards.benchmark, dict(snakemake.input.items()), dict(snakemake.params.variants),
      snakemake.input.claims, dict(snakemake.output.items()))
