import sys
from pathlib import Path

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.pipeline import evaluate  # noqa: E402

evaluate(snakemake.params.cfg, snakemake.input.model, Path(snakemake.input.meta).parent,
         snakemake.params.eval, snakemake.output[0])
