"""Process hygiene for long stages: one trainer per run folder, and no orphans.

* :func:`run_lock` holds an exclusive ``flock`` on ``<run>/.train.lock`` while a run trains,
  so the CLI and Snakemake (or two Snakemake instances) never train one run at once: the
  second is refused with the holder's pid instead of interleaving checkpoints and metrics.
* :func:`exit_with_parents` ends this process when the process that started it dies (e.g.
  ``snakemake`` killed with SIGKILL): a watchdog thread checks the ancestors it had at start.
  ``prctl(PR_SET_PDEATHSIG)`` is not used because it fires when the parent *thread* exits,
  and Snakemake starts jobs from worker threads.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)


class RunLockedError(RuntimeError):
    """Another process is training the same run folder."""


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[Path]:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / ".train.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise RunLockedError(f"{run_dir} is being trained by another process (pid {holder}); "
                                 "wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing releases the lock; the file stays (removing it would race)


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # field 4 (ppid); the name may hold spaces


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_with_parents(levels: int = 2, interval_s: float = 2.0) -> None:
    """Start a daemon thread that sends this process SIGTERM once any of its first
    ``levels`` ancestors (e.g. a shell and the Snakemake that started it) is gone."""
    global _WATCHING
    if _WATCHING:
        return
    ancestors, pid = [], os.getpid()
    for _ in range(levels):
        pid = _parent_of(pid) if Path("/proc").is_dir() else os.getppid()
        if not pid or pid <= 1:
            break
        ancestors.append(pid)
    if not ancestors:
        return

    def watch():
        event = threading.Event()
        while not event.wait(interval_s):
            gone = [p for p in ancestors if not _alive(p)]
            if gone:
                log.error("parent process %s exited; stopping (the last checkpoint is kept)", gone[0])
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="exit-with-parents", daemon=True).start()
    _WATCHING = True


_WATCHING = False  # one watchdog per process
