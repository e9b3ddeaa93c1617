import sys
from pathlib import Path

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.pipeline import train  # noqa: E402

# A checkpoint left by an earlier config of this run is stale once params changed:
# Snakemake reruns the job because of that change, so start fresh instead of failing.
train(snakemake.params.cfg, Path(snakemake.input.meta).parent, Path(snakemake.output.model).parent,
      on_stale="restart")
