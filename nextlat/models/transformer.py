"""A small, readable decoder-only transformer trunk (nanoGPT in spirit).

Pre-norm blocks, RoPE or learned positions, SwiGLU or GELU MLP, RMSNorm (or LayerNorm),
an untied output head and PyTorch SDPA attention. Attention can be restricted to the
current document for packed sequences (see :mod:`nextlat.models.layout`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .kv_cache import KVCache
from .layout import Layout


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    block_size: int = 256  # longest sequence the model accepts (learned positions, RoPE cache)
    eos_id: int = 0
    pos_embedding: str = "rope"  # "rope" | "learned"
    mlp: str = "swiglu"  # "swiglu" | "gelu"
    norm: str = "rms"  # "rms" | "layer"
    bias: bool = False
    dropout: float = 0.0
    rope_base: float = 10000.0

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"model.n_embd={self.n_embd} is not divisible by model.n_head={self.n_head}")
        if (self.n_embd // self.n_head) % 2 and self.pos_embedding == "rope":
            raise ValueError("RoPE needs an even head dimension (model.n_embd / model.n_head)")
        for key, allowed in (("pos_embedding", ("rope", "learned")), ("mlp", ("swiglu", "gelu")),
                             ("norm", ("rms", "layer"))):
            if getattr(self, key) not in allowed:
                raise ValueError(f"model.{key}={getattr(self, key)!r}; expected one of {allowed}")

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config key(s): {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def make_norm(dim: int, kind: str, bias: bool) -> nn.Module:
    # The official code's "LayerNorm(bias=False)" is an RMSNorm; we name it honestly.
    return nn.RMSNorm(dim) if kind == "rms" else nn.LayerNorm(dim, bias=bias)


def swiglu_hidden(dim: int) -> int:
    """SwiGLU width 8/3 * dim rounded to a multiple of 128 (as the official trunk)."""
    return max(128, 128 * round(8 * dim / 3 / 128))


class Rotary(nn.Module):
    """Rotary position embedding, looked up by (per-document) position ids."""

    def __init__(self, head_dim: int, max_len: int, base: float):
        super().__init__()
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2).float() / head_dim)
        angles = torch.outer(torch.arange(max_len).float(), inv_freq)  # (max_len, hd/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        # x: (B, H, T, hd); pos: (B, T)
        cos = self.cos[pos][:, None].to(x.dtype)  # (B, 1, T, hd/2)
        sin = self.sin[pos][:, None].to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = cfg.dropout

    def forward(self, x: Tensor, mask: Tensor | None, pos: Tensor, rotary: Rotary | None,
                causal: bool = True) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        if rotary is not None:
            q, k = rotary(q, pos), rotary(k, pos)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal and mask is None,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.proj(y.transpose(1, 2).reshape(B, T, C))

    def forward_cached(self, x: Tensor, cache: KVCache, rotary: Rotary | None) -> Tensor:
        """Causal attention of new tokens x (B, T, C) over the cache, which stores their K/V."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        if rotary is not None:
            pos = cache.positions(T)
            q, k = rotary(q, pos), rotary(k, pos)
        y = cache.attend(self, q, k, v)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig, dim: int | None = None):
        super().__init__()
        dim = dim or cfg.n_embd
        self.gated = cfg.mlp == "swiglu"
        hidden = swiglu_hidden(dim) if self.gated else 4 * dim
        self.up = nn.Linear(dim, hidden * (2 if self.gated else 1), bias=cfg.bias)
        self.down = nn.Linear(hidden, dim, bias=cfg.bias)

    def forward(self, x: Tensor) -> Tensor:
        if self.gated:
            a, b = self.up(x).chunk(2, dim=-1)
            return self.down(F.silu(a) * b)
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm1 = make_norm(cfg.n_embd, cfg.norm, cfg.bias)
        self.attn = Attention(cfg)
        self.norm2 = make_norm(cfg.n_embd, cfg.norm, cfg.bias)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, mask, pos, rotary, causal=True):
        x = x + self.drop(self.attn(self.norm1(x), mask, pos, rotary, causal))
        return x + self.drop(self.mlp(self.norm2(x)))

    def forward_cached(self, x: Tensor, cache: KVCache, rotary: Rotary | None) -> Tensor:
        x = x + self.drop(self.attn.forward_cached(self.norm1(x), cache, rotary))
        return x + self.drop(self.mlp(self.norm2(x)))


