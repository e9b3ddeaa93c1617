import sys
from pathlib import Path

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.config import resolve  # noqa: E402
from nextlat.stages.probe import probe  # noqa: E402

run_cfg = {**snakemake.params.cfg, "runtime": resolve(snakemake.config)["runtime"]}
probe(run_cfg, snakemake.input.model, Path(snakemake.input.meta).parent, snakemake.params.probe,
      snakemake.output.probes, snakemake.output.curve)
