"""Floating-point operations of one training step, counted on the real step.

``step_flops`` runs an objective's ``loss(batch)`` forward and backward under torch's
``FlopCounterMode``, so every method is charged for exactly the matrix products its code
performs (extra heads, rollout steps, the pair head, recomputation in backward), with no
hand-kept formula to drift from the code. ``gpt_step_flops`` is the closed form for a plain
GPT step; the tests hold the counter to it, which checks the counter (and its CPU attention
formulas below) on the one method whose arithmetic is easy to write down.

Conventions (torch's): a (m x k) @ (k x n) product costs 2 m k n; attention is counted dense
(a causal mask does not halve it); elementwise work (norms, softmax, GELU, losses) and the
optimizer are not counted. The ratio flops(GPT) / flops(method) is therefore the throughput
ratio a method would reach if every one of its products ran as fast as GPT's.
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from ..models.transformer import ModelConfig, swiglu_hidden

aten = torch.ops.aten


# torch counts its CUDA attention kernels but not the CPU flash kernel SDPA dispatches to here;
# these charge it the same dense-attention formulas, so CPU and GPU counts agree.
def _cpu_flash_forward(query, key, value, *args, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _cpu_flash_backward(grad_out, query, key, value, *args, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


CPU_ATTENTION = {
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_forward,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_backward,
}


def counter() -> FlopCounterMode:
    """A quiet FlopCounterMode that also counts CPU attention."""
    return FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION)


def step_flops(objective: torch.nn.Module, batch) -> dict[str, int]:
    """Counted FLOPs of one training step's loss forward and backward.

    Returns ``total``, ``forward``, ``backward`` and ``recomputed``: the part of the backward
    that repeats forward passes of modules under activation checkpointing (BST's pair head,
    MTP's ``memory_efficient`` heads). The counter files an operation under the modules whose
    forward is running; in backward only a checkpointed forward runs, so the backward's
    module-filed FLOPs (top-level entries, to count nested modules once) are exactly the
    recomputation. ``total - recomputed`` is the arithmetic the method needs, whatever memory
    trade it makes. Gradients are cleared afterwards.
    """
    fwd = counter()
    with fwd:
        loss = objective.loss(batch).loss
    bwd = counter()
    with bwd:
        loss.backward()
    objective.zero_grad(set_to_none=True)
    f, b = fwd.get_total_flops(), bwd.get_total_flops()
    recomputed = sum(sum(ops.values()) for name, ops in bwd.get_flop_counts().items()
                     if name != "Global" and "." not in name)
    return {"total": f + b, "forward": f, "backward": b, "recomputed": recomputed}


def gpt_step_flops(cfg: ModelConfig, batch_size: int, seq_len: int) -> int:
    """Closed form of one GPT step (forward + backward) on ``batch_size`` rows of ``seq_len``
    inputs, in the counter's conventions.

    Per token and layer the products are q/k/v, the attention output projection and the MLP
    (SwiGLU: a doubled up-projection to width H, then H back to D); the output head adds D x V.
    Each weight costs 2 FLOPs per token forward and twice that backward (the gradients of its
    input and of the weight). Attention per layer: Q K^T and A V, 2 B T^2 D each forward; torch
    charges the backward 2.5 times the forward (it recomputes the scores).
    """
    D, L, V, tokens = cfg.n_embd, cfg.n_layer, cfg.vocab_size, batch_size * seq_len
    hidden = swiglu_hidden(D) if cfg.mlp == "swiglu" else 4 * D
    up = D * hidden * (2 if cfg.mlp == "swiglu" else 1)
    weights = L * (3 * D * D + D * D + up + hidden * D) + D * V
    linear = 3 * 2 * tokens * weights
    attention_fwd = L * 2 * (2 * batch_size * seq_len * seq_len * D)
    return linear + attention_fwd + attention_fwd * 5 // 2


__all__ = ["CPU_ATTENTION", "counter", "gpt_step_flops", "step_flops"]
