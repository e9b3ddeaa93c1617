"""Held-out next-token loss of an objective over packed validation blocks (any corpus)."""
from __future__ import annotations

import math

import torch

from ..objectives.base import IGNORE, Objective, token_ce
from ..progress import progress


@torch.no_grad()
def heldout_loss(objective: Objective, val, n_blocks: int | None, batch_size: int, device) -> dict:
    """Mean cross-entropy over every target of the first ``n_blocks`` blocks of ``val`` (all
    when None), read with document-restricted attention as in training."""
    eos = objective.model_cfg.eos_id
    n = len(val) if n_blocks is None else min(n_blocks, len(val))
    total = count = 0.0
    starts = range(0, n, batch_size)
    for s in progress(starts, len(starts), "held-out loss"):
        batch = val.batch(list(range(s, min(s + batch_size, n)))).to(device)
        logits = objective.logits(batch.inputs, batch.layout(eos))
        k = int((batch.targets != IGNORE).sum())
        total += float(token_ce(logits, batch.targets)) * k
        count += k
    ce = total / max(count, 1)
    return {"val_ce": ce, "val_ppl": math.exp(min(ce, 50.0)), "val_tokens": int(count), "val_blocks": n}
