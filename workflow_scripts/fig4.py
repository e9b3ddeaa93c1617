import sys

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.pipeline import countdown_table  # noqa: E402

countdown_table(snakemake.input.evals, snakemake.output.csv, snakemake.output.md)
