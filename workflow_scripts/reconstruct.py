import sys
from pathlib import Path

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.pipeline import reconstruct_samples  # noqa: E402

reconstruct_samples(snakemake.input.samples, Path(snakemake.input.meta).parent, snakemake.params.cfg,
                    snakemake.params.seed, snakemake.output[0])
