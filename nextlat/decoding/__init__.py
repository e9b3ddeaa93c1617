"""Decoding: one autoregressive ``generate`` for every evaluation.

``generate`` continues a batch of prompts (equal or different lengths, per-row budgets,
optional stop at EOS) with greedy or sampled tokens or a caller's ``pick``, incrementally
through a KV cache (:class:`~nextlat.models.kv_cache.KVCache`) when the model offers one
(``make_cache``/``logits_cached`` on :class:`~nextlat.objectives.base.Objective`), else by
recomputing the logits of the whole prefix. ``check_decodings`` validates the
``decodings`` lists of the evaluation configs.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor

from ..models.kv_cache import KVCache

TEACHER_FORCED = "teacher_forced"  # reserved: the name evaluations give teacher-forced scores
_DECODING_KEYS = {"name", "temperature", "top_k"}


def check_decodings(decodings: list[dict]) -> list[dict]:
    """Distinct names (not ``teacher_forced``), known keys; defaults filled in."""
    names = [d.get("name") for d in decodings]
    if not decodings or None in names or len(set(names)) != len(names) or TEACHER_FORCED in names:
        raise ValueError(f"decodings need distinct names other than {TEACHER_FORCED!r}; got {names}")
    for d in decodings:
        unknown = set(d) - _DECODING_KEYS
        if unknown:
            raise ValueError(f"decoding {d['name']!r} has unknown keys {sorted(unknown)}; "
                             f"allowed: {sorted(_DECODING_KEYS)}")
    return [{"temperature": 0.0, "top_k": None, **d} for d in decodings]


@torch.no_grad()
def sample_next(logits: Tensor, temperature: float = 0.0, top_k: int | None = None,
                generator: torch.Generator | None = None) -> Tensor:
    """Pick the next token from (B, V) logits: greedy when temperature == 0."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


Pick = Callable[[Tensor, Tensor, int], Tensor]


@dataclass
class Generation:
    """Continuations of a batch: ``tokens`` (B, N) on the decoding device, right-padded with
    the pad id after each row's ``lengths[r]`` tokens (CPU long; a stopping EOS included);
    N is the largest budget."""

    tokens: Tensor
    lengths: Tensor

    def tolist(self) -> list[list[int]]:
        tokens = self.tokens.cpu()
        return [tokens[r, :n].tolist() for r, n in enumerate(self.lengths.tolist())]


