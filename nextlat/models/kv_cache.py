"""Key/value cache for incremental decoding with the trunk in :mod:`nextlat.models.transformer`.

Decoding rows are single documents (positions 0..T-1), so one cache holds, for every
attention layer that uses it, keys and values (B, H, max_len, hd) plus each row's current
length ``pos``. Rows may sit at different positions: new tokens of row b go to positions
``pos[b], pos[b] + 1, ...`` and attend to every cached key at or before their own
position. Keys beyond a row's position may hold stale values (right padding of a prompt,
an earlier finished step); they are masked until overwritten, so no separate padding mask
is needed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class KVCache:
    """Per-layer keys/values of a batch of rows, keyed by the attention module writing them."""

    def __init__(self, batch_size: int, max_len: int, device: str | torch.device):
        self.max_len = int(max_len)
        self.pos = torch.zeros(batch_size, dtype=torch.long, device=device)
        # A host-side upper bound on pos.max(): sizes the key window without a device sync.
        self.used = 0
        self.extra: dict = {}  # objective-specific, batch-independent constants (BST's B_EOS)
        self._kv: dict[nn.Module, tuple[Tensor, Tensor]] = {}
        self._memo: dict[int, tuple[Tensor, Tensor | None]] = {}

    @property
    def batch_size(self) -> int:
        return self.pos.size(0)

    def positions(self, T: int) -> Tensor:
        """(B, T) positions of the next T tokens of every row."""
        return self._step(T)[0]

    def _step(self, T: int) -> tuple[Tensor, Tensor | None]:
        # Positions and mask are shared by all layers of one call: compute them once.
        if T not in self._memo:
            pos = self.pos[:, None] + torch.arange(T, device=self.pos.device)
            mask = None
            if self.used:  # key j visible to the query at position p iff j <= p
                keys = torch.arange(self.used + T, device=self.pos.device)
                mask = (keys[None, None, :] <= pos[:, :, None])[:, None]  # (B, 1, T, S)
            self._memo[T] = (pos, mask)
        return self._memo[T]

    def attend(self, layer: nn.Module, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Store ``layer``'s new keys/values (B, H, T, hd) and attend over the row's cache."""
        B, H, T, hd = k.shape
        if self.used + T > self.max_len:
            raise ValueError(f"KV cache of {self.max_len} positions is full ({self.used} used + {T})")
        if layer not in self._kv:
            self._kv[layer] = (k.new_zeros(B, H, self.max_len, hd), v.new_zeros(B, H, self.max_len, hd))
        K, V = self._kv[layer]
        pos, mask = self._step(T)
        if mask is None:
            # Empty cache: a plain causal prefill, computed exactly as the uncached forward.
            K[:, :, :T], V[:, :, :T] = k, v
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        idx = pos[:, None, :, None].expand(B, H, T, hd)
        K.scatter_(2, idx, k)
        V.scatter_(2, idx, v)
        S = self.used + T
        return F.scaled_dot_product_attention(q, K[:, :, :S], V[:, :, :S], attn_mask=mask)

    def advance(self, T: int) -> None:
        """Every row has taken T more tokens (called once per model call, after all layers)."""
        self.pos = self.pos + T
        self.used += T
        self._memo.clear()

    def set_positions(self, pos: Tensor, used: int | None = None) -> None:
        """Place each row's next token at ``pos`` (B,); ``used`` >= pos.max() (host int)."""
        self.pos = pos.to(self.pos.device, torch.long)
        self.used = int(pos.max()) if used is None else int(used)
        self._memo.clear()

    def select(self, idx: Tensor) -> None:
        """Keep only rows ``idx`` (in that order), e.g. drop finished rows."""
        idx = idx.to(self.pos.device)
        self.pos = self.pos[idx]
        self._kv = {m: (K[idx], V[idx]) for m, (K, V) in self._kv.items()}
        self._memo.clear()


__all__ = ["KVCache"]
