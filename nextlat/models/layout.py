"""Sequence packing: document ids, per-document positions and attention masks.

Convention (as in the official NextLat code): EOS marks a document boundary and is the
*first* token of the next document, so a packed row looks like ``EOS a b c EOS d e ...``.
Predicting EOS from the last token of a document is allowed (the model learns to stop),
but nothing else may read across a boundary: attention is causal and restricted to the
same document, and positions restart at 0 on every EOS.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Layout:
    """Where documents start and end inside a (B, T) block of tokens.

    ``doc_ids`` is None for rows that hold a single document each: then plain causal
    attention and 0..T-1 positions apply, and the fast ``is_causal`` SDPA path is used.
    """

    doc_ids: Tensor | None = None  # (B, T) long, non-decreasing along T
    pos_ids: Tensor | None = None  # (B, T) long, position inside the document

    @staticmethod
    def packed(tokens: Tensor, eos_id: int) -> "Layout":
        doc_ids, pos_ids = document_ids(tokens, eos_id)
        return Layout(doc_ids, pos_ids)

    @property
    def is_packed(self) -> bool:
        return self.doc_ids is not None

    def positions(self, B: int, T: int, device) -> Tensor:
        if self.pos_ids is not None:
            return self.pos_ids
        return torch.arange(T, device=device).expand(B, T)

    def causal_mask(self) -> Tensor | None:
        """(B, 1, T, T) boolean mask, True = may attend; None means plain causal."""
        if not self.is_packed:
            return None
        T = self.doc_ids.size(1)
        causal = torch.ones(T, T, dtype=torch.bool, device=self.doc_ids.device).tril()
        same_doc = self.doc_ids[:, :, None] == self.doc_ids[:, None, :]
        return (same_doc & causal)[:, None]

    def anticausal_mask(self) -> Tensor:
        """(B, 1, T, T) boolean mask for a right-to-left encoder: a query at t may attend to
        keys s >= t of its own document (upper triangle). Needs ``doc_ids``."""
        if not self.is_packed:
            raise ValueError("anticausal_mask needs document ids (use Layout.packed_backward)")
        T = self.doc_ids.size(1)
        anticausal = torch.ones(T, T, dtype=torch.bool, device=self.doc_ids.device).triu()
        same_doc = self.doc_ids[:, :, None] == self.doc_ids[:, None, :]
        return (same_doc & anticausal)[:, None]

    @staticmethod
    def packed_backward(tokens: Tensor, eos_id: int) -> "Layout":
        """Layout for an encoder that reads each document right to left (BST backward).

        The same EOS boundaries seen from the other side: an EOS *closes* the document
        before it (doc ids shifted right by one), and positions count down to the
        document's last token, so the closing EOS sits at position 0.
        """
        doc_ids, pos_ids = backward_document_ids(tokens, eos_id)
        return Layout(doc_ids, pos_ids)

    def same_doc(self, offset: int) -> Tensor | bool:
        """(B, T - offset) mask: position t and t + offset lie in the same document.

        Because doc ids never decrease, equal ids at both ends means no boundary was
        crossed anywhere in between (every crossed EOS counts, not only the newest).
        """
        if not self.is_packed:
            return True
        return self.doc_ids[:, offset:] == self.doc_ids[:, : self.doc_ids.size(1) - offset]


def document_ids(tokens: Tensor, eos_id: int) -> tuple[Tensor, Tensor]:
    """Document id (cumulative EOS count) and in-document position for every token."""
    is_eos = tokens == eos_id
    doc_ids = is_eos.long().cumsum(dim=1)
    idx = torch.arange(tokens.size(1), device=tokens.device).expand_as(tokens)
    starts = torch.where(is_eos, idx, torch.zeros_like(idx)).cummax(dim=1).values
    return doc_ids, idx - starts


def backward_document_ids(tokens: Tensor, eos_id: int) -> tuple[Tensor, Tensor]:
    """Backward document id and count-down position for every token.

    The id is the forward id shifted right by one (``doc_ids - is_eos``), so an EOS belongs
    to the document it ends. The position is the distance to the last token of that
    document in the row (its closing EOS when present), so the closing EOS is at 0.
    """
    is_eos = tokens == eos_id
    doc_ids = is_eos.long().cumsum(dim=1) - is_eos.long()
    T = tokens.size(1)
    idx = torch.arange(T, device=tokens.device).expand_as(tokens)
    is_last = torch.ones_like(is_eos)
    is_last[:, :-1] = doc_ids[:, 1:] != doc_ids[:, :-1]
    last = torch.where(is_last, idx, torch.full_like(idx, T))
    ends = last.flip(1).cummin(dim=1).values.flip(1)  # first document end at or after t
    return doc_ids, ends - idx
