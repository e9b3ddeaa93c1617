"""Speed-up of self-speculative decoding over plain decoding, measured in one process.

For every prompt, plain autoregressive decoding (:func:`nextlat.decoding.generate`, the same
KV cache) and speculative decoding at every configured draft length run back to back, so
both see the same machine load; times are summed per domain. Reported per draft-length
setting, as in the paper (Tables 3 and 7):

* ``speedup``: speculative tokens/s over plain tokens/s;
* ``accepted_per_step``: accepted drafts per target forward (the paper's "accepted tokens",
  which exclude the target's own next token);
* ``acceptance_by_position``: P(draft k accepted | drafts 1..k-1 accepted);
* ``greedy_match`` (temperature 0 only): the share of prompts whose speculative output equals
  plain greedy decoding token for token (1.0 unless float rounding breaks a near-tie).
"""
from __future__ import annotations

import logging
import time

import torch

from ..decoding import generate
from ..decoding.drafters import self_drafter
from ..decoding.speculative import Calibration, DraftLength, SpeculativeStats, speculative_generate
from ..progress import progress

log = logging.getLogger(__name__)


def draft_lengths(decoding: dict, max_draft: int | None) -> list[DraftLength]:
    """The fixed lengths a drafter can use (``gammas`` up to its ``max_draft``) and one
    adaptive policy per threshold (``max_gamma`` capped the same way)."""
    cap = max_draft or 10 ** 9
    fixed = [DraftLength(g) for g in decoding["gammas"] if g <= cap]
    adaptive = decoding.get("adaptive", {})
    top = min(int(adaptive.get("max_gamma", max(decoding["gammas"]))), cap)
    return fixed + [DraftLength(top, float(t)) for t in adaptive.get("thresholds", [])]


def _sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device):
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - start


def measure(model, prompts: dict[str, list[list[int]]], decoding: dict, seed: int, device,
            vocab=None) -> dict:
    """Per domain: plain decoding's tokens and seconds, and per draft-length setting the
    speculative tokens, seconds, speed-up and acceptance statistics. ``vocab``: the drafter's
    token shortlist (None: the whole vocabulary). An adaptive setting's calibration is learned
    across the run's prompts in order, as a server would."""
    model.eval()
    drafter = self_drafter(model, vocab)
    lengths = draft_lengths(decoding, drafter.max_draft)
    n_new, temperature = int(decoding["new_tokens"]), float(decoding["temperature"])

    def plain(prompt, gen):
        return generate(model, [prompt], n_new, temperature=temperature, generator=gen, device=device).tolist()[0]

    calibrations = {length: Calibration() for length in lengths if length.adaptive}

    def speculative(prompt, length, gen):
        return speculative_generate(model, drafter, prompt, n_new, length, temperature=temperature,
                                    generator=gen, device=device, calibration=calibrations.get(length))

    warm = [p for ps in prompts.values() for p in ps][: int(decoding.get("warmup_prompts", 1))]
    for prompt in warm:  # untimed: first calls allocate and warm up kernels
        plain(prompt, torch.Generator(device).manual_seed(seed))
        for length in lengths:
            speculative(prompt, length, torch.Generator(device).manual_seed(seed))

    acc = {d: {"ar_tokens": 0, "ar_seconds": 0.0, "ar_distinct": 0.0,
               "rows": [{"stats": SpeculativeStats(), "seconds": 0.0, "match": 0} for _ in lengths]}
           for d in prompts}
    work = [(d, i, p) for d, ps in prompts.items() for i, p in enumerate(ps)]
    for domain, i, prompt in progress(work, len(work), f"speculative {model.name}", unit="prompts"):
        a = acc[domain]
        gen_seed = seed * 1_000_003 + i  # the same draws for every setting of a prompt
        ref, dt = _timed(lambda: plain(prompt, torch.Generator(device).manual_seed(gen_seed)), device)
        a["ar_tokens"] += len(ref)
        a["ar_seconds"] += dt
        a["ar_distinct"] += len(set(ref)) / max(len(ref), 1)
        for length, row in zip(lengths, a["rows"]):
            (toks, stats), dt = _timed(
                lambda: speculative(prompt, length, torch.Generator(device).manual_seed(gen_seed)), device)
            row["stats"].merge(stats)
            row["seconds"] += dt
            row["match"] += int(toks == ref)

    out = {}
    for domain, a in acc.items():
        n, ar_rate = len(prompts[domain]), a["ar_tokens"] / a["ar_seconds"]
        settings = []
        for length, row in zip(lengths, a["rows"]):
            s = row["stats"]
            rate = s.emitted / row["seconds"]
            settings.append({
                "name": length.name, "gamma": length.gamma, "threshold": length.threshold,
                "tokens": s.emitted, "seconds": row["seconds"], "tokens_per_s": rate, "speedup": rate / ar_rate,
                "steps": s.steps, "accepted_per_step": s.accepted_per_step, "drafted_per_step": s.drafted_per_step,
                "proposed": s.proposed, "checked": s.checked, "accepted": s.accepted,
                "acceptance_by_position": s.acceptance_by_position(),
                "greedy_match": row["match"] / n if temperature == 0 else None,
            })
        # Distinct tokens per continuation (mean over prompts): near 1/new_tokens the model
        # repeats one token, a loop any drafter predicts, so acceptance then says little.
        out[domain] = {"prompts": n, "ar": {"tokens": a["ar_tokens"], "seconds": a["ar_seconds"],
                                            "tokens_per_s": ar_rate, "distinct_fraction": a["ar_distinct"] / n},
                       "settings": settings}
        best = max(settings, key=lambda r: r["speedup"])
        log.info("%s %s: plain %.0f tokens/s; best %s %.2fx, %.2f accepted/step", model.name, domain, ar_rate,
                 best["name"], best["speedup"], best["accepted_per_step"])
    return out


__all__ = ["draft_lengths", "measure"]
