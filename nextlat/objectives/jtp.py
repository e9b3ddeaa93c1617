"""JTP: joint multi-token prediction through a Fetch bottleneck (Ahn, Lamb, Langford 2025).

As implemented in NextLat's ``model_mtp_jtp.py`` (algorithms.md section 2):

* trunk -> h_t (final-normed), as GPT.
* TeacherCombine(h, e) = LayerNorm(e + gamma * h): a true LayerNorm (with bias) and a
  learnable scalar gamma (init 0.1).
* Per position t a (d+1)-slot sequence: slot 0 combines h_t with E[x_t] (the current input
  token), slot k = 1..d with the teacher-forced E[x_{t+k}].
* Fetch: one causal multi-head self-attention over the slots (min(4, n_head) heads, own qkv
  and output projections, a learned per-head (d+1, d+1) score bias initialised to zero). No
  pre-norm, no MLP, no residual inside. Slot k sees h_t and x_t, x_{t+1..t+k}.
* Outputs through the shared head with one shared norm: x_{t+1} from Norm(a_0) (no
  residual: next-token logits also go through Fetch); x_{t+k+1} from Norm(a_k + h_t).

    L = CE_next + lambda_mtp * mean_{k=1..d} CE_k      (each CE a mean over its targets)

All slots of all positions run in parallel as a (B*T, d+1, D) attention batch. At inference
only slot 0 is needed (attention over one slot). The Fetch parameters (about 4 D^2) do not
depend on d except the (heads, d+1, d+1) bias.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.layout import Layout
from ..models.transformer import KVCache, ModelConfig, OutputHead, Transformer, init_weights, make_norm
from .base import (IGNORE, Batch, MethodSettings, Objective, StepOutput, horizon_problem, register, setting,
                   token_accuracy, upcast)


class TeacherCombine(nn.Module):
    """LayerNorm(e + gamma * h) with a learnable scalar gamma and a true (biased) LayerNorm."""

    def __init__(self, dim: int, gamma: float = 0.1):
        super().__init__()
        self.gamma = nn.Parameter(torch.tensor(float(gamma)))
        self.norm = nn.LayerNorm(dim, bias=True)

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        return self.norm(e + self.gamma * h)


class FetchAttention(nn.Module):
    """One causal self-attention layer over the d+1 slots with a learned score bias."""

    def __init__(self, model: ModelConfig, n_slots: int):
        super().__init__()
        D = model.n_embd
        self.n_head = min(4, model.n_head)
        if D % self.n_head:
            raise ValueError(f"jtp: model.n_embd={D} is not divisible by the Fetch heads ({self.n_head})")
        self.qkv = nn.Linear(D, 3 * D, bias=model.bias)
        self.proj = nn.Linear(D, D, bias=model.bias)
        self.pos_bias = nn.Parameter(torch.zeros(self.n_head, n_slots, n_slots))

    def forward(self, g: Tensor) -> Tensor:
        # g: (N, S, D) with S <= n_slots; slot s attends to slots <= s. N = B*T attention
        # problems of S x S: tiny matrices, so the products are bound by memory, not arithmetic.
        N, S, D = g.shape
        # One copy into head-major layout: batched products of strided views ran ~4x slower on
        # CPU than on contiguous ones (bench/README.md, throughput).
        q, k, v = self.qkv(g).view(N, S, 3, self.n_head, D // self.n_head).permute(2, 0, 3, 1, 4).contiguous()
        # The causal mask folded into the (heads, S, S) bias: one pass over the scores, not two.
        causal = torch.ones(S, S, dtype=torch.bool, device=g.device).tril()
        bias = self.pos_bias[:, :S, :S].masked_fill(~causal, float("-inf"))
        att = ((q @ k.transpose(-1, -2)) / math.sqrt(D // self.n_head) + bias).softmax(-1)
        return self.proj((att @ v).transpose(1, 2).reshape(N, S, D))


@dataclass(frozen=True)
class JTPSettings(MethodSettings):
    horizon: int = setting(1, minimum=1)  # d teacher-forced slots after slot 0
    lambda_mtp: float = setting(1.0, minimum=0, description="MTP/JTP: weight of the mean extra-token loss.")

    def row_problem(self, row_len: int) -> str | None:
        return horizon_problem(self.horizon, row_len)


@register
class JTP(Objective):
    name = "jtp"
    settings_cls = JTPSettings

    def __init__(self, model: ModelConfig, method: dict):
        super().__init__(model, method)
        self.horizon = self.settings.horizon
        self.lambda_mtp = self.settings.lambda_mtp
        D = model.n_embd
        self.trunk = Transformer(model)
        self.head = OutputHead(model)  # shared by all slots, untied
        self.combine = TeacherCombine(D)
        self.fetch = FetchAttention(model, self.horizon + 1)
        self.out_norm = make_norm(D, model.norm, model.bias)  # one norm for every slot output
        init_weights(self)  # Linear/Embedding only: gamma, LayerNorm and pos_bias keep their init

    # --- pieces ----------------------------------------------------------------------
    def fetch_outputs(self, h: Tensor, slot_tokens: Tensor) -> Tensor:
        """Pre-logit states (B, T, S, D) for slot tokens (B, T, S): slot 0 is x_t itself."""
        B, T, S = slot_tokens.shape
        g = self.combine(h[:, :, None], self.trunk.embed(slot_tokens))  # (B, T, S, D)
        a = self.fetch(g.reshape(B * T, S, -1)).view(B, T, S, -1)
        # Slot 0 (next token): no residual. Slots k >= 1: residual from h_t. A 0/1 weight per
        # slot instead of slicing and concatenating (B, T, S, D): one pass, the same numbers.
        residual = torch.ones(S, 1, dtype=a.dtype, device=a.device)
        residual[0] = 0
        return self.out_norm(a + h[:, :, None] * residual)

    def slot_data(self, batch: Batch) -> tuple[Tensor, Tensor]:
        """Slot tokens (B, T, d+1) and their masked targets (B, T, d+1).

        ``tokens[:, t, k]`` = the input x_{t+k} (0 beyond the inputs), ``targets[:, t, k]`` =
        what position t+k predicts (x_{t+k+1}; for tagged rows its label y_{t+k}), or IGNORE
        when: beyond the row, a prompt/padding target (``batch.targets``), or some teacher token x_{t+1..t+k} is an EOS (cumulative along the slots). The last rule is
        the official one and is the same as "target in another document than t" for the
        packing convention (EOS opens the next document; an EOS *target* is x_{t+k+1}, so it
        still counts as the current document); it is applied to packed and unpacked rows.
        """
        d, T = self.horizon, batch.inputs.size(1)
        # Slot k reads the input x_{t+k}; for next-token rows that is what position t+k-1
        # predicts (teacher forcing), for tagged rows the next input (as NextLat's rollout).
        toks = F.pad(batch.inputs, (0, d), value=0).unfold(1, d + 1, 1)[:, :T].contiguous()
        tgts = F.pad(batch.targets, (0, d), value=IGNORE).unfold(1, d + 1, 1)[:, :T]
        crossed = toks == self.model_cfg.eos_id
        crossed[:, :, 0] = False  # x_t opening the current document is fine
        crossed = crossed.long().cummax(dim=2).values.bool()
        return toks, tgts.masked_fill(crossed, IGNORE)

    # --- the interface -----------------------------------------------------------------
    def logits(self, tokens: Tensor, layout: Layout | None = None) -> Tensor:
        h = self.trunk(tokens, layout)
        return self.head(self.fetch_outputs(h, tokens[:, :, None])[:, :, 0])  # slot 0 only

    def logits_cached(self, tokens: Tensor, cache: KVCache) -> Tensor:
        # Fetch slot 0 reads only (h_t, x_t) of its own position: no state beyond the trunk's.
        h = self.trunk.forward_cached(tokens, cache)
        out = self.head(self.fetch_outputs(h, tokens[:, :, None])[:, :, 0])
        cache.advance(tokens.size(1))
        return out

    def hidden_states(self, tokens: Tensor, layout: Layout | None = None,
                      which: str = "fetch_input") -> Tensor:
        """Which JTP state the paper measures (algorithms.md Q3):

        * ``"fetch_input"`` (default, aliases ``"probe"``, ``"rank"``): the input to the Fetch
          self-attention at slot 0, TeacherCombine(h_t, E[x_t]). Paper F.1 uses it for
          effective rank ("immediately before the self-attention module in the Fetch head")
          and F.4 probes JTP "as in F.1". It depends on x_{<=t} only.
        * ``"trunk"``: the trunk's final-normed h_t, what the official code returns.
        """
        h = self.trunk(tokens, layout)
        which = {"probe": "fetch_input", "rank": "fetch_input"}.get(which, which)
        if which == "fetch_input":
            return self.combine(h, self.trunk.embed(tokens))
        if which == "trunk":
            return h
        raise ValueError(f"unknown JTP hidden state {which!r}; expected fetch_input|trunk")

    def inference_modules(self) -> list[nn.Module]:
        # Next-token logits pass through Fetch slot 0, so Fetch counts at inference too.
        return [self.trunk, self.combine, self.fetch, self.out_norm, self.head]

    def forward_terms(self, batch: Batch) -> dict:
        """``logits`` (B, T, d+1, V), ``targets`` (B, T, d+1) masked, ``ce`` (B, T, d+1)
        per-term CE (0 where ignored). Slot k at t predicts x_{t+k+1}."""
        toks, tgts = self.slot_data(batch)
        h = self.trunk(batch.inputs, batch.layout(self.model_cfg.eos_id))
        logits = self.head(self.fetch_outputs(h, toks))
        # One cross-entropy over every slot, on the contiguous (B*T*(d+1), V) logits.
        ce = F.cross_entropy(upcast(logits).flatten(0, 2), tgts.flatten(), ignore_index=IGNORE,
                             reduction="none").view(tgts.shape)
        return {"logits": logits, "targets": tgts, "ce": ce}

    def loss(self, batch: Batch) -> StepOutput:
        out = self.forward_terms(batch)
        logits, tgts = out["logits"], out["targets"]
        # Per slot k the mean CE over its supervised targets (0 when it has none), from the one
        # per-term CE: L = CE_0 + lambda * mean_{k=1..d} CE_k.
        per_slot = out["ce"].sum((0, 1)) / (tgts != IGNORE).sum((0, 1)).clamp(min=1)
        ce, extra = per_slot[0], per_slot[1:]
        mtp = extra.mean()
        loss = ce + self.lambda_mtp * mtp
        metrics = {"ce": ce.detach(), "acc": token_accuracy(logits[:, :, 0].detach(), tgts[:, :, 0]),
                   "mtp": mtp.detach()}
        for k, c in enumerate(extra, start=1):
            metrics[f"ce_{k}"] = c.detach()
        return StepOutput(loss, metrics)
