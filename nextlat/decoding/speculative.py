"""Speculative sampling (Leviathan et al. 2023; Chen et al. 2023), exact, with a KV cache.

A *drafter* proposes ``gamma`` tokens with the distributions it drew them from; the target
model scores the pending token and all drafts in one cached forward, which gives its own
distributions p_1..p_{gamma+1} at those positions. Draft i is accepted with probability
min(1, p_i(x_i) / q_i(x_i)); at the first rejection a token is drawn from
norm(max(0, p_i - q_i)), and when every draft is accepted a bonus token is drawn from
p_{gamma+1}. The emitted tokens are then distributed exactly as sampling from the target
alone. At temperature 0 both distributions are one-hot at their argmax, so the same rule
accepts a draft iff it is the target's greedy token, and the output equals greedy decoding.

The target's cache holds the accepted prefix except the last emitted ("pending") token.
Each step feeds [pending, draft_1..draft_gamma]; afterwards the cache is rolled back to
the accepted prefix (:meth:`KVCache.set_positions`: keys past a row's position are masked
until overwritten), so rejected drafts leave nothing behind.

This module is the sampler and its bookkeeping; drafters implement :class:`Drafter`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor


def to_probs(logits: Tensor, temperature: float) -> Tensor:
    """Sampling distributions (..., V) of logits: softmax(logits / T), one-hot argmax at T = 0."""
    if temperature <= 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.size(-1)).to(torch.float32)
    return torch.softmax(logits.float() / temperature, dim=-1)


@dataclass
class Draft:
    """``tokens`` (gamma,) long and the distributions ``probs`` (gamma, V) they were drawn from."""

    tokens: Tensor
    probs: Tensor


class Drafter(Protocol):
    def propose(self, context: Tensor, gamma: int, temperature: float,
                generator: torch.Generator | None) -> Draft:
        """Up to ``gamma`` tokens continuing ``context`` (1-D long: the prompt and every token
        emitted so far)."""
        ...


def _draw(probs: Tensor, generator: torch.Generator | None) -> int:
    return int(torch.multinomial(probs, 1, generator=generator))


def verify(p: Tensor, draft: Draft, generator: torch.Generator | None) -> tuple[int, int]:
    """(accepted drafts, the token drawn after them), from the target's distributions ``p``
    (len(draft) + 1, V) at the draft positions and one past them."""
    q, tokens = draft.probs, draft.tokens
    for i in range(len(tokens)):
        x = int(tokens[i])
        u = torch.rand((), generator=generator, device=p.device)
        if u * q[i, x].clamp(min=1e-12) < p[i, x]:  # u < p/q, without dividing
            continue
        residual = (p[i] - q[i]).clamp(min=0)
        return i, _draw(residual if float(residual.sum()) > 0 else p[i], generator)
    return len(tokens), _draw(p[len(tokens)], generator)


@dataclass
class SpeculativeStats:
    """Per call: ``steps`` (target forwards after the prompt), tokens emitted, and per draft
    position k (0-based) how many drafts were ``proposed`` there and ``accepted``."""

    steps: int = 0
    emitted: int = 0
    proposed: list[int] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)

    def record(self, gamma: int, n_accepted: int) -> None:
        grow = gamma - len(self.proposed)
        if grow > 0:
            self.proposed += [0] * grow
            self.accepted += [0] * grow
        for k in range(gamma):
            self.proposed[k] += 1
            self.accepted[k] += int(k < n_accepted)
        self.steps += 1

    @property
    def accepted_per_step(self) -> float:
        """Mean accepted drafts per step (the sampled token after them not counted)."""
        return sum(self.accepted) / max(self.steps, 1)


@torch.no_grad()
def speculative_generate(target, drafter: Drafter, prompt: Sequence[int] | Tensor, max_new_tokens: int,
                         gamma: int, *, temperature: float = 1.0, generator: torch.Generator | None = None,
                         eos_id: int | None = None, device=None) -> tuple[list[int], SpeculativeStats]:
    """Continue one prompt by up to ``max_new_tokens`` tokens (fewer if ``eos_id`` is emitted,
    which is kept), drafting ``gamma`` tokens per step. ``target`` needs ``make_cache`` and
    ``logits_cached`` (every objective has them). Returns the new tokens and the statistics."""
    if gamma < 1:
        raise ValueError(f"gamma must be >= 1, got {gamma}")
    prompt = torch.as_tensor(prompt, dtype=torch.long, device=device).reshape(-1)
    if prompt.numel() < 1:
        raise ValueError("speculative decoding needs a prompt of at least one token (e.g. EOS)")
    device = prompt.device
    limit = int(target.model_cfg.block_size)
    cache = target.make_cache(1, limit, device)
    if cache is None:
        raise ValueError(f"{type(target).__name__} has no KV cache (make_cache returned None)")
    if prompt.numel() > 1:  # the cache holds everything but the pending token
        target.logits_cached(prompt[None, :-1], cache)
    out: list[int] = []
    context = prompt.tolist()
    stats = SpeculativeStats()
    while len(out) < max_new_tokens:
        room = min(gamma, max_new_tokens - len(out) - 1, limit - len(context))
        draft = drafter.propose(torch.tensor(context, device=device), room, temperature, generator) \
            if room > 0 else Draft(torch.zeros(0, dtype=torch.long, device=device),
                                   torch.zeros(0, 1, device=device))
        g = len(draft.tokens)
        base = len(context) - 1  # the pending token's position
        feed = torch.cat([torch.tensor(context[-1:], device=device), draft.tokens.to(device)])
        logits = target.logits_cached(feed[None], cache)[0]  # (g + 1, V): p_1..p_{g+1}
        n, nxt = verify(to_probs(logits, temperature), draft, generator)
        stats.record(g, n)
        new = draft.tokens[:n].tolist() + [nxt]
        if eos_id is not None and eos_id in new:
            new = new[:new.index(eos_id) + 1]
        new = new[:max_new_tokens - len(out)]
        out += new
        context += new
        # keep the pending token and the accepted drafts; rejected drafts are masked and overwritten
        cache.set_positions(torch.tensor([base + 1 + n], device=device), used=base + 1 + n)
        if eos_id is not None and out and out[-1] == eos_id:
            break
        if len(context) >= limit:
            break
    stats.emitted = len(out)
    return out, stats


class ModelDrafter:
    """A separate (small) language model as drafter: ``gamma`` tokens sampled one by one
    from its ``logits`` on the whole context (no cache: drafters of this kind are for tests
    and baselines; self-drafters reuse the target's states)."""

    def __init__(self, model):
        self.model = model

    @torch.no_grad()
    def propose(self, context: Tensor, gamma: int, temperature: float,
                generator: torch.Generator | None) -> Draft:
        seq, probs = context.clone(), []
        for _ in range(gamma):
            q = to_probs(self.model.logits(seq[None])[0, -1], temperature)
            probs.append(q)
            seq = torch.cat([seq, torch.tensor([_draw(q, generator)], device=seq.device)])
        return Draft(seq[len(context):], torch.stack(probs) if probs else torch.zeros(0, 1))


__all__ = ["Draft", "Drafter", "ModelDrafter", "SpeculativeStats", "speculative_generate", "to_probs", "verify"]
