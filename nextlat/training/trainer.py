"""One training run with Lightning Fabric: resumable, device-count independent.

The maths of a step depends only on the config, never on ``runtime``: step ``s`` uses the
global batch :func:`step_indices` ``(data, s, batch_size, seed)`` (seeded epochs, or the
dataset's own seeded sampler); each rank takes a contiguous
shard, splits it into micro-batches and accumulates gradients, with losses scaled so the
final gradient is that of the mean micro-batch loss over the whole global batch (DDP
averages over ranks, we average over a rank's micro-batches). Resuming restores model,
optimizer, scheduler, RNG and step, so an interrupted run ends bit-identical to one that
never stopped.
"""
from __future__ import annotations

import csv
import logging
import os
import sys
import warnings
from pathlib import Path

import torch
import yaml
from lightning.fabric import Fabric
from lightning.fabric.loggers import CSVLogger
from tqdm.auto import tqdm

from ..data.dataset import Dataset, batch_indices, step_indices
from ..io import write_text
from ..objectives import build_objective
from .checkpoint import (CheckpointError, CheckpointMismatchError, check_identity, config_fingerprint,
                         load_checkpoint, save_checkpoint)
from .batching import per_device_batch
from .schedules import lr_lambda

log = logging.getLogger(__name__)
ON_STALE = ("error", "restart")


