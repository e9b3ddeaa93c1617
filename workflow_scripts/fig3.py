import sys

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.pipeline import manhattan_maps  # noqa: E402

out = dict(snakemake.output.items())
manhattan_maps(snakemake.params.maps, snakemake.input.graph, snakemake.params.opts, out)
