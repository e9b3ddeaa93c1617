"""BST: the Belief State Transformer (Hu et al. 2024), as NextLat's official code trains it.

Two encoders share one token embedding (and positions): a forward encoder F, causal within
each document, and a backward encoder B that reads the *unflipped* row with an anti-causal
(upper-triangular) same-document mask. With the packing convention of
:mod:`nextlat.models.layout` (EOS opens a document), the backward encoder's document ids
are shifted right by one so an EOS *closes* its document, and its positions count down to
the document end (closing EOS at 0). Hence F[f] encodes x_{docstart..f} and B[b] encodes
x_{b..docend}.

For a pair (f, b), b = f + g with min_gap <= g < max_gap inside one document, a TextHead
reads [F[f]; B[b]] and predicts the next token x_{f+1} and the previous token x_{b-1}
(NextLat Eq. 6). Gap-1 pairs (nothing missing between prefix and suffix) predict EOS for
both ("eos" single-gap mode). Generation uses F[t] with the "empty suffix" B_EOS, the
backward state of a lone EOS.

Documents: the loss always derives documents from EOS (``Layout.packed``), even for rows
that are not packed. A non-packed row holds one document, possibly ending with EOS and
then padding; EOS-derived ids keep the padding out of the backward states, and before the
first EOS the forward states equal plain causal ones (what ``logits(tokens)`` computes).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..models.layout import Layout
from ..models.transformer import (KVCache, ModelConfig, OutputHead, Transformer, init_weights, make_norm,
                                  swiglu_hidden)
from .base import Batch, MethodSettings, Objective, StepOutput, register, setting, upcast

# Bytes of pair-head activations kept for backward before the head is checkpointed instead
# (BST.checkpoint_pairs = "auto"): a paper-scale language-model micro-batch (8 x 1024 tokens, 10% of
# pairs: ~400k pairs x 50,257 logits) is far above, the default-scale benchmarks' steps below.
PAIR_ACTIVATION_BUDGET = 1 << 30


class TextHead(nn.Module):
    """[F; B] (2D) -> c + Linear(SwiGLU(c)) -> Norm(2D) -> halves (x_next, x_prev), each D.

    The caller sends both halves through one shared, untied output head (D -> V).
    """

    def __init__(self, model: ModelConfig):
        super().__init__()
        dim = 2 * model.n_embd
        hidden = swiglu_hidden(dim)  # 128 * round((8 * 2D / 3) / 128)
        self.up = nn.Linear(dim, 2 * hidden, bias=model.bias)  # gate and value together
        self.down = nn.Linear(hidden, dim, bias=model.bias)
        self.norm = make_norm(dim, model.norm, model.bias)  # RMSNorm for the paper's configs

    def forward(self, f_state: Tensor, b_state: Tensor) -> tuple[Tensor, Tensor]:
        c = torch.cat([f_state, b_state], dim=-1)
        gate, value = self.up(c).chunk(2, dim=-1)
        c = self.norm(c + self.down(F.silu(gate) * value))
        return c.chunk(2, dim=-1)


@dataclass(frozen=True)
class BSTSettings(MethodSettings):
    min_gap: int = setting(1, minimum=1, description=(
        "BST: smallest prefix/suffix gap b - f (the official star-graph config: 2)."))
    max_gap: int | None = setting(None, description=(
        "BST: largest gap (exclusive); null = whole document."))  # negative: also whole document
    subsample_rate: float = setting(1.0, exclusive_minimum=0, maximum=1, description=(
        "BST: fraction of non-EOS pairs kept (paper: 0.1 for language-model pretraining)."))
    pair_batch_size: int = setting(4096, minimum=1, description="BST: pairs per checkpointed head chunk.")
    single_gap_mode: str = setting("eos", enum=["eos"])
    subsample_seed: int | None = setting(None, minimum=0)  # None: drawn from the run's RNG

    def __post_init__(self):
        super().__post_init__()
        if self.max_gap is not None and self.max_gap < 0:  # -1 = all gaps
            object.__setattr__(self, "max_gap", None)
        if self.max_gap is not None and self.max_gap <= self.min_gap:
            raise ValueError(f"method.max_gap={self.max_gap} leaves no gap >= min_gap={self.min_gap}")

    def row_problem(self, row_len: int) -> str | None:
        if self.min_gap > row_len - 1:  # a pair (f, b) with b - f >= min_gap inside one row
            return (f"min_gap {self.min_gap} needs rows of at least {self.min_gap + 1} tokens, but "
                    f"sequences are {row_len} tokens (model.block_size)")
        return None


@register
class BST(Objective):
    name = "bst"
    settings_cls = BSTSettings
    tagged_problem = ("BST reads one sequence both ways and predicts its own previous token from a "
                      "suffix; tagged rows (inputs with separate targets) have no such target")

    def __init__(self, model: ModelConfig, method: dict):
        super().__init__(model, method)
        s = self.settings
        self.min_gap = s.min_gap
        self.max_gap = s.max_gap
        self.subsample_rate = s.subsample_rate
        self.pair_batch_size = s.pair_batch_size
        self.single_gap_mode = s.single_gap_mode
        # Evaluate the pair head under activation checkpointing (see pair_loss): "auto" does
        # when the head's activations for all pairs would pass PAIR_ACTIVATION_BUDGET; True /
        # False force it (tests compare both with plain autograd).
        self.checkpoint_pairs: bool | str = "auto"

        emb = nn.Embedding(model.vocab_size, model.n_embd)  # shared by both encoders
        self.forward_encoder = Transformer(model, embedding=emb)
        self.backward_encoder = Transformer(model, embedding=emb)
        if self.backward_encoder.pos_emb is not None:  # learned positions: shared like RoPE
            self.backward_encoder.pos_emb = self.forward_encoder.pos_emb
        self.text_head = TextHead(model)
        self.head = OutputHead(model)  # untied, shared by both halves
        init_weights(self)

        # Subsampling state (persistent: a resumed run continues the same stream).
        seed = s.subsample_seed
        if seed is None:  # drawn from the global RNG, so it follows the run's seed
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.register_buffer("subsample_seed", torch.tensor(int(seed), dtype=torch.long))
        self.register_buffer("pair_ema", torch.tensor(-1.0, dtype=torch.float64))  # <0: not yet set
        self.register_buffer("pair_iter", torch.tensor(0, dtype=torch.long))

    # --- encoders --------------------------------------------------------------------------
    def encode_forward(self, tokens: Tensor, layout: Layout | None = None) -> Tensor:
        return self.forward_encoder(tokens, layout)

    def encode_backward(self, tokens: Tensor) -> Tensor:
        """B[b] for every b: the state of x_{b..docend} (documents from EOS, see module doc)."""
        layout = Layout.packed_backward(tokens, self.model_cfg.eos_id)
        return self.backward_encoder(tokens, layout, attn_mask=layout.anticausal_mask())

    def empty_suffix(self, like: Tensor) -> Tensor:
        """B_EOS: the backward state of a single EOS token (the empty suffix), shape (1, 1, D)."""
        eos = torch.full((1, 1), self.model_cfg.eos_id, dtype=torch.long, device=like.device)
        return self.encode_backward(eos)

    def head_logits(self, f_state: Tensor, b_state: Tensor) -> tuple[Tensor, Tensor]:
        x_next, x_prev = self.text_head(f_state, b_state)
        return self.head(x_next), self.head(x_prev)

    # --- the interface ---------------------------------------------------------------------
    def logits(self, tokens: Tensor, layout: Layout | None = None) -> Tensor:
        """Next-token logits at every t from (F[t], B_EOS), as the official generator does."""
        f_state = self.encode_forward(tokens, layout)
        b_eos = self.empty_suffix(tokens).expand_as(f_state)
        x_next, _ = self.text_head(f_state, b_eos)
        return self.head(x_next)

    def logits_cached(self, tokens: Tensor, cache: KVCache) -> Tensor:
        # Only the forward encoder is incremental; B_EOS is a constant, encoded once per cache.
        f_state = self.forward_encoder.forward_cached(tokens, cache)
        if "b_eos" not in cache.extra:
            cache.extra["b_eos"] = self.empty_suffix(tokens)
        x_next, _ = self.text_head(f_state, cache.extra["b_eos"].expand_as(f_state))
        cache.advance(tokens.size(1))
        return self.head(x_next)

    def hidden_states(self, tokens: Tensor, layout: Layout | None = None, which: str = "probe") -> Tensor:
        return self.encode_forward(tokens, layout)  # forward encoder, after its final norm (F.4)

    def inference_modules(self) -> list[nn.Module]:
        # Generation runs the forward encoder on the prefix and the text head + output head
        # on (F[t], B_EOS); B_EOS needs the backward encoder (once per call), so it is
        # counted too and inference == training here. The paper's Table 4 lists BST as
        # 1.32B / 2.57B: the forward encoder alone for generation (B_EOS is a constant that
        # can be cached), both encoders for likelihood scoring.
        return [self.forward_encoder, self.backward_encoder, self.text_head, self.head]

    # --- pairs -----------------------------------------------------------------------------
    def pair_mask(self, tokens: Tensor, loss_mask: Tensor) -> Tensor:
        """(B, T, T) bool: pair (f, b) = [row, f, b] is a valid training pair.

        Valid: b - f = g with min_gap <= g < max_gap; forward doc of f == backward doc of b
        (prefix and suffix of one document, the closing EOS included); and supervision:
        ``loss_mask[f + 1]`` (the next target x_{f+1}, EOS for gap 1, is a trained token, so
        prompt-only prefixes are skipped) and ``loss_mask[b]`` (the suffix starts inside the
        trained region, so it never starts in padding). With one contiguous supervised span
        per document (a prompt-and-answer benchmark), both targets are then supervised tokens.
        """
        eos = self.model_cfg.eos_id
        B, T = tokens.shape
        is_eos = (tokens == eos).long()
        fwd_doc = is_eos.cumsum(1)
        bwd_doc = fwd_doc - is_eos
        idx = torch.arange(T, device=tokens.device)
        gap = idx[None, :] - idx[:, None]  # [f, b] -> b - f
        ok_gap = gap >= self.min_gap
        if self.max_gap is not None:
            ok_gap = ok_gap & (gap < self.max_gap)
        same_doc = fwd_doc[:, :, None] == bwd_doc[:, None, :]
        next_sup = torch.zeros_like(loss_mask)
        next_sup[:, :-1] = loss_mask[:, 1:]  # [f] -> loss_mask[f + 1]
        return ok_gap[None] & same_doc & next_sup[:, :, None] & loss_mask[:, None, :]

    def subsample(self, valid: Tensor, tokens: Tensor) -> Tensor:
        """Keep every pair touching an EOS (empty prefix or suffix); others with probability p.

        Per row, p = (target - n_eos) / (n_valid - n_eos) with target = rate x a running
        average of valid pairs per row (EMA, alpha = clip(1/iter, 0.001, 0.1), started at
        T(T-1)/2), so the expected number kept is about the target. The EMA advances on
        training calls only. Randomness comes from a generator seeded by (subsample_seed,
        iteration, rank) in training and a fixed seed in evaluation: reproducible, resumable.
        """
        B, T = tokens.shape
        is_eos = tokens == self.model_cfg.eos_id
        touch = valid & (is_eos[:, :, None] | is_eos[:, None, :])
        n_valid = valid.sum((1, 2)).double()
        n_eos = touch.sum((1, 2)).double()
        if self.pair_ema.item() < 0:
            self.pair_ema.fill_(T * (T - 1) / 2)
        target = self.subsample_rate * self.pair_ema
        p = ((target - n_eos) / (n_valid - n_eos).clamp(min=1)).clamp(0, 1)
        if self.training:
            rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
            seed = (int(self.subsample_seed) * 1_000_003 + int(self.pair_iter) * 1009 + rank) % 2**62
            self.pair_iter += 1
            alpha = min(max(1.0 / int(self.pair_iter), 0.001), 0.1)
            self.pair_ema.mul_(1 - alpha).add_(alpha * n_valid.mean())
        else:
            seed = (int(self.subsample_seed) * 1_000_003 - 1) % 2**62
        gen = torch.Generator(device=tokens.device).manual_seed(seed)
        u = torch.rand(valid.shape, generator=gen, device=tokens.device, dtype=torch.float64)
        return touch | (valid & (u < p[:, None, None]))

    def pairs(self, tokens: Tensor, loss_mask: Tensor, subsample: bool = True) -> dict[str, Tensor]:
        """Kept pairs as flat index tensors, ordered by (row, f, b).

        Returns ``row``, ``f``, ``b``, ``next`` (target x_{f+1}) and ``prev`` (target
        x_{b-1}); gap-1 pairs have both targets EOS. Also ``n_valid`` (before subsampling).
        """
        valid = self.pair_mask(tokens, loss_mask)
        n_valid = valid.sum()
        keep = self.subsample(valid, tokens) if subsample and self.subsample_rate < 1 else valid
        row, f, b = keep.nonzero(as_tuple=True)
        single = (b - f) == 1
        eos = torch.full_like(f, self.model_cfg.eos_id)
        nxt = torch.where(single, eos, tokens[row, (f + 1).clamp(max=tokens.size(1) - 1)])
        prv = torch.where(single, eos, tokens[row, b - 1])
        return {"row": row, "f": f, "b": b, "next": nxt, "prev": prv, "n_valid": n_valid}

    # --- loss ------------------------------------------------------------------------------
    def _chunk_terms(self, f_all: Tensor, b_all: Tensor, row: Tensor, f: Tensor, b: Tensor,
                     nxt: Tensor, prv: Tensor) -> tuple[Tensor, ...]:
        """Summed CE (next, prev) and correct counts of one chunk of pairs."""
        logit_next, logit_prev = self.head_logits(f_all[row, f], b_all[row, b])
        ce_next = F.cross_entropy(upcast(logit_next), nxt, reduction="sum")
        ce_prev = F.cross_entropy(upcast(logit_prev), prv, reduction="sum")
        with torch.no_grad():
            hit_next = (logit_next.argmax(-1) == nxt).sum()
            hit_prev = (logit_prev.argmax(-1) == prv).sum()
        return ce_next, ce_prev, hit_next, hit_prev

    def _checkpoint(self, n_pairs: int, itemsize: int) -> bool:
        """Whether to checkpoint the pair head. Recomputing it in backward repeats its forward,
        the bulk of a BST step, so "auto" pays that only when keeping the activations (per pair
        four V-wide rows, both logits and their log-softmaxes, and the head's hidden states)
        would pass the budget."""
        if self.checkpoint_pairs != "auto":
            return bool(self.checkpoint_pairs)
        # per pair: the V-wide rows, plus the text head's own (its input [F; B], MLP, norms:
        # about 32 D values), which dominate when the vocabulary is small
        per_pair = 4 * self.model_cfg.vocab_size + 32 * self.model_cfg.n_embd
        return n_pairs * per_pair * max(itemsize, 4) > PAIR_ACTIVATION_BUDGET

    def pair_loss(self, f_all: Tensor, b_all: Tensor, pairs: dict[str, Tensor]) -> dict[str, Tensor]:
        """(mean CE_next + mean CE_prev) / 2 over all pairs, head evaluated chunk by chunk.

        Detach-then-inject, autograd-native. The official code detaches F and B, runs the
        head chunk by chunk calling ``backward`` per chunk to accumulate gradients on the
        detached leaves, then backpropagates through the encoders once. Our trainer owns
        the single ``backward`` call (gradient accumulation, DDP), so instead each chunk's
        head forward + loss runs under non-reentrant activation checkpointing: its
        activations (chunk x V logits, ...) are dropped after the forward and recomputed
        chunk by chunk during ``backward``. Every chunk's gradient is summed on the encoder
        outputs F and B before autograd reaches the encoders, whose backward therefore runs
        once. Peak memory is one chunk of head activations, not O(T^2) of them. Below the
        activation budget (``checkpoint_pairs="auto"``) the chunks run under plain autograd:
        the same numbers without the recomputation.

        Normalisation: a plain mean over every kept pair of the micro-batch. The official
        code averages within each chunk and divides by (B x n_chunks), a mean of chunk
        means that weights a short last chunk's pairs more; the two agree when all chunks
        are equally full.
        """
        n = pairs["f"].numel()
        zero = upcast(f_all.new_zeros(()))
        sums = [zero, zero, zero, zero]
        use_ckpt = torch.is_grad_enabled() and self._checkpoint(n, f_all.element_size())
        for start in range(0, n, self.pair_batch_size):
            sl = slice(start, start + self.pair_batch_size)
            args = (f_all, b_all, pairs["row"][sl], pairs["f"][sl], pairs["b"][sl],
                    pairs["next"][sl], pairs["prev"][sl])
            if use_ckpt:
                terms = checkpoint(self._chunk_terms, *args, use_reentrant=False, preserve_rng_state=False)
            else:
                terms = self._chunk_terms(*args)
            sums = [s + t for s, t in zip(sums, terms)]
        denom = max(n, 1)
        ce_next, ce_prev = sums[0] / denom, sums[1] / denom
        loss = (ce_next + ce_prev) / 2
        if n == 0:  # keep every parameter in the graph (DDP) with a zero gradient
            loss = loss + 0.0 * (f_all.sum() + b_all.sum()
                                 + sum(p.sum() for p in self.text_head.parameters()) + self.head.weight.sum())
        return {"loss": loss, "ce_next": ce_next, "ce_prev": ce_prev,
                "acc_next": sums[2].float() / denom, "acc_prev": sums[3].float() / denom}

    def encode_both(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """(F, B) for every position of training rows, documents taken from EOS."""
        f_all = self.encode_forward(tokens, Layout.packed(tokens, self.model_cfg.eos_id))
        return f_all, self.encode_backward(tokens)

    def pair_terms(self, batch: Batch) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """All valid pairs (no subsampling) with unreduced CE_next and CE_prev, unchunked.

        The reference the chunked loss is tested against; O(pairs x V) memory.
        """
        if batch.tagged:
            raise ValueError(self.tagged_problem)
        f_all, b_all = self.encode_both(batch.tokens)
        pairs = self.pairs(batch.tokens, batch.loss_mask, subsample=False)
        logit_next, logit_prev = self.head_logits(f_all[pairs["row"], pairs["f"]], b_all[pairs["row"], pairs["b"]])
        ce_next = F.cross_entropy(upcast(logit_next), pairs["next"], reduction="none")
        ce_prev = F.cross_entropy(upcast(logit_prev), pairs["prev"], reduction="none")
        return pairs, ce_next, ce_prev

    def loss(self, batch: Batch) -> StepOutput:
        if batch.tagged:
            raise ValueError(self.tagged_problem)
        tokens, loss_mask = batch.tokens, batch.loss_mask  # the whole row: targets are inside it
        f_all, b_all = self.encode_both(tokens)
        pairs = self.pairs(tokens, loss_mask)
        out = self.pair_loss(f_all, b_all, pairs)
        n = pairs["f"].numel()
        metrics = {k: v.detach() for k, v in out.items() if k != "loss"}
        metrics["pairs"] = torch.tensor(float(n), device=tokens.device)
        metrics["pairs_valid"] = pairs["n_valid"].float()
        return StepOutput(out["loss"], metrics)


__all__ = ["BST", "TextHead"]
