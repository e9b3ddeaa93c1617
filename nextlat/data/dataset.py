"""In-memory token datasets and a deterministic, resumable batch order.

Every benchmark stores its sequences as a parquet table with a ``tokens`` list column and
a ``prompt_len`` column (tokens before the first supervised target). Loading gives a
:class:`TokenDataset`; the trainer asks it for batches by *step number*, so a resumed run
sees exactly the batches an uninterrupted run would have seen.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
import pyarrow.parquet as pq
import torch

from .batch import Batch


@dataclass
class TokenDataset:
    tokens: torch.Tensor  # (N, L) long; rows of equal length (padded or packed upstream)
    loss_mask: torch.Tensor  # (N, L) bool; True where the token is a supervised target
    packed: bool = False

    def __len__(self) -> int:
        return self.tokens.size(0)

    @property
    def seq_len(self) -> int:
        return self.tokens.size(1)

    def batch(self, idx) -> Batch:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Batch(self.tokens[idx], self.loss_mask[idx], self.packed)

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


def write_token_table(path: str | Path, rows: list[list[int]], prompt_lens: list[int],
                      extra: dict[str, list] | None = None) -> None:
    """Write sequences as parquet atomically (temp file, then rename)."""
    from .store import write_parquet

    write_parquet(path, pa.table({"tokens": pa.array(rows, type=pa.list_(pa.int32())),
                                  "prompt_len": pa.array(prompt_lens, type=pa.int32()), **(extra or {})}))


def read_token_table(path: str | Path, packed: bool = False, pad_id: int | None = None) -> TokenDataset:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"dataset {path} does not exist; generate it first (snakemake or `nextlat data`)")
    table = pq.read_table(path, columns=["tokens", "prompt_len"])
    tokens = table.column("tokens").combine_chunks()
    lengths = pa.compute.list_value_length(tokens).to_numpy(zero_copy_only=False)
    flat = tokens.flatten().to_numpy(zero_copy_only=False)
    return TokenDataset.from_flat(flat, lengths, table.column("prompt_len").to_numpy(), packed, pad_id)


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
