"""Scoring A5 models: accuracy at every position of the test words, and how far whole prefixes
stay right, for the transformer and (for NextLat) its dynamics model run as an RNN.

Two curves per mode, both over positions t = 1..eval_length (the paper does not say which
one Figure 10 plots, so both are kept):

* ``position``: the fraction of test words whose state after x_1..x_t is predicted right;
* ``prefix``: the fraction whose states are right at *every* position up to t (whole-
  sequence accuracy of the length-t prefix; never above ``position``).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from ...models.transformer import count_params
from . import data as a5data

log = logging.getLogger(__name__)


def modes(objective, eval_cfg: dict) -> dict:
    """Mode name -> (B, T) tokens -> logits: the transformer always; the RNN when the
    objective has one (NextLat) and ``eval.recurrent`` is on."""
    out = {"transformer": lambda x: objective.logits(x)}
    if eval_cfg.get("recurrent", True) and hasattr(objective, "recurrent_logits"):
        out["rnn"] = objective.recurrent_logits
    return out


def correct_matrix(logits_fn, inputs: np.ndarray, targets: np.ndarray, batch_size: int, device) -> np.ndarray:
    """(N, T) bool: the predicted state at each position equals the target."""
    out = np.zeros(targets.shape, dtype=bool)
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            x = torch.from_numpy(inputs[start:start + batch_size]).to(device)
            pred = logits_fn(x).argmax(-1).cpu().numpy()
            out[start:start + batch_size] = pred == targets[start:start + batch_size]
    return out


def curves(correct: np.ndarray) -> dict[str, list[float]]:
    """Per-position and whole-prefix accuracy, each a list over t = 1..T."""
    return {"position": correct.mean(0).tolist(),
            "prefix": np.logical_and.accumulate(correct, axis=1).mean(0).tolist()}


def at_lengths(curve: dict[str, list[float]], lengths: dict[str, int]) -> dict[str, float]:
    """``{"position@train": ..., "prefix@test": ...}`` read off the curves at named lengths."""
    return {f"{kind}@{name}": curve[kind][n - 1] for kind in ("position", "prefix") for name, n in lengths.items()}


def evaluate(objective, data_dir: Path, eval_cfg: dict, seed: int, device, out_dir: Path) -> dict:
    meta = a5data.read_meta(data_dir)
    inputs, targets = a5data.read_split(data_dir, "test")
    if eval_cfg.get("max_words"):
        inputs, targets = inputs[: eval_cfg["max_words"]], targets[: eval_cfg["max_words"]]
    lengths = {"train": meta["train_length"], "test": meta["test_length"], "eval": meta["eval_length"]}
    objective.eval()
    # A flat record (one value or curve per key) as every benchmark's: "<mode>/<curve>",
    # "<mode>/<curve>@<length name>" and "<mode>/params_body".
    result = {"n_words": len(inputs), **{f"{k}_length": v for k, v in lengths.items()}}
    fns = modes(objective, eval_cfg)
    params = body_params(objective, list(fns))
    for mode, fn in fns.items():
        t0 = time.perf_counter()
        curve = curves(correct_matrix(fn, inputs, targets, int(eval_cfg.get("batch_size", 1000)), device))
        points = at_lengths(curve, lengths)
        result.update({f"{mode}/{kind}": values for kind, values in curve.items()})
        result.update({f"{mode}/{key}": v for key, v in points.items()})
        result[f"{mode}/params_body"] = params[mode]
        log.info("%s mode: %d words x %d positions in %.1f s; per-position accuracy %.3f at %d (train), "
                 "%.3f at %d (test), %.3f at %d", mode, len(inputs), lengths["eval"], time.perf_counter() - t0,
                 points["position@train"], lengths["train"], points["position@test"], lengths["test"],
                 points["position@eval"], lengths["eval"])
    return result


def body_params(objective, modes: list[str]) -> dict[str, int]:
    """Parameters each mode runs, the token embedding and output head left out (how the
    paper counts 2.62M vs 6.43M): the transformer's blocks and norms; the RNN cell."""
    trunk = objective.trunk
    out = {"transformer": count_params(trunk) - count_params(trunk.tok_emb)}
    if "rnn" in modes:
        out["rnn"] = count_params(objective.dynamics)
    return out
