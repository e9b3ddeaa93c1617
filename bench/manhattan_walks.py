"""Manhattan random-walk generation speed: walks/s and tokens/s, and the time for the paper's data.

    .venv/bin/python bench/manhattan_walks.py                       # ~25 s on 2 cores
    .venv/bin/python bench/manhattan_walks.py --walks 200000 --dataset-walks 400000 --workers 1,2,4

Builds a Manhattan-sized synthetic city (``streets.synthetic_city(avenues=12, streets=380)``:
4,560 intersections, the original study's map has 4,579), then measures in one run

1. ``random_walks`` alone in this process (``--walks`` walks, trips drawn beforehand);
2. ``write_dataset`` end to end (trips, split, walks, tokenisation, parquet) with each worker
   count in ``--workers`` (best of ``--rounds`` interleaved runs), checking that all of them
   write identical part files.

and extrapolates the time for the original 91M-walk dataset at 1, 2 and 64 cores from the
per-core rates of step 2 (linear scaling beyond the largest worker count measured).
The hop matrix (all-pairs BFS) is timed separately: it is computed once per dataset.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from nextlat.benchmarks.manhattan import data as mh  # noqa: E402
from nextlat.benchmarks.manhattan import streets  # noqa: E402

PAPER_WALKS = 91_000_000


def part_contents(out: Path) -> list:
    return [pq.read_table(p) for split in ("train", "test") for p in sorted((out / split).glob("*.parquet"))]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--avenues", type=int, default=12)
    ap.add_argument("--streets", type=int, default=380)
    ap.add_argument("--walks", type=int, default=100_000, help="walks for the in-process measurement")
    ap.add_argument("--dataset-walks", type=int, default=200_000, help="training walks per write_dataset run")
    ap.add_argument("--shard-size", type=int, default=25_000)
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts for write_dataset")
    ap.add_argument("--max-moves", type=int, default=97)
    ap.add_argument("--rounds", type=int, default=2, help="write_dataset runs per worker count (best kept)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]

    t0 = time.perf_counter()
    graph = streets.synthetic_city(avenues=args.avenues, streets=args.streets, seed=args.seed)
    t1 = time.perf_counter()
    hops = graph.hop_distances()
    t2 = time.perf_counter()
    print(f"city: {graph.name} {graph.n_nodes} nodes, {graph.n_edges} edges "
          f"(built in {t1 - t0:.1f} s); hop matrix {t2 - t1:.1f} s; cores={os.cpu_count()}")

    # 1. random_walks alone, one process
    rng = np.random.default_rng(args.seed)
    src, dst = mh.sample_trips(graph, args.walks, rng, "uniform", args.max_moves, hops)
    t0 = time.perf_counter()
    lengths, _ = mh.random_walks(graph, src, dst, args.max_moves, rng, hops)
    dt = time.perf_counter() - t0
    walk_rate, tok_rate = args.walks / dt, (lengths.sum() + 3 * args.walks) / dt
    print(f"random_walks: {args.walks:,} walks in {dt:.2f} s = {walk_rate:,.0f} walks/s, "
          f"{tok_rate:,.0f} tokens/s (one core); mean {lengths.mean() + 3:.1f} tokens/doc")

    # 2. write_dataset end to end
    data = {"n_trips": max(args.dataset_walks // 10, 1000), "pickups": "density", "heldout_fraction": 0.1,
            "n_train": args.dataset_walks, "n_test": args.shard_size, "max_moves": args.max_moves,
            "max_eval_hops": 50, "pack_len": 256, "shard_size": args.shard_size, "seed": args.seed}
    vocab = mh.vocab_size(graph.n_nodes)
    n_walks = data["n_train"] + data["n_test"]
    print(f"write_dataset: {n_walks:,} walks in shards of {args.shard_size:,} "
          f"(+ {data['n_trips']:,} trips, parquet, graph)")
    # Rounds alternate the worker counts and each keeps its fastest time: load from other
    # processes on a shared machine then hurts every count alike instead of one of them.
    best, first, tokens = {w: float("inf") for w in counts}, None, 0
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for w in counts:
                out = Path(tmp) / f"w{w}"
                t0 = time.perf_counter()
                meta = mh.write_dataset(out, graph, data, vocab, workers=w)
                best[w] = min(best[w], time.perf_counter() - t0)
                tokens = meta["n_train_tokens"] + meta["n_test_tokens"]
                parts = part_contents(out)
                if first is None:
                    first = parts
                elif len(parts) != len(first) or not all(a.equals(b) for a, b in zip(parts, first)):
                    raise SystemExit(f"worker count {w} changed the generated walks")
    rates = {w: n_walks / dt for w, dt in best.items()}
    print(f"{'workers':>7}  {'seconds':>8}  {'walks/s':>10}  {'per core':>10}  {'tokens/s':>11}  {'speedup':>7}")
    for w, dt in best.items():
        print(f"{w:>7}  {dt:>8.2f}  {rates[w]:>10,.0f}  {rates[w] / w:>10,.0f}  {tokens / dt:>11,.0f}  "
              f"{rates[w] / rates[counts[0]]:>6.2f}x")
    if len(counts) > 1:
        print("identical part files for every worker count")
    print(f"random_walks alone / write_dataset at {counts[0]} worker: {walk_rate / rates[counts[0]]:.2f}x")

    # Each core count scales the per-core rate of the largest worker count measured at or below
    # it (1 core: the 1-worker rate); beyond the measured counts this assumes linear scaling.
    print(f"extrapolated {PAPER_WALKS / 1e6:.0f}M walks (walks only; the hop matrix and trips add seconds):")
    for cores in (1, 2, 64):
        w = max([c for c in counts if c <= cores] or [min(counts)])
        hours = PAPER_WALKS / (rates[w] / w * cores) / 3600
        print(f"  {cores:>2} cores: {hours:6.2f} h ({hours * 60:5.1f} min) at {rates[w] / w:,.0f} walks/s/core "
              f"(measured with {w} worker{'s' if w > 1 else ''})")

if __name__ == "__main__":
    main()
