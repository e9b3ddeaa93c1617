"""Training-step throughput of each objective, relative to GPT (paper Table 4) and to the
arithmetic each method needs (FLOPs counted on its real step).

Every method gets the same model config, the same batch and the same optimizer (AdamW),
all in one process, timed in interleaved rounds (nextlat.training.throughput).

    .venv/bin/python bench/throughput.py                      # small shape, ~4 min on one CPU core
    .venv/bin/python bench/throughput.py --shape paper        # the 1.3B model's shares, shrunk
    .venv/bin/python bench/throughput.py --methods gpt,nextlat:1,nextlat:8 --json out.json
    .venv/bin/python bench/throughput.py --device cuda --layers 12 --dim 768 --vocab 50257 \
        --batch 32 --seq-len 1024 --autocast bf16

A method is ``name`` or ``name:horizon``; any name in ``nextlat.objectives.available()``
works. The NextLat d=1 breakdown times nested pieces of its step (trunk+head+CE, plus the
latent rollout with SmoothL1, plus the KL, plus the optimizer) and reports differences.
"""
from __future__ import annotations

import argparse
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
from nextlat.objectives import Batch, available  # noqa: E402
from nextlat.objectives.base import token_ce  # noqa: E402
from nextlat.training.throughput import (StepRunner, interleaved, measure_throughput, noisy,  # noqa: E402
                                         parse_method, random_batch)

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
BST_SUBSAMPLE = 0.1  # Table 4's BST trained on 10% of the O(T^2) prefix/suffix pairs

# Bench shapes. ``small``: each NextLat rollout step adds the dynamics MLP (4 D^2 MACs/token)
# and the frozen head (D V) to a GPT step of about 12 L D^2 + D V: 12% per step here vs. 10% for
# the paper's model. ``paper``: the 1.3B model (22 layers, D = 2048, V = 50,257, T = 1024)
# shrunk in width with its shares kept: the layer count fixes p_psi's share per rollout step
# (4 D^2 against 12 L D^2) and an MTP head block's (1/L); V / (12 L D) = 0.093 fixes the head's
# share (V = 3,144 at D = 128) and T / (6 D) = 0.083 attention's (T = 64).
SHAPES = {
    "small": {"layers": 4, "heads": 4, "dim": 256, "vocab": 512, "batch": 8, "seq_len": 256},
    "paper": {"layers": 22, "heads": 2, "dim": 128, "vocab": 3144, "batch": 16, "seq_len": 64},
}


# --- NextLat d=1 breakdown --------------------------------------------------------------
def nextlat_pieces(trainer: StepRunner, batch: Batch) -> dict[str, Callable[[], None]]:
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
    trainer = StepRunner(cfg, {"name": "nextlat", "horizon": 1}, args.device, args.autocast)
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


