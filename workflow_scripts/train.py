import sys
from pathlib import Path

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.config import resolve  # noqa: E402
from nextlat.stages.train import train  # noqa: E402

run_cfg = {**snakemake.params.cfg, "runtime": resolve(snakemake.config)["runtime"]}

# A checkpoint left by an earlier config of this run is stale once params changed:
# Snakemake reruns the job because of that change, so start fresh instead of failing.
train(run_cfg, Path(snakemake.input.meta).parent, Path(snakemake.output.model).parent,
      on_stale="restart")
