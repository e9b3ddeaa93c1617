"""Run independent data-generation jobs (shards) on a process pool, results in job order.

Generators split their work into seeded shards whose output depends only on the job, so
the data never depends on how many workers ran it. Free of torch.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from typing import Callable, Iterable, TypeVar

J = TypeVar("J")
R = TypeVar("R")


def run_shards(fn: Callable[[J], R], jobs: Iterable[J], workers: int | None = None) -> list[R]:
    """``[fn(job) for job in jobs]``, on up to ``workers`` processes (None = all cores,
    1 = in this process, no pool). Results come back in job order.

    ``fn`` must be a module-level function (the pool pickles it by name). Workers are
    *forked* where the platform allows it, for two reasons: spawn (and forkserver) children
    re-import the caller's ``__main__``, which for a Snakemake ``script:`` re-runs the whole
    job inside every worker (and hangs); and forked workers see the parent's module globals
    (say, a large matrix set up before the call) through copy-on-write, without pickling.
    Callers that rely on the latter must not run where only spawn exists.
    """
    jobs = list(jobs)
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    workers = min(workers, len(jobs))
    if workers <= 1:
        return [fn(job) for job in jobs]
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers) as pool:
        return pool.map(fn, jobs, chunksize=1)
