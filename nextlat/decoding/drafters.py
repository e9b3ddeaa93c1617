"""Self-drafters: a trained model drafts for itself from the states of its own verifying pass.

Each drafter runs the target's cached forward (:meth:`observe`, the same computation as the
objective's ``logits_cached``, plus keeping the states drafting starts from) and drafts from
the state at the last accepted position (``anchor``), whose output predicted the pending
token x (the last emitted one, not fed yet):

* NextLat (paper section 4.3): roll the latent dynamics forward from the trunk state,
  s_1 = p_psi(h_anchor, E[x]), s_{k+1} = p_psi(s_k, E[draft_k]), and read each draft out of
  the output head, head(s_k). Any number of tokens, each conditioned on the ones before.
* MTP: head k (k = 1..d) at the anchor predicts the token k after x. Each head is a
  transformer block with its own keys and values, so the verifying pass runs all d + 1
  heads (only head 0 gives the logits). At most d drafts, none conditioned on the others.
* JTP: the Fetch module at the anchor with slot tokens (x_anchor, x, draft_1, ...): slot k
  predicts the token k after x, conditioned on the drafts before it. At most d drafts.

Drafters live here rather than in the objectives' files because they are inference code:
a run's weights are defined by its objective's file (editing it retrains), and a change to
drafting must not retrain anything. Tests check that :meth:`observe` returns exactly the
objective's cached logits.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..models.transformer import head_logits
from .speculative import Calibration, Draft, DraftLength, draft_tokens


class _SelfDrafter:
    """``vocab`` (optional, long ids): draft only these tokens, so each draft multiplies the
    state by K rows of the output head instead of all V (on a small model with a large
    vocabulary the head is most of a draft's cost). Any draft distribution keeps
    speculative sampling exact; a shortlist only lowers acceptance where the target's token
    is missing from it."""

    limited: bool = False  # drafts at most the model's horizon d (MTP heads, JTP slots)

    def __init__(self, model, vocab: Tensor | None = None):
        self.model = model
        self.max_draft = model.horizon if self.limited else None
        self.vocab = None if vocab is None else torch.as_tensor(vocab, dtype=torch.long)
        weight = model.head.weight
        if self.vocab is not None:
            self.vocab = self.vocab.to(weight.device)
            weight = weight[self.vocab].detach().clone()
        self._weight = weight

    def read_out(self, state: Tensor) -> Tensor:
        """Logits of a drafted state over the draft vocabulary."""
        return head_logits(state, self._weight)

    @torch.no_grad()
    def propose(self, context: Tensor, anchor: int, length: DraftLength, temperature: float,
                generator: torch.Generator | None, calibration: Calibration | None = None) -> Draft:
        return draft_tokens(self._stepper(context, anchor), int(context[-1]), length, temperature, generator,
                            calibration, self.vocab, self.model.model_cfg.vocab_size)


class NextLatDrafter(_SelfDrafter):
    """Drafts by rolling p_psi forward from the trunk state h_anchor (no draft-length limit)."""

    @torch.no_grad()
    def observe(self, target, tokens: Tensor, cache) -> Tensor:
        m = self.model
        h = m.trunk.forward_cached(tokens, cache)
        cache.advance(tokens.size(1))
        self._h = h[0]
        return m.head(h)

    def _stepper(self, context: Tensor, anchor: int):
        m, state = self.model, self._h[anchor]

        def next_logits(k: int, tok: int) -> Tensor:
            nonlocal state
            state = m.dynamics(state, m.trunk.embed(torch.tensor(tok, device=state.device)))
            return self.read_out(state)

        return next_logits


class MTPDrafter(_SelfDrafter):
    """Drafts with the extra heads 1..d at the anchor (at most d tokens)."""

    limited = True

    @torch.no_grad()
    def observe(self, target, tokens: Tensor, cache) -> Tensor:
        m = self.model
        z = m.trunk.forward_cached(tokens, cache)
        # every head block keeps its own keys/values, so each one sees every position
        states = [head.forward_cached(z, cache, m.trunk.rotary) for head in m.heads]
        cache.advance(tokens.size(1))
        self._extra = torch.stack(states[1:], dim=2)[0]  # (T, d, D)
        return m.head(states[0])

    def _stepper(self, context: Tensor, anchor: int):
        extra = self._extra[anchor]
        return lambda k, tok: self.read_out(extra[k])


class JTPDrafter(_SelfDrafter):
    """Drafts with the Fetch module's slots 1..d at the anchor (at most d tokens)."""

    limited = True

    @torch.no_grad()
    def observe(self, target, tokens: Tensor, cache) -> Tensor:
        m = self.model
        h = m.trunk.forward_cached(tokens, cache)
        cache.advance(tokens.size(1))
        self._h, self._tokens = h[0], tokens[0]
        return m.head(m.fetch_outputs(h, tokens[:, :, None])[:, :, 0])

    def _stepper(self, context: Tensor, anchor: int):
        m, h = self.model, self._h[anchor][None, None]  # (1, 1, D)
        slots = [int(self._tokens[anchor])]  # slot 0: the anchor's own input token

        def next_logits(k: int, tok: int) -> Tensor:
            slots.append(tok)  # slot k + 1 reads the previous token (the pending one for k = 0)
            states = m.fetch_outputs(h, torch.tensor(slots, device=h.device)[None, None])
            return self.read_out(states[0, 0, -1])

        return next_logits


SELF_DRAFTERS = {"nextlat": NextLatDrafter, "mtp": MTPDrafter, "jtp": JTPDrafter}
SELF_DRAFTING = tuple(SELF_DRAFTERS)  # objective names that can draft for themselves


def self_drafter(model, vocab: Tensor | None = None):
    """The self-drafter of a trained objective (by its registered name), drafting from the
    whole vocabulary or only ``vocab``."""
    if model.name not in SELF_DRAFTERS:
        raise ValueError(f"{model.name} cannot draft for itself; self-drafting objectives: {list(SELF_DRAFTING)}")
    return SELF_DRAFTERS[model.name](model, vocab)


def frequent_tokens(tokens, k: int, vocab_size: int) -> Tensor:
    """The ``k`` most frequent ids of a token array (ties: the smaller id first): a draft
    vocabulary ranked on training data, as frequency-ranked drafting (FR-Spec) does."""
    import numpy as np

    counts = np.bincount(np.asarray(tokens, dtype=np.int64), minlength=vocab_size)
    order = np.argsort(-counts, kind="stable")[:k]
    return torch.from_numpy(np.sort(order))


__all__ = ["JTPDrafter", "MTPDrafter", "NextLatDrafter", "SELF_DRAFTERS", "SELF_DRAFTING", "frequent_tokens",
           "self_drafter"]
