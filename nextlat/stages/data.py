"""The data stage: generate one task's dataset. Seeded and deterministic; ``workers``
(processes) never changes what is generated."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from .. import benchmarks

log = logging.getLogger(__name__)


def data_config(benchmark: str, bench_cfg: dict) -> dict:
    """The part of a benchmark's config that defines its generated data."""
    return benchmarks.get(benchmark).data_config(bench_cfg)


def make_data(benchmark: str, task: str, data_cfg: dict, out_dir: str | Path, workers: int | None = None):
    """Generate ``benchmark``/``task`` into ``out_dir``; ``data_cfg`` is :func:`data_config`'s."""
    start = time.perf_counter()
    log.info("generating %s/%s into %s (workers=%s)", benchmark, task, out_dir, workers)
    meta = benchmarks.get(benchmark).make_data(task, data_cfg, Path(out_dir), workers)
    log.info("wrote %s in %.1f s: %s", out_dir, time.perf_counter() - start,
             {k: v for k, v in (meta or {}).items() if isinstance(v, (int, float, str))})
    return meta