def _right_padded(prompts, pad_id: int, device) -> tuple[Tensor, Tensor]:
    """(B, P) long prompt buffer on ``device`` and the (B,) CPU prompt lengths."""
    if isinstance(prompts, Tensor):
        if prompts.dim() != 2:
            raise ValueError(f"prompt tensor must be (B, P); got shape {tuple(prompts.shape)}")
        buf = prompts.to(device if device is not None else prompts.device, torch.long)
        return buf, torch.full((buf.size(0),), buf.size(1), dtype=torch.long)
    rows = [list(map(int, p)) for p in prompts]
    plen = torch.tensor([len(r) for r in rows], dtype=torch.long)
    buf = torch.full((len(rows), max([len(r) for r in rows] + [1])), pad_id, dtype=torch.long)
    for i, r in enumerate(rows):
        buf[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return buf.to(device if device is not None else "cpu"), plen


@torch.no_grad()
def generate(model, prompts: Tensor | Sequence[Sequence[int]], max_new_tokens: int | Sequence[int], *,
             temperature: float = 0.0, top_k: int | None = None, generator: torch.Generator | None = None,
             eos_id: int | None = None, pick: Pick | None = None, pad_id: int = 0, device=None,
             use_cache: bool = True) -> Generation:
    """Autoregressive continuation of a batch of prompts; every evaluation decodes with it.

    ``model`` needs ``logits(tokens (B, T)) -> (B, T, V)``; objectives whose
    ``make_cache`` returns a cache decode incrementally (``use_cache``), others recompute
    ``logits`` on the whole prefix every step. ``prompts``: a (B, P) tensor or a list of
    token lists (right-padded with ``pad_id``; a causal model never reads the padding),
    decoded on ``device`` (default: the tensor's, else the model's parameters', else CPU).
    ``max_new_tokens``: one budget or one per row. A row stops at its budget or after
    emitting ``eos_id`` (None: never). The next tokens of the still-active rows come from
    ``pick(rows, logits, step)`` (``rows``: CPU long indices into the batch, ascending;
    ``logits``: their (b, V) next-token logits; ``step``: tokens generated so far), by
    default :func:`sample_next` with ``temperature``/``top_k``/``generator``.

    RNG order: sampling draws once per step for the active rows together (all rows when
    nothing stops early), the same with and without the cache. The cached logits equal the
    uncached ones up to float rounding (the first step is bit-identical), so the tokens can
    only differ where two candidates are within rounding of each other.
    """
    if pick is None:
        def pick(rows, logits, step):
            return sample_next(logits, temperature, top_k, generator)
    elif temperature or top_k is not None:
        raise ValueError("pass either pick or temperature/top_k, not both")
    if device is None and not isinstance(prompts, Tensor):  # lists go where the model is
        device = next((p.device for p in model.parameters()), None) if isinstance(model, torch.nn.Module) else None
    buf, plen = _right_padded(prompts, pad_id, device)
    device, B = buf.device, buf.size(0)
    budgets = torch.as_tensor(max_new_tokens, dtype=torch.long).expand(B).clone()
    n_new = max(int(budgets.max()), 0) if B else 0
    buf = torch.cat([buf, torch.full((B, n_new), pad_id, dtype=torch.long, device=device)], 1)
    length, done = plen.clone(), budgets <= 0

    cache = None
    make_cache = getattr(model, "make_cache", None)
    if use_cache and make_cache is not None and not bool(done.all()):
        live = ~done  # positions ever fed: prompt + all but the last generated token
        cache = make_cache(int(live.sum()), int((plen + budgets - 1)[live].max()), device)
    loop = _decode_uncached if cache is None else partial(_decode_cached, cache=cache)
    loop(model, buf, plen, length, budgets, done, pick, eos_id)

    lengths = length - plen
    cols = (plen[:, None] + torch.arange(n_new)).clamp(max=buf.size(1) - 1).to(device)
    tokens = buf.gather(1, cols).masked_fill((torch.arange(n_new)[None] >= lengths[:, None]).to(device), pad_id)
    return Generation(tokens, lengths)


def _finished(nxt: Tensor, rows: Tensor, length: Tensor, plen: Tensor, budgets: Tensor,
              eos_id: int | None) -> Tensor:
    out = length[rows] - plen[rows] >= budgets[rows]
    return out if eos_id is None else out | (nxt.cpu() == eos_id)


def _decode_uncached(model, buf, plen, length, budgets, done, pick, eos_id) -> None:
    """Each step runs ``model.logits`` on the active rows only, cut to the longest of them."""
    device, step = buf.device, 0
    while not bool(done.all()):
        rows = torch.nonzero(~done).squeeze(1)
        rows_d, at = rows.to(device), (length[rows] - 1).to(device)
        logits = model.logits(buf[rows_d, : int(length[rows].max())])
        nxt = pick(rows, logits[torch.arange(len(rows), device=device), at], step).to(device)
        buf[rows_d, at + 1] = nxt
        length[rows] += 1
        done[rows] = _finished(nxt, rows, length, plen, budgets, eos_id)
        step += 1


def _decode_cached(model, buf, plen, length, budgets, done, pick, eos_id, cache) -> None:
    """Prefill the active rows' right-padded prompts once, then feed one token per step.

    Cache row i holds batch row ``slots[i]``. Finished rows stay in the cache (dropping
    rows copies the whole cache) until a quarter of them are finished; meanwhile each is
    fed its first token again at position 0, whose output nothing reads.
    """
    device = buf.device
    slots = torch.nonzero(~done).squeeze(1)
    logits = model.logits_cached(buf[slots.to(device), : int(length[slots].max())], cache)
    last = logits[torch.arange(len(slots), device=device), (length[slots] - 1).to(device)]
    step = 0
    while True:
        live = ~done[slots]
        rows = slots[live]
        nxt = pick(rows, last if bool(live.all()) else last[live.to(device)], step).to(device)
        buf[rows.to(device), length[rows].to(device)] = nxt
        length[rows] += 1
        done[rows] = _finished(nxt, rows, length, plen, budgets, eos_id)
        step += 1
        live = ~done[slots]
        if not bool(live.any()):
            return
        if 4 * int(live.sum()) <= 3 * len(slots):
            keep = torch.nonzero(live).squeeze(1)
            cache.select(keep)
            slots, live = slots[keep], live[keep]
        pos = torch.where(live, length[slots] - 1, 0)  # the newest token's position
        cache.set_positions(pos, used=int(pos.max()))
        tok = buf[slots.to(device), pos.to(device)]  # finished rows: their first token, unread
        last = model.logits_cached(tok[:, None], cache)[:, 0]


__all__ = ["TEACHER_FORCED", "Generation", "KVCache", "Pick", "check_decodings", "generate", "sample_next"]
