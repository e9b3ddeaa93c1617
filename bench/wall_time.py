"""Where a build's wall time went, per rule and per job, from Snakemake's benchmark files.

The train, eval, probe, speculative and throughput rules write one `benchmark:` TSV per job
(results/<scale>/benchmarks/<rule>/<benchmark>/<job>.tsv: seconds, peak memory, CPU time). This
sums them per rule and lists the longest jobs (the long poles of `make demo`).

    .venv/bin/python bench/wall_time.py                         # results/default
    .venv/bin/python bench/wall_time.py results/smoke --top 5 --json out.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd


def job_times(root: Path) -> pd.DataFrame:
    """One row per benchmark file: rule, benchmark, job, seconds, max_rss (MB), cpu_time."""
    rows = []
    for tsv in sorted((root / "benchmarks").rglob("*.tsv")):
        parts = tsv.relative_to(root / "benchmarks").with_suffix("").parts
        rule, benchmark, job = parts[0], parts[1], parts[-1]  # <rule>/<benchmark>[/<job>].tsv
        df = pd.read_csv(tsv, sep="\t")
        if df.empty:
            continue
        last = df.iloc[-1]  # one line per job run (more with `benchmark: repeat(...)`)
        rows.append({"rule": rule, "benchmark": benchmark, "job": job, "seconds": float(last["s"]),
                     "max_rss_mb": float(last["max_rss"]) if last["max_rss"] != "-" else None,
                     "cpu_time": float(last["cpu_time"]) if "cpu_time" in last else None})
    return pd.DataFrame(rows)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", nargs="?", default="results/default", help="results/<scale> folder of a build")
    p.add_argument("--top", type=int, default=10, help="longest jobs to list")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    jobs = job_times(Path(args.root))
    if jobs.empty:
        sys.exit(f"no benchmark files under {args.root}/benchmarks: build something first")
    per_rule = (jobs.groupby(["rule", "benchmark"])["seconds"].agg(["count", "sum", "max", "mean"])
                .sort_values("sum", ascending=False).reset_index())
    total = jobs["seconds"].sum()
    per_rule["share"] = per_rule["sum"] / total
    print(f"{len(jobs)} jobs with benchmark files under {args.root}, {total / 60:.1f} job-minutes in all "
          "(serial sum; --cores N runs jobs side by side)\n")
    print(per_rule.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    top = jobs.sort_values("seconds", ascending=False).head(args.top)
    print(f"\nlongest {len(top)} jobs:")
    print(top.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    out = {"total_seconds": total, "per_rule": per_rule.to_dict("records"), "jobs": jobs.to_dict("records")}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
