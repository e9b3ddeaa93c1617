"""A benchmark's own stage (report target, extra evaluation): calls the slice function named
by params.stage ("module:function") with the rule's inputs, outputs and params as dicts."""
import sys

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.stages.call import call_stage  # noqa: E402

call_stage(snakemake.params.benchmark, snakemake.params.stage, snakemake.input, snakemake.output,
           snakemake.params)