# --- where the time goes -----------------------------------------------------------------
def profile_top(cfg, method: dict, batch: Batch, args, steps: int = 3, k: int = 15) -> list[dict]:
    """Top-k operators of ``steps`` training steps of one method by self time (device time on
    CUDA, CPU time otherwise), per step, from torch.profiler's own aggregation."""
    from torch.profiler import ProfilerActivity, profile

    runner = StepRunner(cfg, method, args.device, args.autocast)
    for _ in range(2):  # warm up outside the trace (allocator, autotuning)
        runner.step(batch)
    cuda = torch.device(args.device).type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            runner.step(batch)
        if cuda:
            torch.cuda.synchronize()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, key) > 0]
    total = sum(getattr(e, key) for e in events) or 1.0
    events.sort(key=lambda e: getattr(e, key), reverse=True)
    return [{"op": e.key, "self_ms": getattr(e, key) / 1e3 / steps, "share": getattr(e, key) / total,
             "calls": e.count // steps} for e in events[:k]]


# --- report -----------------------------------------------------------------------------
def fmt(x, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def print_throughput(rows: list[dict]) -> None:
    print(f"\n{'method':<14}{'steps/s':>9}{'best':>8}{'vs GPT':>8}{'(best)':>8}{'ideal':>7}{'effic.':>8}"
          f"{'(best)':>8}{'GFLOP':>8}{'paper':>7}{'train params':>14}{'infer params':>14}")
    for r in rows:
        print(f"{r['method']:<14}{r['steps_per_s']:>9.3f}{r['steps_per_s_best']:>8.3f}"
              f"{fmt(r['ratio_vs_gpt'], '.2f'):>8}{fmt(r['ratio_best'], '.2f'):>8}"
              f"{fmt(r['ideal_ratio'], '.2f'):>7}{fmt(r['efficiency'], '.2f'):>8}"
              f"{fmt(r['efficiency_best'], '.2f'):>8}{r['gflops_per_step']:>8.1f}"
              f"{fmt(r['paper_ratio'], '.2f'):>7}{r['params_training']:>14,}"
              f"{r['params_inference']:>14,}")
    print("steps/s: median over rounds; best: fastest round. vs GPT: median of per-round time ratios; "
          "(best): best/best.\nideal: FLOPs(GPT) / FLOPs(method), counted on the real step (forward + "
          "backward, no recomputation);\neffic.: vs GPT / ideal, (best) from the best ratio. paper: Table 4 "
          "ratio (1.3B model, one B200).")


def warn_if_noisy(times: dict[str, list[float]], limit: float = 1.25) -> None:
    busy = noisy(times, limit)
    if busy:
        print(f"WARNING: median step > {limit}x the fastest for {', '.join(busy)}: the machine "
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
    p.add_argument("--shape", choices=sorted(SHAPES), default="small",
                   help="model and batch shape (see SHAPES); the flags below override its entries")
    for flag in ("layers", "heads", "dim", "vocab", "batch", "seq-len"):
        p.add_argument(f"--{flag}", type=int, default=None)
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
    p.add_argument("--no-interleave", action="store_true",
                   help="build, time and free one method at a time (models that do not fit together)")
    p.add_argument("--profile", default=None, metavar="METHOD",
                   help="also profile a few steps of METHOD (e.g. nextlat:8) with torch.profiler and "
                        "print its top operators by self time")
    p.add_argument("--json", type=Path, default=None, help="also write all results here")
    args = p.parse_args(argv)
    for key, value in SHAPES[args.shape].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        methods = [parse_method(s, BST_SUBSAMPLE) for s in args.methods.split(",") if s.strip()]
    except ValueError as err:
        raise SystemExit(str(err)) from None
    cfg = ModelConfig(vocab_size=args.vocab, n_layer=args.layers, n_head=args.heads,
                      n_embd=args.dim, block_size=args.seq_len + 1)  # BST encodes all L+1 tokens
    batch = random_batch(cfg, args.batch, args.seq_len, args.device)
    print(f"shape {args.shape}; model: {args.layers} layers, {args.heads} heads, dim {args.dim}, vocab {args.vocab}; "
          f"batch {args.batch} x {args.seq_len} tokens; device {args.device}, "
          f"{torch.get_num_threads()} threads, autocast {args.autocast}; "
          f"{args.rounds} rounds x {args.steps} steps after {args.warmup} warm-up")

    start = time.perf_counter()
    rows, times = measure_throughput(cfg, methods, batch, args.device, args.autocast, args.rounds, args.steps,
                                     args.warmup, interleave=not args.no_interleave)
    for row in rows:
        row["paper_ratio"] = PAPER_RATIO.get((row["name"], row["horizon"]))
    print_throughput(rows)
    warn_if_noisy(times)

    pieces = None
    if not args.no_breakdown and "nextlat" in available():
        pieces = breakdown(cfg, batch, args)
        print_breakdown(pieces)
    top = None
    if args.profile:
        top = profile_top(cfg, parse_method(args.profile, BST_SUBSAMPLE), batch, args)
        print(f"\ntorch.profiler, {args.profile}: top operators by self time per step")
        print(f"{'operator':<48}{'self ms':>10}{'share':>8}{'calls':>7}")
        for r in top:
            print(f"{r['op'][:47]:<48}{r['self_ms']:>10.2f}{100 * r['share']:>7.1f}%{r['calls']:>7}")
    print(f"\nwall time {time.perf_counter() - start:.0f} s")

    result = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(),
              "throughput": rows, "raw_seconds_per_step": times, "nextlat_d1_breakdown": pieces,
              "profile": {"method": args.profile, "top": top} if top else None}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
