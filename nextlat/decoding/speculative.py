"""Speculative sampling (Leviathan et al. 2023; Chen et al. 2023), exact, with a KV cache.

A *drafter* proposes up to ``gamma`` tokens with the distributions it drew them from; the
target model scores the pending token and all drafts in one cached forward, which gives its
own distributions p_1..p_{g+1} at those positions. Draft i is accepted with probability
min(1, p_i(x_i) / q_i(x_i)); at the first rejection a token is drawn from
norm(max(0, p_i - q_i)), and when every draft is accepted a bonus token is drawn from
p_{g+1}. The emitted tokens are then distributed exactly as sampling from the target alone.
At temperature 0 both distributions are one-hot at their argmax, so the same rule accepts a
draft iff it is the target's greedy token, and the output equals greedy decoding.

One step, after the prompt's prefill has produced the first token:

    cache: every accepted token but the last ("pending") one
    draft  = drafter.propose(context, anchor, length)        # anchor: the state that predicted
    logits = drafter.observe(target, [pending] + draft)      #   the pending token
    accept n drafts, draw one more token; roll the cache back to the n accepted drafts

Each target forward emits n + 1 tokens. The paper's gamma counts the target's own next token
as its first (always accepted) draft, so its gamma is ours + 1 and its "accepted tokens"
(which exclude that token) are our accepted drafts.

Rollback: keys past a row's position are masked until overwritten
(:meth:`KVCache.set_positions`), so rejected drafts leave nothing behind.

This module is the sampler, the draft-length policy and the statistics; self-drafters of the
trained objectives are in :mod:`nextlat.decoding.drafters`.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor


def to_probs(logits: Tensor, temperature: float) -> Tensor:
    """Sampling distributions (..., V) of logits: softmax(logits / T), one-hot argmax at T = 0."""
    if temperature <= 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.size(-1)).to(torch.float32)
    return torch.softmax(logits.float() / temperature, dim=-1)


@dataclass(frozen=True)
class DraftLength:
    """How many tokens a step drafts: ``gamma`` (fixed), or with ``threshold`` adaptively up to
    ``gamma``: drafting stops before the first token that would bring the estimated chance
    that every draft so far is accepted below the threshold.

    Why this rule: if a_k is the chance that draft k is accepted given the ones before it,
    drafting token k adds a_1 * ... * a_k expected tokens to the step, and costs one drafter
    step and one more verified position, a roughly constant fraction of a target step; so a
    draft pays while that product exceeds the cost ratio, and the threshold is that ratio
    (swept in the configs). a_k is estimated from the drafter's confidence in token k through
    a :class:`Calibration` learned online from the accept/reject outcomes.
    """

    gamma: int
    threshold: float | None = None

    def __post_init__(self):
        if self.gamma < 1:
            raise ValueError(f"gamma must be >= 1, got {self.gamma}")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {self.threshold}")

    @property
    def name(self) -> str:
        return f"gamma={self.gamma}" if self.threshold is None else f"adaptive(tau={self.threshold:g},max={self.gamma})"

    @property
    def adaptive(self) -> bool:
        return self.threshold is not None


class Calibration:
    """P(draft accepted | drafter confidence c), learned online: the verified drafts' outcomes
    counted in bins of -log2(c) (confidence 1..1/2, 1/2..1/4, ...; a weak model's confidences
    sit far below 1 even where its drafts are right), each bin starting from an optimistic
    prior (9 of 10 accepted) so that drafting starts and the outcomes accrue.

    The drafter's raw confidence is not used as the estimate itself: at temperature 0 a draft
    is accepted iff it is the target's argmax, which a flat but stable distribution gets right
    with a low top probability. One calibration is meant to live across the prompts of a run.
    """

    BINS = 16

    def __init__(self, prior_accepted: float = 9.0, prior_seen: float = 10.0):
        self.accepted = [prior_accepted] * self.BINS
        self.seen = [prior_seen] * self.BINS

    def _bin(self, confidence: float) -> int:
        if confidence <= 0:
            return self.BINS - 1
        return min(int(-math.log2(min(confidence, 1.0))), self.BINS - 1)

    def __call__(self, confidence: float) -> float:
        b = self._bin(confidence)
        return self.accepted[b] / self.seen[b]

    def update(self, confidence: Tensor, n_accepted: int) -> None:
        """Count the checked drafts of one step: the accepted ones and the first rejected one."""
        for k, c in enumerate(confidence.tolist()[: n_accepted + 1]):
            b = self._bin(c)
            self.seen[b] += 1
            self.accepted[b] += float(k < n_accepted)


@dataclass
class Draft:
    """``tokens`` (g,) long, the distributions ``probs`` (g, V) they were drawn from (None for
    greedy drafts: one-hot at the tokens), and the drafter's ``confidence`` (g,) at each step:
    its untempered top probability (at temperature 0, its probability of the drafted token)."""

    tokens: Tensor
    probs: Tensor | None
    confidence: Tensor

    def __len__(self) -> int:
        return len(self.tokens)

    @staticmethod
    def empty(device=None) -> "Draft":
        return Draft(torch.zeros(0, dtype=torch.long, device=device), None, torch.zeros(0, device=device))


class Drafter(Protocol):
    """``max_draft``: the most tokens it can draft in one step (None: no limit)."""

    max_draft: int | None

    def observe(self, target, tokens: Tensor, cache) -> Tensor:
        """The target's cached forward over new ``tokens`` (1, T): returns its logits (1, T, V),
        and keeps what drafting from any of these positions needs."""
        ...

    def propose(self, context: Tensor, anchor: int, length: DraftLength, temperature: float,
                generator: torch.Generator | None, calibration: Calibration | None = None) -> Draft:
        """Tokens continuing ``context`` (1-D long: the prompt and every emitted token; the last
        one is pending, not yet fed). ``anchor`` indexes, in the last ``observe`` call, the
        position whose output predicted the pending token. Drafters draft through
        :func:`draft_tokens`, which applies the length policy."""
        ...


def _draw(probs: Tensor, generator: torch.Generator | None) -> int:
    if float(probs.max()) == 1.0:  # one-hot (greedy): no random draw needed
        return int(probs.argmax())
    return int(torch.multinomial(probs, 1, generator=generator))


def draft_tokens(next_logits: Callable[[int, int], Tensor], last_token: int, length: DraftLength,
                 temperature: float, generator: torch.Generator | None,
                 calibration: Callable[[float], float] | None = None, vocab: Tensor | None = None,
                 vocab_size: int | None = None) -> Draft:
    """The drafting loop every drafter shares: ``next_logits(k, previous_token)`` gives the
    drafter's logits for draft k (0-based) after the previous token (the pending one for
    k = 0); each token is their argmax at temperature 0, else drawn from softmax(logits / T).
    With ``vocab`` (ids, K), the logits cover those K tokens only and q is 0 elsewhere in the
    ``vocab_size`` ids.

    The draft's confidence at step k is the drafter's untempered top probability there (at
    temperature 0: its probability of the drafted token). It is known before the token is
    drawn, so stopping on it (adaptive length: before the step that takes the product of
    ``calibration(confidence)``, default the raw confidence, below ``length.threshold``)
    keeps every kept draft distributed as q, which the exactness of verification needs;
    stopping on the drawn token's own probability would favour likely tokens."""
    greedy = temperature <= 0
    tokens, probs, confs = [], [], []
    tok, joint = last_token, 1.0
    for k in range(length.gamma):
        logits = next_logits(k, tok).float()
        top = int(logits.argmax())
        conf = float((logits[top] - torch.logsumexp(logits, -1)).exp())
        if length.adaptive:
            joint *= calibration(conf) if calibration is not None else conf
            if joint < length.threshold:
                break
        if greedy:
            i = top
        else:
            q = torch.softmax(logits / temperature, dim=-1)
            i = int(torch.multinomial(q, 1, generator=generator))
            if vocab is not None:
                q = q.new_zeros(vocab_size).index_put_((vocab,), q)
            probs.append(q)
        tok = i if vocab is None else int(vocab[i])
        tokens.append(tok)
        confs.append(conf)
    if not tokens:
        return Draft.empty(logits.device if length.gamma else None)
    device = logits.device
    return Draft(torch.tensor(tokens, device=device), None if greedy else torch.stack(probs),
                 torch.tensor(confs, device=device))


