"""The unit of training data every objective consumes."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..models.layout import Layout

IGNORE = -100  # target id that no loss counts (prompt tokens, padding)


@dataclass
class Batch:
    """Rows the model reads, what each position predicts, and which targets are supervised.

    Two kinds of rows share this one interface; objectives ask for ``inputs``, ``targets``
    and ``target_tokens`` and train on both kinds with the same code (a method that cannot,
    BST, says so in ``Objective.tagged_problem``):

    * next-token rows (``labels`` is None): ``tokens`` (B, L); the model reads
      ``tokens[:, :-1]`` and position t predicts ``tokens[:, t+1]``.
    * tagged rows (``labels`` given, token tagging): the model reads all of ``tokens``
      (B, T) and position t predicts ``labels[:, t]``, e.g. the state after x_1..x_t. What a
      method "rolls forward" (NextLat's next-token embedding E[x_{t+1}]) is still an *input*.

    ``loss_mask`` (B, L) bool: True where the target stored at that index is supervised
    (for next-token rows ``tokens[:, j]`` as the target of position j-1, for tagged rows
    ``labels[:, j]``); False on prompts and padding. ``packed``: rows hold several
    EOS-separated documents (see models.layout).
    """

    tokens: Tensor
    loss_mask: Tensor
    packed: bool = False
    labels: Tensor | None = None

    def __post_init__(self):
        if self.labels is not None:
            if self.labels.shape != self.tokens.shape:
                raise ValueError(f"Batch: labels {tuple(self.labels.shape)} and tokens {tuple(self.tokens.shape)} "
                                 "must have one label per input")
            if self.packed:
                raise ValueError("Batch: tagged rows (labels) cannot be packed")

    def to(self, device) -> "Batch":
        labels = None if self.labels is None else self.labels.to(device)
        return Batch(self.tokens.to(device), self.loss_mask.to(device), self.packed, labels)

    def rows(self, idx) -> "Batch":
        """The batch restricted to some rows."""
        labels = None if self.labels is None else self.labels[idx]
        return Batch(self.tokens[idx], self.loss_mask[idx], self.packed, labels)

    @property
    def tagged(self) -> bool:
        return self.labels is not None

    @property
    def inputs(self) -> Tensor:
        """(B, T): what the model reads."""
        return self.tokens if self.tagged else self.tokens[:, :-1]

    @property
    def target_tokens(self) -> Tensor:
        """(B, T): what each position predicts, unmasked (the ids a method may teacher-force)."""
        return self.labels if self.tagged else self.tokens[:, 1:]

    @property
    def target_mask(self) -> Tensor:
        """(B, T) bool: the target of position t is supervised."""
        return self.loss_mask if self.tagged else self.loss_mask[:, 1:]

    @property
    def targets(self) -> Tensor:
        """(B, T): ``target_tokens`` with unsupervised ones set to IGNORE."""
        return self.target_tokens.masked_fill(~self.target_mask, IGNORE)

    def layout(self, eos_id: int) -> Layout:
        """Layout of the *inputs*."""
        return Layout.packed(self.inputs, eos_id) if self.packed else Layout()
