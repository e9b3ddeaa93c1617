import sys
from pathlib import Path

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.config import resolve  # noqa: E402
from nextlat.stages.speculative import speculative  # noqa: E402

run_cfg = {**snakemake.params.cfg, "runtime": resolve(snakemake.config)["runtime"]}
speculative(run_cfg, snakemake.input.model, snakemake.input.prompts, Path(snakemake.input.meta).parent,
            snakemake.params.decoding, snakemake.output.record, threads=snakemake.threads)
