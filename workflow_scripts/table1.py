import sys

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.pipeline import manhattan_table  # noqa: E402

manhattan_table(snakemake.input.evals, snakemake.input.oracle, snakemake.output.csv, snakemake.output.md)
