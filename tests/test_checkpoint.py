"""Checkpoints: atomic writes, clear errors for corrupt or foreign files, stale handling."""
from __future__ import annotations

import shutil

import pytest
import torch
from _tiny_run import tiny_cfg, train_val, with_changes

from nextlat.training import (CheckpointError, CheckpointMismatchError, config_fingerprint, load_checkpoint,
                              save_checkpoint, train_run)
from nextlat.training import checkpoint as ckpt_mod


SHORT = {"steps": 4, "eval_every": 2, "schedule": {"name": "constant", "warmup_steps": 1}}


def short_cfg(**train) -> dict:
    return tiny_cfg("gpt", **{**SHORT, **train})


@pytest.fixture(scope="module")
def data():
    return train_val()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("run")
    train_run(short_cfg(), *data, out)
    return out


@pytest.fixture
def fresh_copy(run_dir, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(run_dir, out)
    return out


# --- fingerprints ----------------------------------------------------------------------

def test_fingerprint_covers_the_trained_model_only():
    cfg = tiny_cfg()
    fp = config_fingerprint(cfg)
    assert fp == config_fingerprint(dict(reversed(list(cfg.items()))))  # key order is irrelevant
    for key, value in [("train.lr", 1e-3), ("model.n_layer", 3), ("method.name", "nextlat"), ("seed", 8),
                       ("task", "other"), ("benchmark", "other"), ("train.schedule.warmup_steps", 3)]:
        assert config_fingerprint(with_changes(cfg, **{key: value})) != fp, key
    for key, value in [("runtime.devices", 4), ("runtime.precision", "bf16-mixed"), ("run_id", "x"),
                       ("train.log_every", 5), ("train.ckpt_every", 1)]:
        assert config_fingerprint(with_changes(cfg, **{key: value})) == fp, key
    # Model defaults are filled in: leaving out a key equal to its default changes nothing.
    explicit = with_changes(cfg, **{"model.mlp": "swiglu"})
    assert config_fingerprint(explicit) == fp


# --- atomic writes ---------------------------------------------------------------------

def test_save_is_atomic_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    save_checkpoint(path, {"x": torch.arange(3)})

    def crash(obj, f, *a, **kw):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"x": torch.arange(5)})
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.arange(3))  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left behind


# --- corrupt and foreign files ---------------------------------------------------------

def test_truncated_checkpoint_raises_checkpoint_error(fresh_copy):
    last = fresh_copy / "checkpoints" / "last.ckpt"
    blob = last.read_bytes()
    last.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        load_checkpoint(last, short_cfg())
    assert str(last) in str(err.value)
    assert not isinstance(err.value, CheckpointMismatchError)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.ckpt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a nextlat checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_checkpoint_from_another_config_names_the_keys(run_dir, data):
    cfg = short_cfg()
    last = run_dir / "checkpoints" / "last.ckpt"
    assert load_checkpoint(last, cfg)["step"] == 4
    other = with_changes(cfg, **{"train.lr": 1e-3, "model.n_embd": 64})
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(last, other)
    assert [d.split(":")[0] for d in err.value.diffs] == ["model.n_embd", "train.lr"]
    assert "train.lr: 0.003 (checkpoint) vs 0.001 (config)" in str(err.value)
    # Runtime settings are not part of the model: a checkpoint resumes on other hardware.
    load_checkpoint(last, with_changes(cfg, **{"runtime.precision": "bf16-mixed", "runtime.devices": 2}))


def test_trainer_refuses_a_stale_checkpoint_by_default(fresh_copy, data):
    other = short_cfg(lr=1e-3)
    with pytest.raises(CheckpointMismatchError, match=r"(?s)train\.lr.*on_stale='restart'"):
        train_run(other, *data, fresh_copy)
    assert (fresh_copy / "checkpoints" / "last.ckpt").exists()  # nothing was touched


def test_trainer_refuses_a_corrupt_checkpoint_by_default(fresh_copy, data):
    last = fresh_copy / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        train_run(short_cfg(), *data, fresh_copy)


def test_on_stale_restart_moves_old_files_aside_and_starts_fresh(fresh_copy, data, tmp_path, caplog):
    other = short_cfg(lr=1e-3)
    old_last = (fresh_copy / "checkpoints" / "last.ckpt").read_bytes()
    with caplog.at_level("WARNING"):
        path = train_run(other, *data, fresh_copy, on_stale="restart")
    assert "train.lr" in caplog.text
    assert (fresh_copy / "checkpoints" / "last.ckpt.stale").read_bytes() == old_last
    assert (fresh_copy / "model.pt.stale").exists()
    # Fresh means fresh: identical to a run of the new config in an empty directory.
    clean = train_run(other, *data, tmp_path / "clean")
    a, b = torch.load(path, weights_only=True), torch.load(clean, weights_only=True)
    assert a["fingerprint"] == config_fingerprint(other)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert load_checkpoint(fresh_copy / "checkpoints" / "last.ckpt", other)["step"] == 4


# --- run identity: data and code ----------------------------------------------------------
def _edited(ds):
    """The same dataset with one supervised position changed in every row (still in the
    vocabulary), so that whichever rows a short run samples, the weights must differ."""
    from nextlat.data.dataset import TokenDataset

    tokens = ds.tokens.clone()
    tokens[:, 5] = tokens[:, 5] % 18 + 1
    return TokenDataset(tokens, ds.loss_mask.clone(), ds.packed)


def test_edited_training_data_restarts_training_and_says_why(fresh_copy, data, tmp_path, caplog):
    """A finished run whose data changed is retrained from step 0 (not 'resumed at 4/4')."""
    train, val = data
    edited = _edited(train)
    assert edited.fingerprint() != train.fingerprint()
    with pytest.raises(CheckpointMismatchError, match="different train data"):
        train_run(short_cfg(), edited, val, fresh_copy)
    old = torch.load(fresh_copy / "model.pt", weights_only=True)
    with caplog.at_level("WARNING"):
        path = train_run(short_cfg(), edited, val, fresh_copy, on_stale="restart")
    assert "different train data" in caplog.text and "Restarting training from step 0" in caplog.text
    new = torch.load(path, weights_only=True)
    clean = torch.load(train_run(short_cfg(), edited, val, tmp_path / "clean"), weights_only=True)
    assert any(not torch.equal(old["model"][k], new["model"][k]) for k in old["model"])
    assert all(torch.equal(clean["model"][k], new["model"][k]) for k in new["model"])


def test_changed_code_is_part_of_the_identity(tmp_path, data):
    train_run(short_cfg(), *data, tmp_path, code="v1")
    assert load_checkpoint(tmp_path / "model.pt")["identity"]["code"] == "v1"
    with pytest.raises(CheckpointMismatchError, match="different code"):
        train_run(short_cfg(), *data, tmp_path, code="v2")
    train_run(short_cfg(), *data, tmp_path, code="v1")  # the same identity resumes (finished: no-op)


def test_code_fingerprint_follows_the_objective_and_what_it_imports():
    from nextlat.stages.train import code_modules

    run = {"benchmark": "pathstar", "method": {"name": "nextlat"}}
    from nextlat.codedeps import module_files

    files = [f.split("nextlat/", 1)[1] for f in module_files(*code_modules(run))]
    assert "objectives/nextlat.py" in files and "objectives/gpt.py" in files  # nextlat subclasses gpt
    assert "objectives/mtp.py" not in files and not any("report" in f for f in files)
    assert "training/trainer.py" in files
