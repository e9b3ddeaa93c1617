"""A tiny run config and synthetic data for the trainer tests; also the DDP worker script.

As a script (used by tests/test_ddp.py) it trains ``tiny_cfg`` with Fabric's ``ddp``
strategy. Fabric re-executes this script once per extra rank, so the script must be
deterministic from the top. Each rank saves the weights it ended with to
``OUT/rank{r}.pt`` so the test can check that ranks stayed in sync.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nextlat.data.dataset import TokenDataset  # noqa: E402

VOCAB, SEQ, PROMPT = 20, 17, 2
TINY_METHOD_KEYS = {"nextlat": {"horizon": 2, "lambda_next_h": 1.0, "lambda_kl": 1.0, "dyn_hidden": 32,
                                "latent_ce": False},
                    "mtp": {"horizon": 2}, "jtp": {"horizon": 2}}


def tiny_cfg(method: str = "gpt", **train_overrides) -> dict:
    cfg = {
        "run_id": f"tiny-{method}", "benchmark": "synthetic", "task": "arith", "seed": 7,
        "model": {"vocab_size": VOCAB, "n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32,
                  "dropout": 0.1},
        "method": {"name": method, **TINY_METHOD_KEYS.get(method, {})},  # objectives refuse other keys
        "train": {"steps": 12, "batch_size": 16, "micro_batch_size": None, "lr": 3e-3, "weight_decay": 0.1,
                  "betas": [0.9, 0.95], "grad_clip": 1.0,
                  "schedule": {"name": "wsd", "warmup_steps": 2, "decay_steps": 4, "min_lr_ratio": 0.1},
                  "eval_every": 4, "eval_batches": 2, "log_every": 1, "ckpt_every": 5},
        "runtime": {"accelerator": "cpu", "devices": 1, "strategy": "auto", "precision": "32-true",
                    "compile": False, "num_threads": None, "deterministic": True, "progress": False,
                    "wandb": {"enabled": False, "project": None}},
    }
    cfg["train"].update(train_overrides)
    return cfg


def with_changes(cfg: dict, **dotted) -> dict:
    """Copy of cfg with dotted keys set, e.g. with_changes(cfg, **{"train.lr": 1e-3})."""
    cfg = copy.deepcopy(cfg)
    for key, value in dotted.items():
        *parents, last = key.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        node[last] = value
    return cfg


def synthetic_data(n: int, seed: int) -> TokenDataset:
    """Arithmetic progressions mod (VOCAB - 1), shifted past eos=0: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    start, stride = rng.integers(0, VOCAB - 1, n), rng.integers(1, 4, n)
    rows = (start[:, None] + stride[:, None] * np.arange(SEQ)[None]) % (VOCAB - 1) + 1
    return TokenDataset.from_rows(rows.tolist(), [PROMPT] * n)


def train_val() -> tuple[TokenDataset, TokenDataset]:
    return synthetic_data(256, 0), synthetic_data(64, 1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--method", default="gpt")
    ap.add_argument("--devices", type=int, default=2)
    ap.add_argument("--stop-after", type=int, default=None)
    args = ap.parse_args()

    import nextlat.training.trainer as trainer

    built = []
    real_build = trainer.build_objective

    def capture(*a, **kw):  # keep this rank's objective to dump its final weights
        built.append(real_build(*a, **kw))
        return built[-1]

    trainer.build_objective = capture
    cfg = with_changes(tiny_cfg(args.method), **{"model.dropout": 0.0, "runtime.strategy": "ddp",
                                                 "runtime.devices": args.devices})
    train, val = train_val()
    trainer.train_run(cfg, train, val, args.out, stop_after=args.stop_after)
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    torch.save({k: v.detach().cpu() for k, v in built[0].state_dict().items()}, Path(args.out) / f"rank{rank}.pt")
