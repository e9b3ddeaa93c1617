"""The claims table: one benchmark's claims (rule benchmark_claims) or the gathered table (rule claims)."""
import sys

sys.path.insert(0, snakemake.scriptdir)
from _log import to_log  # noqa: E402

to_log(snakemake)
from nextlat.stages.claims import benchmark_claims, gather_claims  # noqa: E402

if snakemake.rule == "benchmark_claims":
    benchmark_claims(snakemake.wildcards.benchmark, dict(snakemake.input.items()), snakemake.output.table,
                     dict(snakemake.params.variants), snakemake.params.scale)
else:
    gather_claims(list(snakemake.input.tables), list(snakemake.params.enabled), snakemake.params.scale,
                  snakemake.output.csv, snakemake.output.md)