def verify(p: Tensor, draft: Draft, generator: torch.Generator | None) -> tuple[int, int]:
    """(accepted drafts, the token drawn after them), from the target's distributions ``p``
    (len(draft) + 1, V) at the draft positions and one past them."""
    q, tokens = draft.probs, draft.tokens
    if q is None:  # greedy drafts: one-hot q
        q = torch.nn.functional.one_hot(tokens, p.size(-1)).to(p.dtype)
    for i in range(len(tokens)):
        x = int(tokens[i])
        u = torch.rand((), generator=generator, device=p.device)
        if u * q[i, x].clamp(min=1e-12) < p[i, x]:  # u < p/q, without dividing
            continue
        residual = (p[i] - q[i]).clamp(min=0)
        return i, _draw(residual / residual.sum() if float(residual.sum()) > 0 else p[i], generator)
    return len(tokens), _draw(p[len(tokens)], generator)


def verify_greedy(logits: Tensor, draft: Draft) -> tuple[int, int]:
    """:func:`verify` at temperature 0 without building distributions: the drafts that equal
    the target's argmax, up to the first that does not, then the target's argmax there."""
    best = logits.argmax(-1)
    g = len(draft)
    wrong = (best[:g] != draft.tokens.to(best.device)).nonzero()
    n = int(wrong[0, 0]) if len(wrong) else g
    return n, int(best[n])


