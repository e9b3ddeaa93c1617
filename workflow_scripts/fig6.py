import sys

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.pipeline import pathstar_figure  # noqa: E402

out = snakemake.output
pathstar_figure(snakemake.input.evals, out.png, out.pdf, out.csv, out.md)
