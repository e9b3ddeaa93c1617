"""The GPU paths of the trainer, checked on a CUDA machine: every objective trained through
``nextlat.training.trainer.train_run`` (Lightning Fabric) with bf16-mixed precision, with and
without ``torch.compile``, on a small learnable task; and each loss under bf16 autocast set
beside its float32 value on the same weights and batch.

    python bench/gpu_check.py --json out.json          # needs a CUDA device; ~2 min on one GPU

A check fails (exit 1) when a run's validation loss is not finite, does not fall below the
uniform-guess loss, or a bf16 loss differs from its float32 value by more than ``--bf16-tol``
(relative). CI has no GPU; this is the script a GPU session runs.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from nextlat.data.dataset import TokenDataset  # noqa: E402
from nextlat.objectives import build_objective  # noqa: E402
from nextlat.training.trainer import train_run  # noqa: E402

VOCAB, SEQ = 64, 65
METHODS = {"gpt": {}, "nextlat": {"horizon": 2}, "mtp": {"horizon": 2}, "jtp": {"horizon": 2},
           "bst": {"subsample_rate": 0.1}}


def progressions(n: int, seed: int) -> TokenDataset:
    """Arithmetic progressions mod (VOCAB - 1), shifted past eos = 0: learnable in a few hundred steps."""
    rng = np.random.default_rng(seed)
    start, stride = rng.integers(0, VOCAB - 1, n), rng.integers(1, 6, n)
    rows = (start[:, None] + stride[:, None] * np.arange(SEQ)[None]) % (VOCAB - 1) + 1
    return TokenDataset.from_rows(rows.tolist(), [1] * n)


def run_cfg(method: str, compile_: bool, steps: int) -> dict:
    return {
        "run_id": f"gpu-{method}{'-compiled' if compile_ else ''}", "benchmark": "synthetic", "task": "ap",
        "seed": 0,
        "model": {"vocab_size": VOCAB, "n_layer": 4, "n_head": 4, "n_embd": 256, "block_size": SEQ,
                  "dropout": 0.0},
        "method": {"name": method, **METHODS[method]},
        "train": {"steps": steps, "batch_size": 32, "micro_batch_size": None, "lr": 1e-3, "weight_decay": 0.1,
                  "betas": [0.9, 0.95], "grad_clip": 1.0,
                  "schedule": {"name": "wsd", "warmup_steps": 10, "decay_steps": steps // 5, "min_lr_ratio": 0.1},
                  "eval_every": 0, "eval_batches": 2, "log_every": 10, "ckpt_every": 0},
        "runtime": {"accelerator": "cuda", "devices": 1, "strategy": "auto", "precision": "bf16-mixed",
                    "compile": compile_, "num_threads": None, "deterministic": False, "progress": False,
                    "wandb": {"enabled": False, "project": None}},
    }


def final_val_loss(out_dir: Path) -> float:
    rows = list(csv.DictReader((out_dir / "metrics.csv").open()))
    vals = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
    return vals[-1] if vals else float("nan")


def train_check(method: str, compile_: bool, steps: int, root: Path) -> dict:
    train, val = progressions(1024, 0), progressions(128, 1)
    out = root / f"{method}-{int(compile_)}"
    start = time.perf_counter()
    train_run(run_cfg(method, compile_, steps), train, val, out)
    seconds = time.perf_counter() - start
    loss = final_val_loss(out)
    uniform = math.log(VOCAB)
    return {"method": method, "compile": compile_, "steps": steps, "seconds": round(seconds, 1),
            "val_loss": loss, "uniform_loss": uniform,
            "ok": math.isfinite(loss) and loss < 0.5 * uniform}


def bf16_check(method: str, tol: float) -> dict:
    """One loss on the same weights and batch, float32 against bf16 autocast."""
    cfg = run_cfg(method, False, 1)
    torch.manual_seed(0)
    objective = build_objective(cfg["model"], cfg["method"]).cuda().eval()
    batch = progressions(16, 2).batch(list(range(16))).to("cuda")
    with torch.no_grad():
        fp32 = objective.loss(batch).loss.item()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            bf16 = objective.loss(batch).loss.item()
    rel = abs(bf16 - fp32) / abs(fp32)
    return {"method": method, "fp32": fp32, "bf16": bf16, "rel_diff": rel, "ok": rel <= tol}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--bf16-tol", type=float, default=0.02)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this script checks the GPU paths")
    methods = [m for m in args.methods.split(",") if m]
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    result = {"torch": torch.__version__, "device": torch.cuda.get_device_name(), "bf16": [], "train": []}
    for m in methods:
        r = bf16_check(m, args.bf16_tol)
        result["bf16"].append(r)
        print(f"bf16 loss {m:<8} fp32 {r['fp32']:.5f}  bf16 {r['bf16']:.5f}  rel {r['rel_diff']:.2e}  "
              f"{'ok' if r['ok'] else 'FAIL'}")
    with tempfile.TemporaryDirectory() as tmp:
        for m in methods:
            for compile_ in (False, True):
                try:
                    r = train_check(m, compile_, args.steps, Path(tmp))
                except Exception as err:  # report and go on: one broken path must not hide the rest
                    r = {"method": m, "compile": compile_, "ok": False, "error": f"{type(err).__name__}: {err}"}
                result["train"].append(r)
                print(f"train {m:<8} compile={compile_!s:<5} "
                      + (f"val loss {r['val_loss']:.4f} (uniform {r['uniform_loss']:.2f}) {r['seconds']} s"
                         if "error" not in r else r["error"][:300]) + f"  {'ok' if r['ok'] else 'FAIL'}",
                      flush=True)
    ok = all(r["ok"] for r in result["bf16"] + result["train"])
    result["ok"] = ok
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print("all GPU checks passed" if ok else "some GPU checks FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
