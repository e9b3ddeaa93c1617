"""MTP: multi-token prediction with one transformer layer per head (Gloeckle et al. 2024).

NextLat's variant (algorithms.md section 1): a shared trunk of ``n_layer - 1`` blocks with
*no* final norm, then d+1 heads, each one transformer Block plus its own final norm, and one
shared, untied output Linear. Head i (0-indexed) at position t predicts x_{t+1+i}; head 0
is the next-token head, so the next-token path has exactly GPT's depth and parameters and
training adds d blocks (+ norms).

    L = CE_0 + lambda_mtp * mean_{i=1..d} CE_i      (a mean over the extra heads, as the
                                                     official code; Gloeckle sums them)

``memory_efficient: true`` is the memory-saving backward of Gloeckle et al. section 2, done
inside one autograd graph: every head's forward + loss runs under a non-reentrant
``torch.utils.checkpoint``, so no head keeps its (T, V) logits between forward and backward.
In the backward pass autograd finishes one head (recompute its logits, backprop into the
shared trunk output, free them) before the next, and goes through the trunk once at the end.
No ``.backward()`` is called here: the trainer's single ``fabric.backward`` (DDP included)
drives it, and the gradients equal plain autograd.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..models.layout import Layout
from ..models.transformer import Block, KVCache, ModelConfig, OutputHead, Transformer, init_weights, make_norm
from .base import (IGNORE, Batch, MethodSettings, Objective, StepOutput, horizon_problem, register, setting,
                   token_ce, upcast)


class MTPHead(nn.Module):
    """One transformer Block + its own final norm (the output Linear is shared)."""

    def __init__(self, model: ModelConfig):
        super().__init__()
        self.block = Block(model)
        self.norm = make_norm(model.n_embd, model.norm, model.bias)

    def forward(self, z: Tensor, mask: Tensor | None, pos: Tensor, rotary) -> Tensor:
        return self.norm(self.block(z, mask, pos, rotary))

    def forward_cached(self, z: Tensor, cache: KVCache, rotary) -> Tensor:
        return self.norm(self.block.forward_cached(z, cache, rotary))


@dataclass(frozen=True)
class MTPSettings(MethodSettings):
    horizon: int = setting(1, minimum=1)  # d extra heads
    lambda_mtp: float = setting(1.0, minimum=0, description="MTP/JTP: weight of the mean extra-token loss.")
    memory_efficient: bool = setting(False, description=(
        "MTP: checkpoint each head so heads backpropagate one at a time."))

    def row_problem(self, row_len: int) -> str | None:
        return horizon_problem(self.horizon, row_len)


@register
class MTP(Objective):
    name = "mtp"
    settings_cls = MTPSettings

    def __init__(self, model: ModelConfig, method: dict):
        super().__init__(model, method)
        self.horizon = self.settings.horizon
        if model.n_layer < 1:
            raise ValueError("mtp needs model.n_layer >= 1 (the next-token head is one block)")
        self.lambda_mtp = self.settings.lambda_mtp
        self.memory_efficient = self.settings.memory_efficient
        self.trunk = Transformer(model, n_layer=model.n_layer - 1, final_norm=False)
        self.heads = nn.ModuleList(MTPHead(model) for _ in range(self.horizon + 1))
        self.head = OutputHead(model)  # shared, untied
        init_weights(self)

    # --- pieces ----------------------------------------------------------------------
    def _trunk(self, tokens: Tensor, layout: Layout | None):
        """Shared trunk output z (un-normed) plus what the head blocks need to attend."""
        layout = layout or Layout()
        B, T = tokens.shape
        z = self.trunk(tokens, layout)
        return z, layout.causal_mask(), layout.positions(B, T, tokens.device)

    def _head_states(self, i: int, z: Tensor, mask: Tensor | None, pos: Tensor, n: int) -> Tensor:
        """Head i's normed states for the first ``n`` positions.

        Causal attention lets position t < n see only positions < n, so the block runs on
        the truncated prefix (cheaper, identical values).
        """
        if mask is not None:
            mask = mask[:, :, :n, :n]
        return self.heads[i](z[:, :n], mask, pos[:, :n], self.trunk.rotary)

    def _head_terms(self, i: int, z: Tensor, mask: Tensor | None, pos: Tensor,
                    targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(mean CE, #correct, #valid) of head i; ``targets`` (B, T - i) already masked."""
        logits = self.head(self._head_states(i, z, mask, pos, targets.size(1)))
        valid = targets != IGNORE
        correct = ((logits.detach().argmax(-1) == targets) & valid).sum()
        return token_ce(logits, targets), correct, valid.sum()

    def head_targets(self, batch: Batch, layout: Layout) -> list[Tensor]:
        """Masked targets of every head: ``out[i][:, t]`` = x_{t+1+i} or IGNORE.

        Ignored when the target is a prompt/padding token (``batch.targets``) or lies in a
        different document than position t. A target EOS belongs to the current document,
        so "same document" = no EOS among x_{t+1..t+i} = ``layout.same_doc(i)`` on inputs.
        """
        targets, T = batch.targets, batch.inputs.size(1)
        out = []
        for i in range(min(self.horizon, T - 1) + 1):
            tgt = targets[:, i:]
            same = layout.same_doc(i)
            if isinstance(same, Tensor):
                tgt = tgt.masked_fill(~same, IGNORE)
            out.append(tgt)
        return out

    # --- the interface -----------------------------------------------------------------
    def logits(self, tokens: Tensor, layout: Layout | None = None) -> Tensor:
        z, mask, pos = self._trunk(tokens, layout)
        return self.head(self._head_states(0, z, mask, pos, tokens.size(1)))

    def logits_cached(self, tokens: Tensor, cache: KVCache) -> Tensor:
        # Trunk blocks and head 0's block each keep their own K/V in the one cache.
        z = self.trunk.forward_cached(tokens, cache)
        out = self.head(self.heads[0].forward_cached(z, cache, self.trunk.rotary))
        cache.advance(tokens.size(1))
        return out

    def hidden_states(self, tokens: Tensor, layout: Layout | None = None, which: str = "probe") -> Tensor:
        """The paper uses two different MTP states (algorithms.md Q4):

        * ``"trunk"`` (default, alias ``"probe"``): the shared trunk output before any head
          (un-normed: the trunk has no final norm). Linear probes use it (paper F.4).
        * ``"head0"`` (alias ``"rank"``): the next-token head's output, Block + its norm,
          i.e. the pre-logit state matching GPT's h_t. Effective rank uses it (paper F.1).
        """
        z, mask, pos = self._trunk(tokens, layout)
        which = {"probe": "trunk", "rank": "head0"}.get(which, which)
        if which == "trunk":
            return z
        if which == "head0":
            return self._head_states(0, z, mask, pos, tokens.size(1))
        raise ValueError(f"unknown MTP hidden state {which!r}; expected trunk|head0 (probe|rank)")

    def inference_modules(self) -> list[nn.Module]:
        # Plain decoding uses head 0 only: same parameters as GPT. Heads 1..d are training
        # (and self-speculative drafting) extras, so training params grow with d.
        return [self.trunk, self.heads[0], self.head]

    def forward_terms(self, batch: Batch) -> dict:
        """Unreduced terms (tests inspect single positions); always plain autograd.

        ``heads[i]``: ``logits`` (B, T-i, V), ``targets`` (B, T-i) masked, ``ce`` (B, T-i)
        per-position CE (0 where ignored) of head i, which predicts x_{t+1+i}.
        """
        layout = batch.layout(self.model_cfg.eos_id)
        z, mask, pos = self._trunk(batch.inputs, layout)
        heads = []
        for i, tgt in enumerate(self.head_targets(batch, layout)):
            logits = self.head(self._head_states(i, z, mask, pos, tgt.size(1)))
            ce = torch.nn.functional.cross_entropy(
                upcast(logits).transpose(1, 2), tgt, ignore_index=IGNORE, reduction="none")
            heads.append({"logits": logits, "targets": tgt, "ce": ce})
        return {"heads": heads}

    def loss(self, batch: Batch) -> StepOutput:
        layout = batch.layout(self.model_cfg.eos_id)
        z, mask, pos = self._trunk(batch.inputs, layout)
        terms = []
        for i, tgt in enumerate(self.head_targets(batch, layout)):
            if self.memory_efficient and torch.is_grad_enabled():
                # Logits are recomputed in backward instead of stored; RNG (dropout) replayed.
                terms.append(checkpoint(self._head_terms, i, z, mask, pos, tgt, use_reentrant=False))
            else:
                terms.append(self._head_terms(i, z, mask, pos, tgt))
        ce0, correct0, n0 = terms[0]
        extra = [t[0] for t in terms[1:]]
        mtp = torch.stack(extra).mean() if extra else torch.zeros_like(ce0)
        loss = ce0 + self.lambda_mtp * mtp
        metrics = {"ce": ce0.detach(), "acc": correct0.float() / n0.clamp(min=1),
                   "mtp": mtp.detach()}
        for i, ce in enumerate(extra, start=1):
            metrics[f"ce_{i}"] = ce.detach()
        return StepOutput(loss, metrics)
