"""The one interface every training objective implements.

A method (GPT, NextLat, MTP, JTP, BST, ...) is an ``nn.Module`` that owns its parameters
and answers four questions; the trainer, evaluations and probes only ever ask these:

* ``loss(batch)``           -> :class:`StepOutput` (scalar loss + detached metrics)
* ``logits(tokens, layout)`` -> next-token logits (B, T, V) used for generation and scoring
* ``hidden_states(..., which)`` -> the state the paper probes / measures rank on (B, T, D)
* ``param_counts()``        -> parameters used in training and at inference (Table 4)

To add a method: subclass :class:`Objective`, set ``name``, and register it with
:func:`register`. Nothing in the trainer changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.batch import IGNORE, Batch  # noqa: F401  (re-exported: objectives use both)
from ..models.layout import Layout
from ..models.transformer import ModelConfig, count_params



@dataclass
class StepOutput:
    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)


class Objective(nn.Module):
    name: ClassVar[str] = "base"

    def __init__(self, model: ModelConfig, method: dict):
        super().__init__()
        self.model_cfg = model
        self.method_cfg = dict(method)

    # --- the interface ---------------------------------------------------------------
    def loss(self, batch: Batch) -> StepOutput:
        raise NotImplementedError

    def logits(self, tokens: Tensor, layout: Layout | None = None) -> Tensor:
        raise NotImplementedError

    def hidden_states(self, tokens: Tensor, layout: Layout | None = None, which: str = "probe") -> Tensor:
        """The paper's per-method state: ``which="probe"`` for linear probes (F.4),
        ``"rank"`` for effective rank (F.1). They differ only for MTP and JTP."""
        raise NotImplementedError

    def inference_modules(self) -> list[nn.Module]:
        """Modules used by plain next-token generation (for the inference param count)."""
        raise NotImplementedError

    def param_counts(self) -> dict[str, int]:
        seen: set[int] = set()
        inference = 0
        for mod in self.inference_modules():
            for p in mod.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    inference += p.numel()
        return {"training": count_params(self), "inference": inference}

    def forward(self, batch: Batch) -> StepOutput:  # so Fabric/DDP wrap the loss computation
        return self.loss(batch)


def upcast(x: Tensor) -> Tensor:
    """At least float32 for losses (bf16 logits lose too much); float64 stays float64."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def token_ce(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy over non-ignored targets (0 when none is supervised)."""
    flat = targets.reshape(-1)
    n = (flat != IGNORE).sum()
    total = F.cross_entropy(upcast(logits.reshape(-1, logits.size(-1))), flat,
                            ignore_index=IGNORE, reduction="sum")
    return total / n.clamp(min=1)


def token_accuracy(logits: Tensor, targets: Tensor) -> Tensor:
    valid = targets != IGNORE
    correct = (logits.argmax(-1) == targets) & valid
    return correct.sum().float() / valid.sum().clamp(min=1)


_REGISTRY: dict[str, type[Objective]] = {}


def register(cls: type[Objective]) -> type[Objective]:
    _REGISTRY[cls.name] = cls
    return cls


def available() -> list[str]:
    return sorted(_REGISTRY)


def build_objective(model: ModelConfig | dict, method: dict) -> Objective:
    """Build the objective named ``method["name"]`` for a model config."""
    if isinstance(model, dict):
        model = ModelConfig.from_dict(model)
    name = method.get("name")
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; available: {available()}")
    return _REGISTRY[name](model, method)
