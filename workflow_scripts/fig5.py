import sys

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.pipeline import countdown_figure  # noqa: E402

countdown_figure(snakemake.input.evals, snakemake.output.png, snakemake.output.pdf)