@dataclass
class SpeculativeStats:
    """Per call: ``steps`` (verifying target forwards after the prefill), tokens ``emitted``,
    and per draft position k (0-based) how many drafts were ``proposed`` there, ``checked``
    (every draft before it was accepted) and ``accepted``."""

    steps: int = 0
    emitted: int = 0
    proposed: list[int] = field(default_factory=list)
    checked: list[int] = field(default_factory=list)
    accepted: list[int] = field(default_factory=list)

    def _grow(self, n: int) -> None:
        for counts in (self.proposed, self.checked, self.accepted):
            counts += [0] * (n - len(counts))

    def record(self, drafted: int, n_accepted: int) -> None:
        self._grow(drafted)
        for k in range(drafted):
            self.proposed[k] += 1
            self.checked[k] += int(k <= n_accepted)
            self.accepted[k] += int(k < n_accepted)
        self.steps += 1

    def merge(self, other: "SpeculativeStats") -> None:
        self._grow(len(other.proposed))
        for k in range(len(other.proposed)):
            self.proposed[k] += other.proposed[k]
            self.checked[k] += other.checked[k]
            self.accepted[k] += other.accepted[k]
        self.steps += other.steps
        self.emitted += other.emitted

    @property
    def accepted_per_step(self) -> float:
        """Mean accepted drafts per step (the token drawn after them not counted)."""
        return sum(self.accepted) / max(self.steps, 1)

    @property
    def drafted_per_step(self) -> float:
        return sum(self.proposed) / max(self.steps, 1)

    def acceptance_by_position(self) -> list[float | None]:
        """Per draft position k = 1, 2, ...: accepted / checked, the chance that draft k is
        accepted when every draft before it was (None where none was checked)."""
        return [a / c if c else None for a, c in zip(self.accepted, self.checked)]


