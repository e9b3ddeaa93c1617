"""Countdown problem generation speed: problems/s at one worker and at all cores.

    .venv/bin/python bench/countdown_generation.py                 # 20k problems, 1 and all cores
    .venv/bin/python bench/countdown_generation.py --n 50000 --workers 1,4,8

Generates ``--n`` training problems (seed 4 targets, as in ``write_dataset``) with each worker
count, checks that every run gives identical problems, and extrapolates the time for the
paper's 500k training + 10k test problems. Process start-up is included in the timing.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from nextlat.benchmarks.countdown import data as cd  # noqa: E402

PAPER_TOTAL = 500_000 + 10_000


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="problems per measurement (default 20000)")
    ap.add_argument("--workers", default=None,
                    help="comma-separated worker counts (default: 1 and all cores)")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--max-target", type=int, default=100)
    args = ap.parse_args(argv)

    cores = os.cpu_count() or 1
    counts = [int(w) for w in args.workers.split(",")] if args.workers else sorted({1, cores})
    train, _ = cd.split_targets(args.max_target, args.seed)
    print(f"Countdown generation: n={args.n}, seed={args.seed}, max_target={args.max_target}, "
          f"shard={cd.SHARD_SIZE}, cores={cores}")
    print(f"{'workers':>7}  {'seconds':>8}  {'problems/s':>11}  {'est. 500k+10k':>13}")
    first = None
    for w in counts:
        t0 = time.perf_counter()
        pr = cd.generate_problems(args.n, train, args.seed, 0, args.max_target, workers=w)
        dt = time.perf_counter() - t0
        rate = args.n / dt
        print(f"{w:>7}  {dt:>8.2f}  {rate:>11,.0f}  {PAPER_TOTAL / rate / 60:>10.1f} min", flush=True)
        if first is None:
            first = pr
        elif not all(np.array_equal(getattr(first, f), getattr(pr, f)) for f in ("nums", "target", "eqs")):
            raise SystemExit(f"worker count {w} changed the generated problems")
    if len(counts) > 1:
        print("identical problems for every worker count")


if __name__ == "__main__":
    main()
