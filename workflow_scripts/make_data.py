import sys
from pathlib import Path

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.pipeline import make_data  # noqa: E402

benchmark = getattr(snakemake.params, "benchmark", None) or snakemake.wildcards.benchmark
make_data(benchmark, snakemake.wildcards.task, snakemake.params.data,
          Path(snakemake.output.meta).parent, workers=snakemake.threads)
