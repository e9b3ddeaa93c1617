import sys

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.config import resolve  # noqa: E402
from nextlat.stages.throughput import throughput  # noqa: E402

throughput(snakemake.params.model, snakemake.params.settings, snakemake.params.rows,
           resolve(snakemake.config)["runtime"], snakemake.output.record, threads=snakemake.threads)
