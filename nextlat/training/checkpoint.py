"""Checkpoint files: atomic writes, corruption checks and config fingerprints.

A checkpoint is a ``torch.save``-d dict holding at least ``model`` (a state dict),
``config`` (the resolved run config) and ``fingerprint`` (:func:`config_fingerprint` of
that config). Training checkpoints add optimizer/scheduler/RNG state; the final
``model.pt`` adds ``param_counts`` and ``step``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from ..io import atomic_path
from ..models.transformer import ModelConfig
from ..objectives import Objective, build_objective

# Top-level keys that define the trained weights. ``runtime`` (devices, precision, logging)
# and ``run_id`` (a name) are deliberately left out.
FINGERPRINT_KEYS = ("benchmark", "task", "seed", "model", "method", "train")
# I/O cadence only: changing how often we log or checkpoint must not invalidate a run.
_IGNORED = {"train.log_every", "train.ckpt_every"}


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read (missing pieces, truncated, corrupt)."""


class CheckpointMismatchError(CheckpointError):
    """A readable checkpoint that was trained with a different config."""

    def __init__(self, message: str, diffs: list[str]):
        super().__init__(message)
        self.diffs = diffs


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: list(d) if isinstance(d, tuple) else d}


def fingerprinted_part(cfg: dict) -> dict[str, Any]:
    """The dotted-path -> value items that :func:`config_fingerprint` hashes."""
    part = {k: cfg.get(k) for k in FINGERPRINT_KEYS}
    if isinstance(part["model"], dict):  # fill dataclass defaults: {} and {n_layer: 2} agree
        part["model"] = ModelConfig.from_dict(part["model"]).to_dict()
    return {k: v for k, v in _flatten(part).items() if k not in _IGNORED}


def config_fingerprint(cfg: dict) -> str:
    blob = json.dumps(fingerprinted_part(cfg), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def config_diff(stored: dict, expected: dict) -> list[str]:
    """Human-readable ``key: stored -> expected`` lines for every differing dotted key."""
    a, b = fingerprinted_part(stored), fingerprinted_part(expected)
    missing = object()
    return [f"{k}: {a.get(k, '<absent>')!r} (checkpoint) vs {b.get(k, '<absent>')!r} (config)"
            for k in sorted(set(a) | set(b)) if a.get(k, missing) != b.get(k, missing)]


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write ``state`` so that ``path`` is either the old file or the complete new one."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())  # the data is on disk before the rename makes it visible
    try:  # persist the rename itself (best effort; not every filesystem allows it)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def check_identity(path: str | Path, state: dict, identity: dict) -> None:
    """Refuse a checkpoint whose training data or code differ from this run's."""
    stored = state.get("identity") or {}
    changed = [k for k, v in identity.items() if stored.get(k) != v]
    if changed:
        diffs = [f"{k}: {stored.get(k, '<absent>')} (checkpoint) vs {identity[k]} (now)" for k in changed]
        what = ", ".join(k.replace("_", " ") for k in changed)
        raise CheckpointMismatchError(f"checkpoint {path} was trained with a different {what}:\n  "
                                      + "\n  ".join(diffs), diffs)


def load_checkpoint(path: str | Path, expected_cfg: dict | None = None) -> dict:
    """Read a checkpoint; check it against ``expected_cfg`` when given."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError/UnpicklingError/EOFError/... for bad files
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt and cannot be read "
                              f"({type(e).__name__}: {e}); delete it to start over") from e
    if not isinstance(state, dict) or not {"model", "config", "fingerprint"} <= set(state):
        raise CheckpointError(f"{path} is not a nextlat checkpoint (expected a dict with "
                              "'model', 'config' and 'fingerprint')")
    if expected_cfg is not None and state["fingerprint"] != config_fingerprint(expected_cfg):
        diffs = config_diff(state["config"], expected_cfg)
        detail = "\n  ".join(diffs) or "(no key differs; the fingerprint scheme changed)"
        raise CheckpointMismatchError(
            f"checkpoint {path} was written by a different config; differing keys:\n  {detail}", diffs)
    return state


def load_model(path: str | Path, expected_cfg: dict | None = None, device: str | torch.device = "cpu"
               ) -> Objective:
    """Rebuild the objective stored in ``path`` (model.pt or a .ckpt) in eval mode."""
    state = load_checkpoint(path, expected_cfg)
    cfg = state["config"]
    objective = build_objective(cfg["model"], cfg["method"])
    try:
        objective.load_state_dict(state["model"])
    except RuntimeError as e:
        raise CheckpointError(f"weights in {path} do not fit the model its config builds: {e}") from e
    return objective.to(device).eval()
