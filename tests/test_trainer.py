"""Trainer: resumption is exact, batch semantics are fixed, logs and final model are right."""
from __future__ import annotations

import csv
import math

import pytest
import torch
from _tiny_run import tiny_cfg, train_val, with_changes

from nextlat.data.dataset import batch_indices
from nextlat.training import load_checkpoint, load_model, lr_lambda, train_run


def weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def rows(out_dir) -> list[dict]:
    with open(out_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def train_losses(out_dir) -> list[float]:
    return [float(r["train/loss"]) for r in rows(out_dir) if r["train/loss"]]


@pytest.fixture(scope="module")
def data():
    return train_val()


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("gpt_run")
    return out, train_run(tiny_cfg("gpt"), *data, out)


# --- schedules -------------------------------------------------------------------------

def test_constant_schedule_with_and_without_warmup():
    f = lr_lambda({"name": "constant"}, 100)
    assert [f(s) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    f = lr_lambda({"name": "constant", "warmup_steps": 4}, 100)
    assert [f(s) for s in (0, 1, 3, 4, 99)] == [0.25, 0.5, 1.0, 1.0, 1.0]


def test_wsd_schedule():
    f = lr_lambda({"name": "wsd", "warmup_steps": 10, "decay_steps": 20, "min_lr_ratio": 0.1}, 100)
    assert f(0) == pytest.approx(0.1) and f(4) == pytest.approx(0.5) and f(9) == 1.0
    assert f(10) == 1.0 and f(79) == 1.0  # stable until the last 20 steps
    assert f(80) == pytest.approx(1 - 0.9 / 20)
    assert f(89) == pytest.approx(1 - 0.9 * 10 / 20)
    assert f(99) == pytest.approx(0.1)  # the final step runs at min_lr_ratio * lr
    assert all(f(s) >= f(s + 1) for s in range(10, 99))


def test_schedule_errors_name_the_key():
    with pytest.raises(ValueError, match="train.schedule.name"):
        lr_lambda({"name": "cosine"}, 10)
    with pytest.raises(ValueError, match="decay_steps"):
        lr_lambda({"name": "wsd", "warmup_steps": 5, "decay_steps": 6}, 10)


# --- resumption ------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["gpt", "nextlat"])
def test_interrupted_run_resumes_bit_identically(tmp_path, data, method):
    cfg = tiny_cfg(method)  # dropout > 0: a resumed run must also restore the RNG
    full = train_run(cfg, *data, tmp_path / "full")

    out = tmp_path / "interrupted"
    assert train_run(cfg, *data, out, stop_after=7) is None  # 7: between ckpt_every=5 boundaries
    assert not (out / "model.pt").exists()
    assert load_checkpoint(out / "checkpoints" / "last.ckpt", cfg)["step"] == 7
    assert train_run(cfg, *data, out, stop_after=2) is None  # a second interruption
    resumed = train_run(cfg, *data, out)

    assert_same_weights(weights(full), weights(resumed))
    assert train_losses(tmp_path / "full") == train_losses(out)  # one row per step, no gaps/dupes
    assert [int(r["step"]) for r in rows(out) if r["train/loss"]] == list(range(1, 13))


def test_finished_run_is_not_retrained(gpt_run, data):
    out, path = gpt_run
    before = weights(path)
    assert train_run(tiny_cfg("gpt"), *data, out) == path
    assert_same_weights(before, weights(path))
    assert len(train_losses(out)) == 12


# --- batch semantics -------------------------------------------------------------------

@pytest.mark.parametrize("method", ["gpt", "nextlat"])
def test_grad_accumulation_matches_one_big_batch(tmp_path, data, method):
    cfg = with_changes(tiny_cfg(method), **{"model.dropout": 0.0})  # masks depend on micro-batch shapes
    big = train_run(cfg, *data, tmp_path / "big")
    small = train_run(with_changes(cfg, **{"train.micro_batch_size": 4}), *data, tmp_path / "small")
    assert train_losses(tmp_path / "small") == pytest.approx(train_losses(tmp_path / "big"), rel=1e-5)
    for k, v in weights(big).items():
        torch.testing.assert_close(weights(small)[k], v, rtol=1e-4, atol=1e-5)


def test_micro_batch_must_divide_batch(tmp_path, data):
    with pytest.raises(ValueError, match="micro_batch_size"):
        train_run(tiny_cfg(micro_batch_size=5), *data, tmp_path)


# --- logs and final model --------------------------------------------------------------

def test_metrics_csv_has_logged_columns(gpt_run):
    out, _ = gpt_run
    table = rows(out)
    assert {"step", "lr", "train/loss", "train/ce", "train/acc", "train/grad_norm", "val/loss",
            "val/ce", "val/acc"} <= set(table[0])
    train = [r for r in table if r["train/loss"]]
    f = lr_lambda(tiny_cfg()["train"]["schedule"], 12)
    assert [float(r["lr"]) for r in train] == pytest.approx([3e-3 * f(s) for s in range(12)])
    assert [int(r["step"]) for r in table if r["val/loss"]] == [4, 8, 12]
    assert all(math.isfinite(float(r["train/loss"])) for r in train)
    assert float(train[-1]["train/loss"]) < float(train[0]["train/loss"])  # it learns


def test_model_file_reproduces_logits_and_val_loss(gpt_run, data):
    out, path = gpt_run
    cfg = tiny_cfg("gpt")
    model = load_model(path, cfg)
    assert not model.training
    stored = torch.load(path, weights_only=True)
    assert stored["step"] == 12 and stored["param_counts"] == model.param_counts()

    # The final val loss in metrics.csv was computed by the trainer on these batches.
    _, val = data
    with torch.no_grad():
        losses = [model.loss(val.batch(batch_indices(i, 16, len(val), cfg["seed"]))).loss for i in range(2)]
    logged = [float(r["val/loss"]) for r in rows(out) if r["val/loss"]][-1]
    assert torch.stack(losses).mean().item() == pytest.approx(logged, rel=1e-5)

    tokens = val.tokens[:4, :-1]
    same = load_model(out / "checkpoints" / "last.ckpt")  # last.ckpt holds the same final weights
    with torch.no_grad():
        torch.testing.assert_close(model.logits(tokens), same.logits(tokens), rtol=0, atol=0)
