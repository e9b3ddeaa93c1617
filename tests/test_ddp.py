"""Two CPU processes (Fabric ddp over gloo) train exactly what one process trains."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _tiny_run import tiny_cfg, train_val, with_changes

from nextlat.training import train_run

WORKER = Path(__file__).with_name("_tiny_run.py")


def launch(out: Path, method: str, *extra: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("LOCAL_RANK", None)  # in case pytest itself runs under a launcher
    proc = subprocess.run([sys.executable, str(WORKER), str(out), "--method", method, "--devices", "2", *extra],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def losses(out: Path) -> list[float]:
    with open(out / "metrics.csv", newline="") as f:
        return [float(r["train/loss"]) for r in csv.DictReader(f) if r["train/loss"]]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gpt", "nextlat"])
def test_two_process_ddp_matches_one_process(tmp_path, method):
    ddp_out = tmp_path / "ddp"
    launch(ddp_out, method)

    # Ranks end with identical weights (DDP kept them in sync through accumulation).
    r0, r1 = (torch.load(ddp_out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for k in r0:
        assert torch.equal(r0[k], r1[k]), f"{k} differs between ranks"

    # Same global batch (16 rows) on one process, as 2 micro-batches of 8 like the 2 ranks.
    cfg = with_changes(tiny_cfg(method), **{"model.dropout": 0.0, "train.micro_batch_size": 8})
    single = train_run(cfg, *train_val(), tmp_path / "single")
    assert losses(ddp_out) == pytest.approx(losses(tmp_path / "single"), rel=1e-5)
    final = torch.load(single, weights_only=True)["model"]
    for k, v in final.items():
        torch.testing.assert_close(r0[k], v, rtol=1e-4, atol=1e-5)
    assert torch.load(ddp_out / "model.pt", weights_only=True)["step"] == 12


@pytest.mark.slow
def test_interrupted_ddp_run_resumes_bit_identically(tmp_path):
    launch(tmp_path / "full", "gpt")
    launch(tmp_path / "resumed", "gpt", "--stop-after", "7")
    assert not (tmp_path / "resumed" / "model.pt").exists()
    launch(tmp_path / "resumed", "gpt")
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=True)["model"] for d in ("full", "resumed"))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert losses(tmp_path / "full") == losses(tmp_path / "resumed")