@torch.no_grad()
def speculative_generate(target, drafter: Drafter, prompt: Sequence[int] | Tensor, max_new_tokens: int,
                         length: DraftLength | int, *, temperature: float = 1.0,
                         generator: torch.Generator | None = None, eos_id: int | None = None,
                         device=None, calibration: Calibration | None = None
                         ) -> tuple[list[int], SpeculativeStats]:
    """Continue one prompt by up to ``max_new_tokens`` tokens (fewer if ``eos_id`` is emitted,
    which is kept, or the model's ``block_size`` is reached). ``target`` needs ``make_cache``
    (every objective has it); ``length``: a :class:`DraftLength` or a fixed gamma. An adaptive
    length learns its ``calibration`` from each step's outcome (pass one to keep learning
    across calls; default: a fresh one). Returns the new tokens and the statistics."""
    length = DraftLength(length) if isinstance(length, int) else length
    prompt = torch.as_tensor(prompt, dtype=torch.long, device=device).reshape(-1)
    if prompt.numel() < 1:
        raise ValueError("speculative decoding needs a prompt of at least one token (e.g. EOS)")
    device = prompt.device
    limit = int(target.model_cfg.block_size)
    if prompt.numel() > limit:
        raise ValueError(f"prompt of {prompt.numel()} tokens exceeds model.block_size={limit}")
    cache = target.make_cache(1, limit, device)
    if cache is None:
        raise ValueError(f"{type(target).__name__} has no KV cache (make_cache returned None)")
    stats = SpeculativeStats()
    if max_new_tokens < 1:
        return [], stats
    logits = drafter.observe(target, prompt[None], cache)[0]
    first = logits[-1].argmax() if temperature <= 0 else _draw(to_probs(logits[-1], temperature), generator)
    out = [int(first)]  # the prefill's own next token, as plain decoding
    context = prompt.tolist() + out
    ctx = torch.empty(limit + max_new_tokens + 1, dtype=torch.long, device=device)  # context on the device
    ctx[: len(context)] = torch.tensor(context, device=device)
    anchor = prompt.numel() - 1
    cap = length.gamma if drafter.max_draft is None else min(length.gamma, drafter.max_draft)
    if length.adaptive and calibration is None:
        calibration = Calibration()
    while len(out) < max_new_tokens and len(context) <= limit and out[-1] != eos_id:
        # drafts beyond the budget or the model's positions could never be emitted or fed
        room = min(cap, max_new_tokens - len(out) - 1, limit - len(context))
        draft = (drafter.propose(ctx[: len(context)], anchor, DraftLength(room, length.threshold), temperature,
                                 generator, calibration)
                 if room > 0 else Draft.empty(device))
        g = len(draft)
        base = len(context) - 1  # the pending token's position
        feed = torch.cat([ctx[base: base + 1], draft.tokens.to(device)])
        logits = drafter.observe(target, feed[None], cache)[0]  # (g + 1, V): p_1..p_{g+1}
        if temperature <= 0:
            n, nxt = verify_greedy(logits, draft)
        else:
            n, nxt = verify(to_probs(logits, temperature), draft, generator)
        if calibration is not None:
            calibration.update(draft.confidence, n)
        new = draft.tokens[:n].tolist() + [nxt]
        if eos_id is not None and eos_id in new:
            new = new[:new.index(eos_id) + 1]
        new = new[:max_new_tokens - len(out)]  # never cuts: room kept the drafts within the budget
        stats.record(g, min(n, len(new)))  # accepted drafts after an emitted EOS are not emitted
        ctx[len(context): len(context) + len(new)] = torch.tensor(new, device=device)
        out += new
        context += new
        anchor = n  # the output at feed[n] predicted the new pending token
        # keep the pending token and the accepted drafts; rejected drafts are masked and overwritten
        cache.set_positions(torch.tensor([base + 1 + n], device=device), used=base + 1 + n)
    stats.emitted = len(out)
    return out, stats


class ModelDrafter:
    """A separate (small) language model as drafter: tokens sampled one by one from its
    ``logits`` on the whole context (no cache: drafters of this kind are for tests and
    baselines; self-drafters reuse the target's states)."""

    max_draft = None

    def __init__(self, model):
        self.model = model

    def observe(self, target, tokens: Tensor, cache) -> Tensor:
        return target.logits_cached(tokens, cache)

    @torch.no_grad()
    def propose(self, context: Tensor, anchor: int, length: DraftLength, temperature: float,
                generator: torch.Generator | None, calibration: Calibration | None = None) -> Draft:
        seq = [context]

        def next_logits(k: int, tok: int) -> Tensor:
            if k:
                seq.append(torch.tensor([tok], device=context.device))
            return self.model.logits(torch.cat(seq)[None])[0, -1]

        return draft_tokens(next_logits, int(context[-1]), length, temperature, generator, calibration)


__all__ = ["Calibration", "Draft", "DraftLength", "Drafter", "ModelDrafter", "SpeculativeStats", "draft_tokens",
           "speculative_generate", "to_probs", "verify", "verify_greedy"]
