"""Training-step throughput of each objective, relative to GPT (paper Table 4).

Every method gets the same model config, the same batch and the same optimizer (AdamW),
all in one process. Measurements are interleaved: each round times a few steps of every
method in turn (rotating the order), and the median over rounds is reported, so drifts in
machine load (thermal, other jobs) hit all methods alike instead of biasing one.

    .venv/bin/python bench/throughput.py                      # defaults, ~1 min on one CPU core
    .venv/bin/python bench/throughput.py --methods gpt,nextlat:1,nextlat:8 --json out.json
    .venv/bin/python bench/throughput.py --device cuda --layers 12 --dim 768 --vocab 50257 \
        --batch 32 --seq-len 1024 --autocast bf16

A method is ``name`` or ``name:horizon``; any name in ``nextlat.objectives.available()``
works. The NextLat d=1 breakdown times nested pieces of its step (trunk+head+CE, plus the
latent rollout with SmoothL1, plus the KL, plus the optimizer) and reports differences.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from nextlat.models.transformer import ModelConfig  # noqa: E402
from nextlat.objectives import Batch, available, build_objective  # noqa: E402
from nextlat.objectives.base import token_ce  # noqa: E402

# Throughput ratios vs GPT implied by paper Table 4 (1.3B model, one B200), keyed by
# (method, horizon); horizon None for methods without one.
PAPER_RATIO = {
    ("gpt", None): 1.00,
    ("nextlat", 1): 1.00, ("nextlat", 2): 0.90, ("nextlat", 8): 0.56,
    ("mtp", 1): 0.91, ("mtp", 2): 0.83, ("mtp", 8): 0.55,
    ("jtp", 1): 1.02, ("jtp", 2): 0.94, ("jtp", 8): 0.65,
    ("bst", None): 0.29,
}

DEFAULT_METHODS = ",".join(["gpt", "bst"] + [f"{m}:{d}" for m in ("mtp", "jtp", "nextlat") for d in (1, 2, 8)])


# --- setup ------------------------------------------------------------------------------
BST_SUBSAMPLE = 0.1


def parse_method(spec: str) -> dict:
    """'nextlat:2' -> {'name': 'nextlat', 'horizon': 2}; 'gpt' -> {'name': 'gpt'}."""
    name, _, horizon = spec.strip().partition(":")
    if name not in available():
        raise SystemExit(f"unknown method {name!r}; available: {available()}")
    method = {"name": name}
    if horizon:
        method["horizon"] = int(horizon)
    if name == "bst":  # Table 4's BST trained on 10% of the O(T^2) prefix/suffix pairs
        method["subsample_rate"] = BST_SUBSAMPLE
    return method


def method_label(method: dict) -> str:
    return f"{method['name']} d={method['horizon']}" if "horizon" in method else method["name"]


def make_batch(cfg: ModelConfig, batch: int, seq_len: int, device) -> Batch:
    """Random tokens, every target supervised (the worst case for token losses)."""
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, cfg.vocab_size, (batch, seq_len + 1), generator=gen)
    return Batch(tokens, torch.ones_like(tokens, dtype=torch.bool)).to(device)


class Trainer:
    """One objective + its AdamW; ``step`` is what a training loop does per batch."""

    def __init__(self, cfg: ModelConfig, method: dict, device, autocast: str):
        torch.manual_seed(0)  # same trunk init for every method
        self.objective = build_objective(cfg, method).to(device)
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
    for fn in fns.values():
        time_steps(fn, warmup, device)
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:  # rotate so no method is always first/last
            times[name].append(time_steps(fns[name], steps, device))
    return times


# --- NextLat d=1 breakdown --------------------------------------------------------------
def nextlat_pieces(trainer: Trainer, batch: Batch) -> dict[str, Callable[[], None]]:
    """Nested pieces of one NextLat step; their differences locate the extra cost.

    These re-use the objective's own modules (trunk, head, dynamics.rollout) and only
    re-assemble the loss up to a given term, so they time the same kernels as ``loss``.
    """
    obj = trainer.objective
    d = obj.horizon

    def trunk_ce():  # what GPT does, on NextLat's parameters
        h = obj.trunk(batch.inputs)
        return token_ce(obj.head(h), batch.targets)

    def trunk_ce_rollout():  # + latent rollout and SmoothL1 to the detached trunk states
        emb = obj.trunk.embed(batch.inputs)
        h = obj.trunk(batch.inputs, emb=emb)
        loss = token_ce(obj.head(h), batch.targets)
        for i, pred in enumerate(obj.rollout(h, emb, d), start=1):
            loss = loss + F.smooth_l1_loss(pred.float(), h.detach()[:, i:].float())
        return loss

    return {
        "trunk+head+CE fwd/bwd": lambda: trainer.backward_and_step(trunk_ce, update=False),
        "+ rollout+SmoothL1": lambda: trainer.backward_and_step(trunk_ce_rollout, update=False),
        "+ KL, masks (full loss)": lambda: trainer.backward_and_step(
            lambda: obj.loss(batch).loss, update=False),
        "+ AdamW step (full step)": lambda: trainer.step(batch),
    }


def breakdown(cfg, batch, args) -> list[dict]:
    trainer = Trainer(cfg, {"name": "nextlat", "horizon": 1}, args.device, args.autocast)
    times = interleaved(nextlat_pieces(trainer, batch), args.rounds, args.steps, args.warmup,
                        args.device)
    rows, prev = [], [0.0] * args.rounds
    for name, ts in times.items():
        # Deltas are taken within a round (pieces timed back to back), then the median.
        delta = statistics.median(t - p for t, p in zip(ts, prev))
        rows.append({"piece": name, "cumulative_ms": 1e3 * statistics.median(ts),
                     "delta_ms": 1e3 * delta})
        prev = ts
    total = rows[-1]["cumulative_ms"]
    for row in rows:
        row["share"] = row["delta_ms"] / total
    return rows


# --- report -----------------------------------------------------------------------------
def throughput_rows(methods: list[dict], times: dict[str, list[float]], params: dict) -> list[dict]:
    """Steps/s and ratios to GPT.

    ``ratio_vs_gpt`` is the median over rounds of GPT's time / the method's time within the
    same round (measured seconds apart, so a burst of load slows both); ``ratio_best`` uses
    each method's fastest round, the least disturbed estimate on a shared machine.
    """
    gpt = times.get("gpt")
    rows = []
    for m in methods:
        label = method_label(m)
        ts = times[label]
        rows.append({
            "method": label,
            "steps_per_s": 1.0 / statistics.median(ts),
            "steps_per_s_best": 1.0 / min(ts),
            "ratio_vs_gpt": statistics.median(g / t for g, t in zip(gpt, ts)) if gpt else None,
            "ratio_best": min(gpt) / min(ts) if gpt else None,
            "paper_ratio": PAPER_RATIO.get((m["name"], m.get("horizon"))),
            "params_training": params[label]["training"],
            "params_inference": params[label]["inference"],
        })
    return rows


def fmt(x, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def print_throughput(rows: list[dict]) -> None:
    print(f"\n{'method':<14}{'steps/s':>9}{'best':>8}{'vs GPT':>8}{'(best)':>8}{'paper':>7}"
          f"{'train params':>14}{'infer params':>14}")
    for r in rows:
        print(f"{r['method']:<14}{r['steps_per_s']:>9.3f}{r['steps_per_s_best']:>8.3f}"
              f"{fmt(r['ratio_vs_gpt'], '.2f'):>8}{fmt(r['ratio_best'], '.2f'):>8}"
              f"{fmt(r['paper_ratio'], '.2f'):>7}{r['params_training']:>14,}"
              f"{r['params_inference']:>14,}")
    print("steps/s: median over rounds; best: fastest round. vs GPT: median of per-round "
          "time ratios;\n(best): best/best. paper: Table 4 ratio (1.3B model, one B200).")


def warn_if_noisy(times: dict[str, list[float]], limit: float = 1.25) -> None:
    noisy = [n for n, ts in times.items() if statistics.median(ts) > limit * min(ts)]
    if noisy:
        print(f"WARNING: median step > {limit}x the fastest for {', '.join(noisy)}: the machine "
              "was busy; prefer the (best) ratio, or rerun with more --rounds / fewer --threads.")


def print_breakdown(rows: list[dict]) -> None:
    print("\nNextLat d=1 step breakdown (nested pieces, medians; delta = cost the piece adds):")
    print(f"{'piece':<28}{'cumulative ms':>15}{'delta ms':>10}{'share':>8}")
    for r in rows:
        print(f"{r['piece']:<28}{r['cumulative_ms']:>15.1f}{r['delta_ms']:>10.1f}"
              f"{100 * r['share']:>7.1f}%")


# --- main -------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--methods", default=DEFAULT_METHODS,
                   help="comma-separated name[:horizon] list; include gpt for ratios")
    # Default size: each rollout step adds the dynamics MLP (4 D^2 MACs/token) and the frozen
    # head (D V) to a GPT step of about 12 L D^2 + D V, i.e. (4*256^2 + 256*512) /
    # (12*4*256^2 + 256*512) = 12% per step here vs. 10% for the paper's 22-layer, D=2048,
    # V=50257 model, so the d-scaling is comparable; smaller models are dominated by overhead.
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--autocast", choices=["none", "bf16"], default="none")
    # One thread by default: on a shared machine a descheduled OpenMP worker stalls every
    # parallel region, which turned 0.4 s steps into 2-8 s ones in our runs; one thread
    # kept round-to-round spread to a few percent. 0 = torch's default (all cores).
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads; 0 = torch default")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--steps", type=int, default=1, help="timed steps per method per round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per method first")
    p.add_argument("--no-breakdown", action="store_true", help="skip the NextLat d=1 breakdown")
    p.add_argument("--json", type=Path, default=None, help="also write all results here")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = [parse_method(s) for s in args.methods.split(",") if s.strip()]
    cfg = ModelConfig(vocab_size=args.vocab, n_layer=args.layers, n_head=args.heads,
                      n_embd=args.dim, block_size=args.seq_len + 1)  # BST encodes all L+1 tokens
    batch = make_batch(cfg, args.batch, args.seq_len, args.device)
    print(f"model: {args.layers} layers, {args.heads} heads, dim {args.dim}, vocab {args.vocab}; "
          f"batch {args.batch} x {args.seq_len} tokens; device {args.device}, "
          f"{torch.get_num_threads()} threads, autocast {args.autocast}; "
          f"{args.rounds} rounds x {args.steps} steps after {args.warmup} warm-up")

    trainers = {method_label(m): Trainer(cfg, m, args.device, args.autocast) for m in methods}
    params = {label: t.objective.param_counts() for label, t in trainers.items()}
    fns = {label: (lambda t=t: t.step(batch)) for label, t in trainers.items()}
    start = time.perf_counter()
    times = interleaved(fns, args.rounds, args.steps, args.warmup, args.device)
    rows = throughput_rows(methods, times, params)
    print_throughput(rows)
    warn_if_noisy(times)
    del trainers, fns

    pieces = None
    if not args.no_breakdown and "nextlat" in available():
        pieces = breakdown(cfg, batch, args)
        print_breakdown(pieces)
    print(f"\nwall time {time.perf_counter() - start:.0f} s")

    result = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(),
              "throughput": rows, "raw_seconds_per_step": times, "nextlat_d1_breakdown": pieces}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
