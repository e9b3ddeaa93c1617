"""Training-step throughput of objectives against GPT, and against the arithmetic they need.

Every method gets the same model config, the same batch and its own AdamW, in one process.
Timings are interleaved: each round times a few steps of every method in turn (the order
rotated each round) and the median over rounds is reported, so drifts in machine load hit all
methods alike instead of biasing one. Each method's FLOPs per step are counted on its real
step (:mod:`nextlat.training.flops`), giving the ratio it would reach if its products ran as
fast as GPT's (``ideal_ratio``) and how close it gets (``efficiency`` = measured / ideal).

Used by ``bench/throughput.py`` and the ``table4`` stage.
"""
from __future__ import annotations

import contextlib
import statistics
import time
from typing import Callable

import torch

from ..data.batch import Batch
from ..models.transformer import ModelConfig
from ..objectives import available, build_objective
from .flops import step_flops


def parse_method(spec: str, bst_subsample: float | None = None) -> dict:
    """'nextlat:2' -> {'name': 'nextlat', 'horizon': 2}; 'gpt' -> {'name': 'gpt'}."""
    name, _, horizon = spec.strip().partition(":")
    if name not in available():
        raise ValueError(f"unknown method {name!r}; available: {available()}")
    method = {"name": name}
    if horizon:
        method["horizon"] = int(horizon)
    if name == "bst" and bst_subsample is not None:
        method["subsample_rate"] = bst_subsample
    return method


def method_label(method: dict) -> str:
    return f"{method['name']} d={method['horizon']}" if method.get("horizon") else method["name"]


def random_batch(cfg: ModelConfig, batch: int, seq_len: int, device) -> Batch:
    """Random tokens without document breaks, every target supervised (the costliest case
    for token losses)."""
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, cfg.vocab_size, (batch, seq_len + 1), generator=gen)
    return Batch(tokens, torch.ones_like(tokens, dtype=torch.bool)).to(device)


class StepRunner:
    """One objective + its AdamW; ``step`` is what a training loop does per batch."""

    def __init__(self, cfg: ModelConfig, method: dict, device, autocast: str = "none"):
        torch.manual_seed(0)  # the same trunk init for every method
        with torch.device(device):  # initialised where it runs: a 1.3B model inits in seconds on a GPU
            self.objective = build_objective(cfg, method)
        self.opt = torch.optim.AdamW(self.objective.parameters(), lr=1e-4, weight_decay=0.1)
        self.device = torch.device(device)
        self.autocast = autocast

    def amp(self):
        if self.autocast == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def backward_and_step(self, loss_fn: Callable[[], torch.Tensor], update: bool = True) -> None:
        with self.amp():
            loss = loss_fn()
        loss.backward()
        if update:
            self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def step(self, batch: Batch) -> None:
        self.backward_and_step(lambda: self.objective.loss(batch).loss)

    def needed_flops(self, batch: Batch) -> int:
        """FLOPs of the step's loss forward and backward without recomputation: activation
        checkpointing (BST's pair head at scale, MTP's ``memory_efficient``) repeats forward
        passes in backward to save memory; the arithmetic the method needs excludes them."""
        with self.amp():
            counted = step_flops(self.objective, batch)
        return counted["total"] - counted["recomputed"]


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_steps(fn: Callable[[], None], steps: int, device) -> float:
    """Seconds per call of ``fn``, averaged over ``steps`` back-to-back calls."""
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - start) / steps


def interleaved(fns: dict[str, Callable[[], None]], rounds: int, steps: int, warmup: int,
                device) -> dict[str, list[float]]:
    """Per-round seconds/step of each fn, round-robin with a rotating start."""
    if warmup:
        for fn in fns.values():
            time_steps(fn, warmup, device)
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:  # rotate so no method is always first or last
            times[name].append(time_steps(fns[name], steps, device))
    return times


def throughput_rows(methods: list[dict], times: dict[str, list[float]], params: dict[str, dict],
                    flops: dict[str, int]) -> list[dict]:
    """Per method: steps/s, ratios to GPT, FLOPs per step, the ideal ratio and the efficiency.

    ``ratio_vs_gpt`` is the median over rounds of GPT's time / the method's time within the
    same round (measured seconds apart, so a burst of load slows both); ``ratio_best`` uses
    each method's fastest round, the least disturbed estimate on a shared machine.
    ``ideal_ratio`` = flops(GPT) / flops(method); ``efficiency`` = ratio_vs_gpt / ideal_ratio
    (1: the method's extra products run as fast as GPT's own; below 1: overhead beyond them).
    """
    gpt, gpt_flops = times.get("gpt"), flops.get("gpt")
    rows = []
    for m in methods:
        label = method_label(m)
        ts = times[label]
        ratio = statistics.median(g / t for g, t in zip(gpt, ts)) if gpt else None
        best = min(gpt) / min(ts) if gpt else None
        ideal = gpt_flops / flops[label] if gpt_flops else None
        rows.append({
            "method": label, "name": m["name"], "horizon": m.get("horizon"),
            "steps_per_s": 1.0 / statistics.median(ts), "steps_per_s_best": 1.0 / min(ts),
            "ratio_vs_gpt": ratio, "ratio_best": best,
            "gflops_per_step": flops[label] / 1e9, "ideal_ratio": ideal,
            "efficiency": ratio / ideal if ratio and ideal else None,
            "efficiency_best": best / ideal if best and ideal else None,
            "params_training": params[label]["training"], "params_inference": params[label]["inference"],
        })
    return rows


def measure_throughput(cfg: ModelConfig, methods: list[dict], batch: Batch, device, autocast: str = "none",
                       rounds: int = 8, steps: int = 1, warmup: int = 2,
                       interleave: bool = True) -> tuple[list[dict], dict]:
    """Rows of :func:`throughput_rows` and the raw seconds per step of every round.

    ``interleave=False`` builds, times and frees one method at a time, for models whose
    methods do not fit in memory together (the 1.3B models with their optimizer states):
    each method's rounds then run back to back, and its ratio pairs round k with GPT's round
    k, measured minutes apart rather than seconds."""
    params, flops, times = {}, {}, {}

    def build(method: dict) -> StepRunner:
        runner = StepRunner(cfg, method, device, autocast)
        label = method_label(method)
        params[label] = runner.objective.param_counts()
        flops[label] = runner.needed_flops(batch)
        return runner

    if interleave:
        runners = {method_label(m): build(m) for m in methods}
        fns = {label: (lambda r=r: r.step(batch)) for label, r in runners.items()}
        times = interleaved(fns, rounds, steps, warmup, device)
    else:
        for method in methods:
            runner = build(method)
            label = method_label(method)
            times[label] = interleaved({label: lambda: runner.step(batch)}, rounds, steps, warmup, device)[label]
            del runner
            if torch.device(device).type == "cuda":
                torch.cuda.empty_cache()
    return throughput_rows(methods, times, params, flops), times


def noisy(times: dict[str, list[float]], limit: float = 1.25) -> list[str]:
    """Methods whose median step is more than ``limit`` x their fastest (a busy machine)."""
    return [n for n, ts in times.items() if statistics.median(ts) > limit * min(ts)]


__all__ = ["StepRunner", "interleaved", "measure_throughput", "method_label", "noisy", "parse_method",
           "random_batch", "throughput_rows", "time_steps"]
