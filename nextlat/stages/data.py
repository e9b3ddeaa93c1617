"""The data stage: generate one task's dataset. Seeded and deterministic; ``workers``
(processes) never changes what is generated."""
from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from .. import benchmarks
from ..data import store

log = logging.getLogger(__name__)


def data_config(benchmark: str, bench_cfg: dict) -> dict:
    """The part of a benchmark's config that defines its generated data."""
    return benchmarks.get(benchmark).data_config(bench_cfg)


def make_data(benchmark: str, task: str, data_cfg: dict, out_dir: str | Path, workers: int | None = None,
              inputs: dict[str, str] | None = None):
    """Generate ``benchmark``/``task`` into ``out_dir``; ``data_cfg`` is :func:`data_config`'s,
    ``inputs`` the files the benchmark's ``data_inputs`` names (made by its own rules)."""
    out_dir = Path(out_dir)
    start = time.perf_counter()
    log.info("generating %s/%s into %s (workers=%s)", benchmark, task, out_dir, workers)
    # Generate into a temporary sibling folder and move the files into place only once all of
    # them exist (meta.json last): a job that fails half-way leaves nothing that looks made.
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        meta = benchmarks.get(benchmark).make_data(task, data_cfg, tmp, workers, inputs=inputs)
        _move_into_place(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    files = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file())
    log.info("wrote %d files to %s in %.1f s: %s", len(files), out_dir, time.perf_counter() - start,
             ", ".join(files[:12]) + (" ..." if len(files) > 12 else ""))
    log.info("dataset: %s", {k: v for k, v in (meta or {}).items() if isinstance(v, (int, float, str))})
    return meta


def _move_into_place(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir``'s entries by ``tmp``'s; the old meta.json goes first and the new
    one comes last, so a reader never sees a complete-looking mix of old and new files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / store.META_FILE).unlink(missing_ok=True)
    for entry in sorted(tmp.iterdir(), key=lambda p: p.name == store.META_FILE):
        dest = out_dir / entry.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        elif dest.exists() or dest.is_symlink():
            dest.unlink()
        os.replace(entry, dest)
