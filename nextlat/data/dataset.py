"""What the trainer reads from a dataset, the in-memory dataset, and a deterministic,
resumable batch order.

The trainer depends only on the :class:`Dataset` protocol: a length and ``batch(indices)``.
It asks for batches by *step number* (:func:`step_indices`: the dataset's own seeded sampler
``sample_indices(step, batch_size, seed)`` when it has one, else the seeded epochs of
:func:`batch_indices`), so a resumed run sees exactly the batches an uninterrupted run would
have seen. :class:`TokenDataset` holds rows in
memory (the benchmarks' parquet tables, read by :func:`nextlat.data.store.read_token_table`);
:class:`nextlat.data.shards.ShardDataset` serves packed blocks from memory-mapped shards.
This module does not import :mod:`nextlat.data.store` (store imports it, lazily).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from .batch import Batch


@runtime_checkable
class Dataset(Protocol):
    """What the trainer reads from a dataset (nothing else): its number of samples, and
    the samples at some indices (0 <= i < len) as one :class:`Batch` of equal-length rows."""

    def __len__(self) -> int: ...

    def batch(self, idx) -> Batch: ...

    def fingerprint(self) -> str:
        """A hash of everything the samples are made of: part of a run's identity, so a
        resumed run notices that its training data changed under it."""
        ...


@dataclass
class TokenDataset:
    tokens: torch.Tensor  # (N, L) long; rows of equal length (padded or packed upstream)
    loss_mask: torch.Tensor  # (N, L) bool; True where the token is a supervised target
    packed: bool = False
    labels: torch.Tensor | None = None  # (N, L) long: tagged rows (see Batch); None: next-token rows

    def __len__(self) -> int:
        return self.tokens.size(0)

    def fingerprint(self) -> str:
        h = hashlib.sha256(f"{tuple(self.tokens.shape)} packed={self.packed}".encode())
        h.update(self.tokens.to(torch.int64).contiguous().numpy().tobytes())
        h.update(self.loss_mask.contiguous().numpy().tobytes())
        if self.labels is not None:
            h.update(b"labels")
            h.update(self.labels.to(torch.int64).contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    @property
    def seq_len(self) -> int:
        return self.tokens.size(1)

    def batch(self, idx) -> Batch:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Batch(self.tokens, self.loss_mask, self.packed, self.labels).rows(idx)

    @classmethod
    def from_rows(cls, rows: list[list[int]] | np.ndarray, prompt_lens, packed: bool = False,
                  pad_id: int | None = None) -> "TokenDataset":
        """Rows of token ids; targets at index >= prompt_len are supervised.

        Rows of unequal length are right-padded with ``pad_id`` (unsupervised).
        """
        lengths = np.array([len(r) for r in rows])
        flat = np.concatenate([np.asarray(r) for r in rows]) if len(rows) else np.zeros(0)
        return cls.from_flat(flat, lengths, prompt_lens, packed, pad_id)

    @classmethod
    def from_flat(cls, flat: np.ndarray, lengths: np.ndarray, prompt_lens, packed: bool = False,
                  pad_id: int | None = None) -> "TokenDataset":
        """Like :meth:`from_rows` for concatenated rows (vectorised: no Python loop)."""
        lengths = np.asarray(lengths, dtype=np.int64)
        L = int(lengths.max())
        if (lengths != L).any() and pad_id is None:
            raise ValueError("rows have unequal lengths; pass pad_id to pad them")
        pos = np.arange(L)[None]
        inside = pos < lengths[:, None]
        tokens = np.full((len(lengths), L), pad_id if pad_id is not None else 0, dtype=np.int64)
        tokens[inside] = flat  # row-major fill matches the concatenation order
        supervised = (pos >= np.asarray(prompt_lens, dtype=np.int64)[:, None]) & inside
        return cls(torch.from_numpy(tokens), torch.from_numpy(supervised), packed)


def step_indices(data, step: int, batch_size: int, seed: int) -> np.ndarray:
    """Indices of global batch ``step`` of ``data``: the dataset's own seeded sampler if it
    has one (``sample_indices``, e.g. random windows of a large corpus), else
    :func:`batch_indices` (seeded epochs). Either way a pure function of (step, seed)."""
    if hasattr(data, "sample_indices"):
        return data.sample_indices(step, batch_size, seed)
    return batch_indices(step, batch_size, len(data), seed)


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> np.ndarray:
    """Indices of global batch ``step``: epochs are seeded permutations of 0..n-1.

    A pure function of (step, seed), so resuming at any step reproduces the order.
    Batches never straddle epochs: the tail of each permutation that does not fill a
    batch is dropped.
    """
    if batch_size > n:
        raise ValueError(f"batch_size {batch_size} exceeds the dataset size {n}")
    per_epoch = n // batch_size
    epoch, k = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return perm[k * batch_size:(k + 1) * batch_size]
