import sys
from pathlib import Path

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.pipeline import manhattan_oracle_eval  # noqa: E402

manhattan_oracle_eval(Path(snakemake.input.meta).parent, snakemake.params.eval, snakemake.params.seed,
                      snakemake.output.eval)
