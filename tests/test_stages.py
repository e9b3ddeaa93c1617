"""The training stage's process hygiene: run locks, config.yaml only once training starts,
and no orphaned trainer when the process that started it dies."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from nextlat import config as nlconfig
from nextlat.runs import expand_runs
from nextlat.stages.data import data_config, make_data
from nextlat.stages.process import RunLockedError, run_lock
from nextlat.stages.train import train
from nextlat.training import CheckpointMismatchError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A smoke-scale run of the first benchmark, its data generated, trained once."""
    cfg = nlconfig.load(ROOT / "config.yaml", "smoke")
    run = next(r for r in expand_runs(cfg).values() if r.method == "gpt")
    tmp = tmp_path_factory.mktemp("stage")
    data_dir = tmp / "data"
    make_data(run.benchmark, run.task, data_config(run.benchmark, cfg["benchmarks"][run.benchmark]), data_dir,
              workers=1)
    cfg_run = {**run.config, "train": {**run.config["train"], "steps": 3, "eval_every": 3}}
    train(cfg_run, data_dir, tmp / "run")
    return cfg_run, data_dir, tmp / "run"


def test_a_run_being_trained_is_locked(smoke_run):
    cfg, data_dir, run_dir = smoke_run
    with run_lock(run_dir):
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            train(cfg, data_dir, run_dir)
    assert train(cfg, data_dir, run_dir) == run_dir / "model.pt"  # released: resumes (finished)


def test_a_refused_training_keeps_the_config_of_its_model(smoke_run):
    cfg, data_dir, run_dir = smoke_run
    before = (run_dir / "config.yaml").read_text()
    other = {**cfg, "train": {**cfg["train"], "lr": cfg["train"]["lr"] * 2}}
    with pytest.raises(CheckpointMismatchError, match="train.lr"):
        train(other, data_dir, run_dir)
    assert (run_dir / "config.yaml").read_text() == before
    assert yaml.safe_load(before)["train"]["lr"] == cfg["train"]["lr"]


def test_training_stops_when_its_parent_is_killed(tmp_path):
    """A parent starts a child that waits like a trainer (exit_with_parents), then the parent
    is SIGKILLed: the child must exit by itself within a few seconds."""
    child = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from nextlat.stages.process import exit_with_parents
        exit_with_parents(levels=1, interval_s=0.2)
        open({str(tmp_path / 'started')!r}, 'w').close()
        time.sleep(60)
    """)
    parent = textwrap.dedent(f"""
        import subprocess, sys, time
        p = subprocess.Popen([sys.executable, "-c", {child!r}])
        open({str(tmp_path / 'child.pid')!r}, 'w').write(str(p.pid))
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", parent])
    deadline = time.time() + 30
    while not (tmp_path / "started").exists() and time.time() < deadline:
        time.sleep(0.1)
    child_pid = int((tmp_path / "child.pid").read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{child_pid}/stat").read_text().split(")")[1].split()[0] == "Z":
            break  # exited; a zombie until init reaps it
        time.sleep(0.2)
    else:
        os.kill(child_pid, signal.SIGKILL)
        pytest.fail("the child outlived its killed parent")


def test_a_failed_data_job_leaves_nothing_behind(tmp_path, monkeypatch):
    """The generator writes some files, then fails: the dataset folder stays as it was."""
    from nextlat import benchmarks

    cfg = nlconfig.load(ROOT / "config.yaml", "smoke")
    name = benchmarks.names()[0]
    spec = benchmarks.get(name)
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("old")

    def half_then_fail(task, data_cfg, out_dir, workers=None, inputs=None):
        (out_dir / "graph.graphml").write_text("partial")
        (out_dir / "train").mkdir()
        raise RuntimeError("generator died")

    monkeypatch.setattr(spec, "make_data", half_then_fail)
    task = cfg["benchmarks"][name]["tasks"][0]
    with pytest.raises(RuntimeError, match="generator died"):
        make_data(name, task, data_config(name, cfg["benchmarks"][name]), out, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary folder left
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
