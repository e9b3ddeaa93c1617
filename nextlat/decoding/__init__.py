"""Decoding: one autoregressive ``generate`` for every evaluation.

``generate`` continues a batch of prompts with greedy or sampled tokens; ``check_decodings``
validates the ``decodings`` lists of the evaluation configs.
"""
from __future__ import annotations

import torch
from torch import Tensor

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


@torch.no_grad()
def generate(objective: Objective, prompt: Tensor, max_new_tokens: int, temperature: float = 0.0,
             top_k: int | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Autoregressive continuation of equal-length prompts (B, P) -> (B, max_new_tokens).

    No KV cache: sequences in the benchmarks here are short (at most a few hundred tokens).
    """
    seq = prompt
    for _ in range(max_new_tokens):
        logits = objective.logits(seq)[:, -1]
        seq = torch.cat([seq, sample_next(logits, temperature, top_k, generator)[:, None]], dim=1)
    return seq[:, prompt.size(1):]
