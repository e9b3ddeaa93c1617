"""Progress of long loops as log lines: a start line, one line every ``every_s`` seconds and a
closing line with the time taken. Log lines (rather than a redrawn bar) because evaluation
jobs write to Snakemake log files and cluster job logs, where a bar is unreadable."""
from __future__ import annotations

import logging
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
log = logging.getLogger("nextlat.progress")


def progress(items: Iterable[T], total: int, desc: str, unit: str = "batches", every_s: float = 30.0) -> Iterator[T]:
    start = last = time.perf_counter()
    log.info("%s: %d %s", desc, total, unit)
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.perf_counter()
        if now - last >= every_s and done < total:
            log.info("%s: %d/%d %s, %.0f s", desc, done, total, unit, now - start)
            last = now
    log.info("%s: done (%d %s) in %.1f s", desc, done, unit, time.perf_counter() - start)
