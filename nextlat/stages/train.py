"""The training stage: one run of the matrix, from its resolved config and its dataset."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .. import benchmarks
from ..codedeps import module_files, objective_module
from ..data import store
from ..io import write_text
from .process import exit_with_parents, run_lock

log = logging.getLogger(__name__)

RANK_ENV = "NEXTLAT_RANK_PROCESS"  # set in processes that are already one rank of a run


def load_train_data(benchmark: str, data_dir: str | Path):
    """(train, val) datasets for a benchmark's generated data."""
    return benchmarks.get(benchmark).load_train(Path(data_dir))


def check_data_matches(run_cfg: dict, data_dir: str | Path) -> None:
    """Refuse to train when the data on disk disagrees with the run's model config."""
    meta = store.load_meta(data_dir, run_cfg["benchmark"])
    model = run_cfg["model"]
    for key, want in (("vocab_size", model["vocab_size"]), ("eos_id", model["eos_id"])):
        if key in meta and meta[key] != want:
            raise ValueError(f"dataset {data_dir} has {key}={meta[key]} but run "
                             f"{run_cfg['run_id']} expects {want}; regenerate the data")
    if meta.get("seq_len", 0) > model["block_size"]:
        raise ValueError(f"dataset rows of {meta['seq_len']} tokens exceed model.block_size="
                         f"{model['block_size']} for run {run_cfg['run_id']}")


def launch_command(cfg_file: Path, data_dir: Path, out_dir: Path, on_stale: str, devices: int) -> list[str]:
    """How to start the ranks of a multi-device run.

    Inside a SLURM allocation every rank is a task of ``srun`` (Fabric reads its rank from
    SLURM); elsewhere one process starts and Fabric's launcher spawns the other ranks.
    """
    cmd = [sys.executable, "-m", "nextlat.cli", "train-config", str(cfg_file), "--data", str(data_dir),
           "--out", str(out_dir), "--on-stale", on_stale]
    if os.environ.get("SLURM_JOB_ID") and shutil.which("srun"):
        # one node; Lightning's SLURM environment requires --ntasks-per-node, not --ntasks
        cmd = ["srun", "--nodes=1", f"--ntasks-per-node={devices}", "--kill-on-bad-exit=1", *cmd]
    return cmd


def train(run_cfg: dict, data_dir: str | Path, out_dir: str | Path, on_stale: str = "error",
          stop_after: int | None = None) -> Path | None:
    """Train one run; writes ``config.yaml`` (fully resolved) and ``model.pt`` in out_dir.

    The run folder is locked while it trains (a second trainer is refused), and training
    stops if the process that started it dies.

    Multi-device runs (``runtime.devices > 1``) are started as separate rank processes.
    Returns the final model's path (None if ``stop_after`` stopped the run early).
    """
    out_dir, data_dir = Path(out_dir), Path(data_dir)
    check_data_matches(run_cfg, data_dir)
    exit_with_parents()
    if os.environ.get(RANK_ENV):  # one rank of a run whose launcher holds the lock
        return _train(run_cfg, data_dir, out_dir, on_stale, stop_after)
    with run_lock(out_dir):
        return _train(run_cfg, data_dir, out_dir, on_stale, stop_after)


def _train(run_cfg: dict, data_dir: Path, out_dir: Path, on_stale: str, stop_after: int | None) -> Path | None:
    devices = int(run_cfg.get("runtime", {}).get("devices", 1))
    if devices > 1 and not os.environ.get(RANK_ENV):
        # The ranks read the run config from a file; the run's config.yaml is written by the
        # trainer once the checkpoint check has passed (so a refused run never rewrites it).
        cfg_file = out_dir / ".launch_config.yaml"
        write_text(cfg_file, yaml.safe_dump(run_cfg, sort_keys=False))
        cmd = launch_command(cfg_file, data_dir, out_dir, on_stale, devices)
        log.info("launching %d ranks: %s", devices, " ".join(cmd))
        # Ranks import the same `nextlat` as this process (a workflow copy, not whatever is installed).
        root = str(Path(__file__).resolve().parents[2])
        pythonpath = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        sys.stdout.flush(), sys.stderr.flush()
        subprocess.run(cmd, check=True, env={**os.environ, RANK_ENV: "1", "PYTHONPATH": pythonpath},
                       stdout=sys.stdout, stderr=sys.stderr)  # ranks log where we log
        final = out_dir / "model.pt"
        return final if final.exists() else None

    from ..training.trainer import train_run

    train_data, val_data = load_train_data(run_cfg["benchmark"], data_dir)
    log.info("training data %s: %d train / %d validation rows", data_dir, len(train_data), len(val_data))
    return train_run(run_cfg, train_data, val_data, out_dir, on_stale=on_stale, stop_after=stop_after,
                     code=code_fingerprint(run_cfg))


def code_modules(run_cfg: dict) -> tuple[str, ...]:
    """The modules whose code defines a run's weights: this stage (trainer, model, data
    loading), the run's objective and its benchmark's training-data module."""
    spec = benchmarks.get(run_cfg["benchmark"])
    return ("nextlat.stages.train", objective_module(run_cfg["method"]["name"]),
            spec.module_name(spec.train_data_module))


def code_fingerprint(run_cfg: dict) -> str:
    """Hash of the source of :func:`code_modules` and everything they import (nextlat only):
    the same files the workflow lists as the training rule's code inputs."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for path in module_files(*code_modules(run_cfg)):
        h.update(str(Path(path).relative_to(root)).encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return h.hexdigest()[:16]
