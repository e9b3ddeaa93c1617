"""Linear probes on a frozen model's hidden states (paper appendix F.4): how far ahead does
the state h_t = ``objective.hidden_states(inputs, layout, which="probe")`` linearly encode
the future? Probe k (k = 1..K) maps h_t to logits over x_{t+k}. All K probes are trained in
one pass over the data (one forward of the frozen model per batch), stored as one stacked
weight (K, V, D) and bias (K, V), and scored by their held-out cross-entropy.

Masking rule (:func:`probe_targets`). A row holds L = T + 1 tokens x_0..x_T; the model reads
x_0..x_{T-1}. Probe k at position t targets x_{t+k}, scored only if

* t + k <= T: offsets that cross the block end are masked;
* ``loss_mask`` is True at t + k: prompts and padding are never targets;
* for packed rows, none of x_{t+1}..x_{t+k-1} is EOS. EOS is the first token of a document
  (see ``models.layout``), so the target lies in x_t's document or is the EOS that ends it:
  k = 1 is plain next-token prediction (EOS included) and no offset reads past that EOS.

Rows that are not packed have no document boundaries. For tagged rows (``Batch.labels``,
position t predicts its label y_t) probe k at position t targets y_{t+k-1}, what position
t+k-1 predicts; for next-token rows that is x_{t+k}, as above.

Independence: each probe trains exactly as if it were alone. The loss is the sum over k of
probe k's own mean CE over its valid positions, AdamW acts per element, each probe starts
from zero weights and the log-frequencies of its own targets in the first batch, the states
are standardised with statistics of that batch, and gradient clipping is per probe. So one joint run gives the same probes as K runs,
at the cost of one.
"""
from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.batch import IGNORE, Batch
from ..data.dataset import Dataset, batch_indices
from ..io import write_text
from ..models.layout import document_ids
from ..progress import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeSettings:
    """Probe training and scoring; the defaults are the paper's (its pretraining optimizer)."""

    offsets: int = 20  # K: probes for x_{t+1} .. x_{t+K}
    steps: int = 20_000
    batch_size: int = 256
    micro_batch_size: int | None = None  # rows per forward (memory: rows * T * K * V logits); None = all
    lr: float = 3e-4  # constant
    weight_decay: float = 0.1  # on the weights only, not the biases (as the trainer does)
    grad_clip: float | None = 1.0  # per probe; None = off
    betas: tuple[float, float] = (0.9, 0.95)
    eval_blocks: int = 1024  # the first held-out blocks scored, in order (all if fewer)
    log_every: int = 100
    seed: int = 0  # batch order only: the probes start at zero

    def __post_init__(self):
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if len(self.betas) != 2:
            raise ValueError(f"probe setting betas needs two values, got {self.betas}")
        for name in ("offsets", "batch_size", "eval_blocks", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"probe setting {name} must be >= 1, got {getattr(self, name)}")
        if self.steps < 0:
            raise ValueError(f"probe setting steps must be >= 0, got {self.steps}")
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            raise ValueError(f"probe setting micro_batch_size must be >= 1 or None, got {self.micro_batch_size}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"probe setting grad_clip must be > 0 or None (off), got {self.grad_clip}")

    @classmethod
    def from_dict(cls, d: dict | None) -> "ProbeSettings":
        known = [f.name for f in fields(cls)]
        unknown = [k for k in (d or {}) if k not in known]
        if unknown:
            raise ValueError(f"unknown probe setting {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
        return cls(**(d or {}))


class LinearProbes(nn.Module):
    """K linear maps D -> V; probe k reads ``weight[k - 1]`` and ``bias[k - 1]``.

    The states are first standardised per dimension, ``(h - mean) / std``, with statistics
    fixed before training (:meth:`standardise_with`). That is an affine change of variables,
    so the probes are exactly as expressive as on raw states; it only conditions the problem
    so that states of very different scales (MTP's un-normed trunk output beside GPT's
    normed final layer) train equally well in the same number of steps.
    """

    def __init__(self, offsets: int, dim: int, vocab_size: int):
        super().__init__()
        # Zero start: each probe is a convex problem whose start owes nothing to the others.
        self.weight = nn.Parameter(torch.zeros(offsets, vocab_size, dim))
        self.bias = nn.Parameter(torch.zeros(offsets, vocab_size))
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @property
    def offsets(self) -> int:
        return self.weight.size(0)

    @torch.no_grad()
    def standardise_with(self, h: Tensor) -> None:
        """Fix the per-dimension mean and std from sample states ``h`` (..., D)."""
        flat = h.reshape(-1, h.size(-1)).to(self.mean.dtype)
        self.mean.copy_(flat.mean(0))
        self.std.copy_(flat.std(0).clamp(min=1e-6))

    @torch.no_grad()
    def start_at_unigram(self, targets: Tensor) -> None:
        """Bias k = log of the add-one frequencies of offset k's valid ``targets`` (..., K): each
        probe starts as the best constant predictor of its own targets, so the steps go to
        what the state adds (from zero, Adam moves a bias by about ``lr`` a step, and far
        offsets, which are mostly unigram, would spend the whole budget getting there)."""
        K, V = self.bias.shape
        flat = targets.reshape(-1, K)
        for k in range(K):
            valid = flat[:, k][flat[:, k] != IGNORE]
            counts = torch.bincount(valid.cpu(), minlength=V)[:V].to(self.bias.dtype) + 1.0
            self.bias[k].copy_((counts / counts.sum()).log().to(self.bias.device))

    def forward(self, h: Tensor) -> Tensor:
        """(..., D) states -> (..., K, V) logits: one GEMM against the stacked (K * V, D) weight."""
        K, V, D = self.weight.shape
        x = (h.to(self.weight.dtype) - self.mean) / self.std
        return F.linear(x, self.weight.view(K * V, D), self.bias.view(K * V)).unflatten(-1, (K, V))


def probe_targets(batch: Batch, eos_id: int, max_offset: int) -> tuple[Tensor, Tensor]:
    """(targets, valid), each (B, T, K): ``targets[:, t, k-1]`` is what position t+k-1 predicts
    (x_{t+k} for next-token rows), or IGNORE where the module docstring's rule masks it; ``valid`` is ``targets != IGNORE``."""
    # target_tokens[:, j] is what position j predicts (x_{j+1} for next-token rows), so the
    # offset-k target of position t is target_tokens[:, t+k-1].
    tgt, mask = batch.target_tokens, batch.target_mask
    B, T = tgt.shape
    targets = torch.full((B, T, max_offset), IGNORE, dtype=torch.long, device=tgt.device)
    doc = document_ids(batch.tokens, eos_id)[0] if batch.packed else None
    for k in range(1, min(max_offset, T) + 1):
        n = T - k + 1  # positions t = 0..T-k, whose offset-k target is inside the row
        ok = mask[:, k - 1:].clone()
        if doc is not None:
            # Document ids count EOS tokens and never decrease, so equal ids at t and t+k-1
            # mean no EOS among x_{t+1}..x_{t+k-1}.
            ok &= doc[:, k - 1:k - 1 + n] == doc[:, :n]
        targets[:, :n, k - 1] = tgt[:, k - 1:].masked_fill(~ok, IGNORE)
    return targets, targets != IGNORE


def offset_ce(probes: LinearProbes, h: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """Per-offset sum of CE over valid positions and the number of them, each (K,)."""
    logits = probes(h)  # (B, T, K, V)
    ce = F.cross_entropy(logits.flatten(0, -2), targets.flatten(), ignore_index=IGNORE, reduction="none")
    return ce.view(targets.shape).sum((0, 1)), (targets != IGNORE).sum((0, 1))


def clip_per_probe(probes: LinearProbes, max_norm: float) -> Tensor:
    """Clip each probe's (W_k, b_k) gradient to norm ``max_norm``; return the K norms before.

    Not ``clip_grad_norm_`` over all parameters: one global norm would shrink probe k's step
    whenever another probe's gradient is large, coupling probes that must train as if alone.
    """
    gw, gb = probes.weight.grad, probes.bias.grad
    norms = (gw.pow(2).sum((1, 2)) + gb.pow(2).sum(1)).sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)  # the same formula as clip_grad_norm_
    gw.mul_(scale[:, None, None])
    gb.mul_(scale[:, None])
    return norms


@contextlib.contextmanager
def _frozen(objective: nn.Module):
    """Eval mode (no dropout) and no parameter requiring grad; the flags are put back after.
    Nothing else is touched, so the weights stay bit-identical."""
    was_training, flags = objective.training, [(p, p.requires_grad) for p in objective.parameters()]
    objective.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        objective.train(was_training)


def _states(objective, batch: Batch, eos_id: int) -> Tensor:
    with torch.no_grad():
        return objective.hidden_states(batch.inputs, batch.layout(eos_id), which="probe")


def _chunks(n: int, size: int | None) -> list[slice]:
    size = size or n
    return [slice(a, min(a + size, n)) for a in range(0, n, size)]


def _no_nan(xs: list[float]) -> list[float | None]:
    return [None if math.isnan(x) else x for x in xs]  # JSON has no NaN


@dataclass
class ProbeResult:
    probes: LinearProbes
    val_ce: list[float]  # per offset k = 1..K; nan where no held-out position was scored
    val_counts: list[int]  # held-out positions scored per offset
    train_ce: list[float]  # per offset, over the last logging window of training
    steps: int
    seconds: float
    settings: ProbeSettings

    def to_record(self) -> dict:
        return {"offsets": list(range(1, self.probes.offsets + 1)), "ce": _no_nan(self.val_ce),
                "counts": self.val_counts, "train_ce": _no_nan(self.train_ce), "steps": self.steps,
                "seconds": self.seconds, "settings": asdict(self.settings)}


@torch.no_grad()
def evaluate_probes(objective, probes: LinearProbes, val: Dataset, eos_id: int, settings: ProbeSettings,
                    device="cpu") -> tuple[list[float], list[int]]:
    """(per-offset mean CE, per-offset counts) over the first ``settings.eval_blocks`` blocks
    of ``val`` in order: the sum of CE over valid positions divided by their number."""
    device, n = torch.device(device), min(settings.eval_blocks, len(val))
    objective.to(device)
    probes.to(device)
    sums = torch.zeros(probes.offsets, dtype=torch.float64)
    counts = torch.zeros(probes.offsets, dtype=torch.long)
    parts = _chunks(n, settings.micro_batch_size or settings.batch_size)
    with _frozen(objective):
        for rows in progress(parts, len(parts), "probe evaluation"):
            batch = val.batch(np.arange(rows.start, rows.stop)).to(device)
            s, c = offset_ce(probes, _states(objective, batch, eos_id), probe_targets(batch, eos_id, probes.offsets)[0])
            sums += s.double().cpu()
            counts += c.cpu()
    return (sums / counts).tolist(), counts.tolist()  # 0/0 -> nan


def train_probes(objective, train: Dataset, val: Dataset, settings: ProbeSettings, eos_id: int, device="cpu",
                 log_csv: str | Path | None = None, *, only: Iterable[int] | None = None) -> ProbeResult:
    """Train K probes on ``objective``'s frozen probe states, then score them on ``val``.

    ``only`` (offsets in 1..K) trains just those probes; the others stay at zero. As every
    probe trains alone, probe k comes out the same either way (the tests check it).
    """
    s, K, device, start = settings, settings.offsets, torch.device(device), time.perf_counter()
    active = torch.ones(K, dtype=torch.bool)
    if only is not None:
        only = sorted(set(only))
        if not all(1 <= k <= K for k in only):
            raise ValueError(f"only={only}: offsets run from 1 to {K}")
        active[:] = False
        active[[k - 1 for k in only]] = True
    active = active.to(device)
    objective.to(device)
    with _frozen(objective):
        # Standardisation statistics from the first training batch (deterministic: the order
        # is a function of the seed), before any probe step.
        first = train.batch(batch_indices(0, s.batch_size, len(train), s.seed)).to(device)
        sample = _states(objective, first, eos_id)
        probes = LinearProbes(K, sample.size(-1), objective.model_cfg.vocab_size).to(device)
        probes.standardise_with(sample)
        probes.start_at_unigram(probe_targets(first, eos_id, K)[0])
        optimizer = torch.optim.AdamW([{"params": [probes.weight], "weight_decay": s.weight_decay},
                                       {"params": [probes.bias], "weight_decay": 0.0}], lr=s.lr, betas=s.betas)
        window_sum = torch.zeros(K, dtype=torch.float64)
        window_n = torch.zeros(K, dtype=torch.long)
        train_ce, curve = [math.nan] * K, []
        for step in range(1, s.steps + 1):
            batch = train.batch(batch_indices(step - 1, s.batch_size, len(train), s.seed)).to(device)
            targets = probe_targets(batch, eos_id, K)[0].masked_fill(~active, IGNORE)
            counts = (targets != IGNORE).sum((0, 1))
            optimizer.zero_grad(set_to_none=True)
            for rows in _chunks(targets.size(0), s.micro_batch_size):
                sums, _ = offset_ce(probes, _states(objective, batch.rows(rows), eos_id), targets[rows])
                # Divide by the whole batch's count of each offset: the gradient of probe k is
                # that of its own mean CE, however many positions the other offsets have.
                (sums / counts.clamp(min=1)).sum().backward()
                window_sum += sums.detach().double().cpu()
            window_n += counts.cpu()
            if s.grad_clip is not None:
                clip_per_probe(probes, s.grad_clip)
            optimizer.step()
            if step % s.log_every == 0 or step == s.steps:
                train_ce = (window_sum / window_n).tolist()
                curve += [(step, k + 1, ce) for k, ce in enumerate(train_ce)]
                scored = [ce for ce in train_ce if not math.isnan(ce)]
                mean = sum(scored) / len(scored) if scored else math.nan
                log.info("probes step %d/%d: mean CE %.4f, k=1 %.4f, k=%d %.4f, %.0f s", step, s.steps, mean,
                         train_ce[0], K, train_ce[-1], time.perf_counter() - start)
                window_sum.zero_()
                window_n.zero_()
        val_ce, val_counts = evaluate_probes(objective, probes, val, eos_id, s, device)
    if log_csv is not None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["step", "offset", "ce"])
        writer.writerows(curve)
        write_text(log_csv, text.getvalue())
    return ProbeResult(probes, val_ce, val_counts, train_ce, s.steps, time.perf_counter() - start, s)
