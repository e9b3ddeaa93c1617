import sys
from pathlib import Path

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.stages.data import make_data  # noqa: E402

inputs = {k: v for k, v in snakemake.input.items() if k not in ("sources", "code")}  # data_inputs
make_data(snakemake.params.benchmark, snakemake.wildcards.task, snakemake.params.data,
          Path(snakemake.output.meta).parent, workers=snakemake.threads, inputs=inputs)