class Transformer(nn.Module):
    """Token embedding -> blocks -> final norm. ``forward`` returns normed states h_t.

    ``n_layer`` can be overridden (MTP keeps n_layer - 1 blocks in its shared trunk), and
    ``final_norm=False`` leaves the last states un-normed for heads that norm themselves.
    """

    def __init__(self, cfg: ModelConfig, n_layer: int | None = None, final_norm: bool = True,
                 embedding: nn.Embedding | None = None):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = embedding if embedding is not None else nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = nn.Embedding(cfg.block_size, cfg.n_embd) if cfg.pos_embedding == "learned" else None
        head_dim = cfg.n_embd // cfg.n_head
        self.rotary = Rotary(head_dim, cfg.block_size, cfg.rope_base) if cfg.pos_embedding == "rope" else None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer if n_layer is None else n_layer))
        self.norm_f = make_norm(cfg.n_embd, cfg.norm, cfg.bias) if final_norm else nn.Identity()
        self.drop = nn.Dropout(cfg.dropout)

    def embed(self, tokens: Tensor) -> Tensor:
        return self.tok_emb(tokens)

    def forward(self, tokens: Tensor, layout: Layout | None = None, emb: Tensor | None = None,
                causal: bool = True, attn_mask: Tensor | None = None) -> Tensor:
        """h for every position. Pass ``emb`` (= ``self.embed(tokens)``) to reuse the lookup.

        ``attn_mask`` ((B, 1, T, T) bool, True = may attend) replaces the layout's causal
        mask, e.g. ``layout.anticausal_mask()`` for a right-to-left encoder; positions
        still come from ``layout``.
        """
        B, T = tokens.shape
        if T > self.cfg.block_size:
            raise ValueError(f"sequence of {T} tokens exceeds model.block_size={self.cfg.block_size}")
        layout = layout or Layout()
        pos = layout.positions(B, T, tokens.device)
        x = self.embed(tokens) if emb is None else emb
        if self.pos_emb is not None:
            x = x + self.pos_emb(pos)
        x = self.drop(x)
        if attn_mask is not None:
            mask = attn_mask
        else:
            mask = layout.causal_mask() if causal else None
        for block in self.blocks:
            x = block(x, mask, pos, self.rotary, causal)
        return self.norm_f(x)

    def forward_cached(self, tokens: Tensor, cache: KVCache) -> Tensor:
        """h for new tokens (B, T) placed at ``cache.positions(T)`` of single-document rows.

        Writes their keys/values into ``cache`` but does not advance it: the caller does,
        once every module sharing the cache has run (MTP's head block, for instance).
        """
        T = tokens.size(1)
        if cache.used + T > self.cfg.block_size:
            raise ValueError(f"sequence of {cache.used + T} tokens exceeds model.block_size={self.cfg.block_size}")
        x = self.embed(tokens)
        if self.pos_emb is not None:
            x = x + self.pos_emb(cache.positions(T))
        x = self.drop(x)
        for block in self.blocks:
            x = block.forward_cached(x, cache, self.rotary)
        return self.norm_f(x)


# cuBLAS needs the rows of a bf16 product 16-byte aligned for its fast kernels: with an odd
# vocabulary (GPT-2's 50,257) the (N, V) logits are not, and on an H200 the 1.3B model's head
# product fell back to a kernel about 5x slower (measured with bench/throughput.py --profile).
HEAD_ROW_MULTIPLE = 64


def head_logits(x: Tensor, weight: Tensor, align: bool | None = None) -> Tensor:
    """``x @ weight.T`` for an output head of V rows. When aligning (``align=None``: on CUDA)
    and V is not a multiple of HEAD_ROW_MULTIPLE, the product runs against the weight padded
    with zero rows and the first V columns are returned (a view): the same numbers, aligned
    kernels. The parameter itself keeps V rows, so checkpoints and parameter counts are
    unchanged."""
    pad = -weight.size(0) % HEAD_ROW_MULTIPLE
    if not ((x.is_cuda if align is None else align) and pad):
        return F.linear(x, weight)
    return F.linear(x, F.pad(weight, (0, 0, 0, pad)))[..., :weight.size(0)]


class OutputHead(nn.Linear):
    """The untied, bias-free output head: an ``nn.Linear(D, V)`` whose product goes through
    :func:`head_logits`."""

    def __init__(self, model: ModelConfig):
        super().__init__(model.n_embd, model.vocab_size, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return head_logits(x, self.weight)


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for every Linear and Embedding weight, zero biases (official init)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["ModelConfig", "Transformer", "Block", "MLP", "Attention", "Rotary", "KVCache", "make_norm",
           "init_weights", "count_params", "swiglu_hidden", "head_logits", "OutputHead"]
