"""The unit of training data every objective consumes."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..models.layout import Layout

IGNORE = -100  # target id that no loss counts (prompt tokens, padding)


@dataclass
class Batch:
    """A block of token rows and which of them are supervised targets.

    ``tokens`` (B, L): the model reads ``tokens[:, :-1]`` and predicts ``tokens[:, 1:]``.
    ``loss_mask`` (B, L) bool: True where ``tokens[:, j]`` is a supervised *target*
    (False on prompt/context tokens and padding). Only token-level losses use it.
    ``packed``: rows hold several EOS-separated documents (see models.layout).
    """

    tokens: Tensor
    loss_mask: Tensor
    packed: bool = False

    def to(self, device) -> "Batch":
        return Batch(self.tokens.to(device), self.loss_mask.to(device), self.packed)

    @property
    def inputs(self) -> Tensor:
        return self.tokens[:, :-1]

    @property
    def targets(self) -> Tensor:
        return self.tokens[:, 1:].masked_fill(~self.loss_mask[:, 1:], IGNORE)

    def layout(self, eos_id: int) -> Layout:
        """Layout of the *inputs* (tokens[:, :-1])."""
        return Layout.packed(self.inputs, eos_id) if self.packed else Layout()