def _optimizer(objective: torch.nn.Module, train: dict) -> torch.optim.AdamW:
    # Decay matrices (linear weights, embeddings) only; norms' gains and biases stay free.
    params = [p for p in objective.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": float(train["weight_decay"])},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=float(train["lr"]), betas=tuple(train.get("betas", (0.9, 0.95))))


def _loggers(cfg: dict, out_dir: Path) -> list:
    # Flushed by hand at each checkpoint, so metrics.csv never runs ahead of last.ckpt.
    loggers = [CSVLogger(out_dir, name="", version="", flush_logs_every_n_steps=10**9)]
    wandb_cfg = cfg.get("runtime", {}).get("wandb") or {}
    if wandb_cfg.get("enabled"):
        try:
            from lightning.pytorch.loggers import WandbLogger
        except ImportError as e:
            raise ImportError("runtime.wandb.enabled is true but wandb is not installed "
                              "(pip install wandb -c constraints.txt)") from e
        loggers.append(WandbLogger(project=wandb_cfg.get("project"), name=cfg.get("run_id"),
                                   save_dir=str(out_dir), config=cfg))
    return loggers


def _open_csv(csv_logger: CSVLogger, out_dir: Path, resume_step: int) -> None:
    """Create the CSV writer (rank 0), keeping logged rows up to ``resume_step``.

    CSVLogger deletes an existing metrics.csv when it starts; a resumed run should read as
    one run, so the rows the checkpoint covers are re-logged.
    """
    metrics, old = out_dir / "metrics.csv", []
    if resume_step and metrics.is_file():
        with open(metrics, newline="") as f:
            old = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
    with warnings.catch_warnings():  # "log dir not empty": expected, it holds checkpoints
        warnings.simplefilter("ignore")
        csv_logger.experiment  # noqa: B018  (creates the writer now)
    for row in old:
        step = int(row.pop("step"))
        csv_logger.log_metrics({k: float(v) for k, v in row.items() if v != ""}, step=step)


def _resume_state(ckpt_dir: Path, cfg: dict, on_stale: str, identity: dict) -> tuple[dict | None, bool]:
    """(state to resume from or None, whether old checkpoints are stale and must go).

    A checkpoint is resumed only if it was written by the same config (fingerprint) AND the
    same training data and code (``identity``): otherwise its weights are not this run's."""
    last = ckpt_dir / "last.ckpt"
    if not last.exists():
        return None, False
    try:
        state = load_checkpoint(last, cfg)
        check_identity(last, state, identity)
        return state, False
    except CheckpointError as e:  # includes CheckpointMismatchError
        if on_stale == "error":
            raise type(e)(f"{e}\nTo proceed: rerun with --on-stale restart (CLI; on_stale='restart' in "
                          f"Python) to move the old checkpoints aside (*.stale) and train from scratch, "
                          f"or delete {ckpt_dir}.",
                          *([e.diffs] if isinstance(e, CheckpointMismatchError) else [])) from e
        log.warning("%s\nRestarting training from step 0; old checkpoints get a .stale suffix.", e)
        return None, True


def _move_stale(out_dir: Path) -> None:
    for f in [*(out_dir / "checkpoints").glob("*.ckpt"), out_dir / "model.pt", out_dir / "metrics.csv"]:
        if f.exists():
            os.replace(f, f.with_name(f.name + ".stale"))


def train_run(cfg: dict, train_data: Dataset, val_data: Dataset, out_dir: str | Path,
              on_stale: str = "error", stop_after: int | None = None, code: str | None = None) -> Path | None:
    """Train (or resume) the run ``cfg``; return the path of ``out_dir/model.pt``.

    The run's identity is its config fingerprint, the fingerprints of its training and
    validation data and ``code`` (a hash of the code that defines its weights, computed by the
    caller): a checkpoint with another identity is never resumed (``on_stale``).

    ``train_data`` and ``val_data`` are any :class:`~nextlat.data.dataset.Dataset` (a length
    and ``batch(indices)``): in-memory rows or memory-mapped shards alike.

    ``stop_after=k`` stops after k optimizer steps of this call, leaving ``last.ckpt``
    but no ``model.pt`` (returns None), as a time-limited job would.
    """
    if on_stale not in ON_STALE:
        raise ValueError(f"on_stale={on_stale!r}; expected one of {ON_STALE}")
    out_dir, rt, train = Path(out_dir), cfg.get("runtime", {}), cfg["train"]
    ckpt_dir = out_dir / "checkpoints"
    if rt.get("num_threads"):
        torch.set_num_threads(int(rt["num_threads"]))
    loggers = _loggers(cfg, out_dir)
    fabric = Fabric(accelerator=rt.get("accelerator", "auto"), devices=rt.get("devices", 1),
                    strategy=rt.get("strategy", "auto"), precision=rt.get("precision", "32-true"),
                    loggers=loggers)
    fabric.launch()
    if rt.get("deterministic"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # Strict on CPU; GPU attention kernels have no deterministic backward, so only warn there.
        torch.use_deterministic_algorithms(True, warn_only=fabric.device.type != "cpu")
    local_bs, micro = per_device_batch(train, fabric.world_size)
    global_bs, seed = int(train["batch_size"]), int(cfg["seed"])
    for name, data in (("train", train_data), ("val", val_data)):
        if len(data) < global_bs:
            raise ValueError(f"{name} set has {len(data)} rows, fewer than train.batch_size={global_bs}")
    total_steps = int(train["steps"])

    fingerprint = config_fingerprint(cfg)
    identity = {"train_data": train_data.fingerprint(), "val_data": val_data.fingerprint(), "code": code}
    state, stale = _resume_state(ckpt_dir, cfg, on_stale, identity)  # every rank reads; only rank 0 renames
    fabric.barrier()
    if stale and fabric.is_global_zero:
        _move_stale(out_dir)
    if fabric.is_global_zero:  # only now: a refused run must not rewrite the config of its model.pt
        write_text(out_dir / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
    fabric.barrier()
    step = state["step"] if state else 0

    fabric.seed_everything(seed, verbose=False)  # same init on every rank
    objective = build_objective(cfg["model"], cfg["method"])
    optimizer = _optimizer(objective, train)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(train.get("schedule"), total_steps))
    module = torch.compile(objective) if rt.get("compile") else objective
    model, optimizer = fabric.setup(module, optimizer)
    best_val = float("inf")
    if state:  # after setup so optimizer state lands on the training device
        objective.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        if torch.cuda.is_available() and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        best_val = state["best_val"]
        fabric.print(f"resumed {out_dir} at step {step}/{total_steps}")

    if fabric.is_global_zero:
        _open_csv(loggers[0], out_dir, step)
    rank_rows = slice(fabric.global_rank * local_bs, (fabric.global_rank + 1) * local_bs)
    n_micro = local_bs // micro

    def run_batch(data: Dataset, idx, train_mode: bool) -> dict[str, torch.Tensor]:
        """Forward (and backward when training) this rank's shard; mean loss/metrics over ranks."""
        idx = idx[rank_rows]
        sums: dict[str, torch.Tensor] = {}
        for i in range(n_micro):
            batch = data.batch(idx[i * micro:(i + 1) * micro]).to(fabric.device)
            with fabric.no_backward_sync(model, enabled=train_mode and i < n_micro - 1):
                out = model(batch)
                if train_mode:
                    fabric.backward(out.loss / n_micro)
            for k, v in {"loss": out.loss, **out.metrics}.items():
                sums[k] = sums.get(k, 0.0) + v.detach().float() / n_micro
        return fabric.all_reduce(sums, reduce_op="mean")

    def checkpoint(path: Path) -> None:
        if fabric.is_global_zero:
            rng = {"torch": torch.get_rng_state(),
                   "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
            save_checkpoint(path, {"model": objective.state_dict(), "optimizer": optimizer.state_dict(),
                                   "scheduler": scheduler.state_dict(), "step": step, "best_val": best_val,
                                   "rng": rng, "fingerprint": fingerprint, "config": cfg,
                                   "identity": identity})
            for lg in loggers:  # keep metrics.csv in step with the checkpoint
                lg.save()

    log_every, eval_every = int(train.get("log_every") or 1), int(train.get("eval_every") or 0)
    ckpt_every = int(train.get("ckpt_every") or 0)
    # In a log file (no TTY) a redraw every 30 s is enough; on a terminal, update live.
    bar = tqdm(total=total_steps, initial=step, disable=not (rt.get("progress") and fabric.is_global_zero),
               desc=cfg.get("run_id", "train"), mininterval=0.1 if sys.stderr.isatty() else 30)
    steps_now = 0
    while step < total_steps and (stop_after is None or steps_now < stop_after):
        model.train()
        lr = optimizer.param_groups[0]["lr"]
        stats = run_batch(train_data, step_indices(train_data, step, global_bs, seed), train_mode=True)
        if train.get("grad_clip"):
            stats["grad_norm"] = fabric.clip_gradients(model, optimizer, max_norm=float(train["grad_clip"]))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        step, steps_now = step + 1, steps_now + 1
        bar.update(1)

        if step % log_every == 0 or step == total_steps:
            fabric.log_dict({"lr": lr, **{f"train/{k}": v for k, v in stats.items()}}, step=step)
            bar.set_postfix(loss=f"{stats['loss'].item():.4f}")
        if (eval_every and step % eval_every == 0) or step == total_steps:
            model.eval()
            with torch.no_grad():
                vals = [run_batch(val_data, batch_indices(i, global_bs, len(val_data), seed), False)
                        for i in range(int(train.get("eval_batches") or 1))]
            val = {k: torch.stack([v[k] for v in vals]).mean() for k in vals[0]}
            fabric.log_dict({f"val/{k}": v for k, v in val.items()}, step=step)
            if val["loss"].item() < best_val:
                best_val = val["loss"].item()
                checkpoint(ckpt_dir / "best.ckpt")
        if (ckpt_every and step % ckpt_every == 0) or step == total_steps or steps_now == stop_after:
            checkpoint(ckpt_dir / "last.ckpt")
    bar.close()

    if step < total_steps:  # interrupted on purpose (stop_after)
        fabric.barrier()
        return None
    final = out_dir / "model.pt"
    if fabric.is_global_zero:
        save_checkpoint(final, {"model": objective.state_dict(), "config": cfg, "fingerprint": fingerprint,
                                "identity": identity, "param_counts": objective.param_counts(), "step": step})
        for lg in loggers:
            lg.finalize("success")
    fabric.barrier()
    return final
