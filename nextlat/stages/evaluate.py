"""The evaluation stage: score a trained model on its benchmark's held-out data."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from .. import benchmarks
from ..io import write_json

log = logging.getLogger(__name__)


def model_device(runtime: dict, device: str | None = None) -> str:
    """Set the CPU threads of ``runtime`` and pick the device a trained model is scored on:
    ``device`` if given, else CUDA when the accelerator allows it and one is present."""
    import torch

    if runtime.get("num_threads"):
        torch.set_num_threads(int(runtime["num_threads"]))
    if device is None:
        wants_gpu = runtime.get("accelerator", "auto") in ("auto", "gpu", "cuda")
        device = "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"
    return device


def run_labels(run_cfg: dict) -> dict:
    """What identifies a run in the records reports read (eval.json, probes.json); a run of a
    sweep adds its ``variant`` and its value on each axis (``sweep/<axis>``)."""
    labels = ({k: run_cfg.get(k) for k in ("run_id", "benchmark", "task", "seed")}
              | {"method": run_cfg["method"]["name"], "horizon": run_cfg["method"].get("horizon")})
    if run_cfg.get("variant"):
        labels |= {"variant": run_cfg["variant"]} | {f"sweep/{a}": v for a, v in run_cfg["sweep"].items()}
    return labels


def evaluate(run_cfg: dict, model_path: str | Path, data_dir: str | Path, eval_cfg: dict,
             out_json: str | Path, device: str | None = None) -> dict:
    """Evaluate ``model_path`` and write the run's record (``eval.json``) last, atomically."""
    from ..training.checkpoint import load_model

    device = model_device(run_cfg.get("runtime", {}), device)
    start = time.perf_counter()
    model = load_model(model_path, expected_cfg=run_cfg, device=device)
    log.info("evaluating %s (%s) on %s, device %s", model_path, run_cfg["run_id"], data_dir, device)
    metrics = benchmarks.get(run_cfg["benchmark"]).evaluate(model, Path(data_dir), eval_cfg, run_cfg["seed"],
                                                            device, out_dir=Path(out_json).parent)
    record = {"run": run_labels(run_cfg), "metrics": metrics, "params": model.param_counts()}
    write_json(out_json, record)
    log.info("wrote %s in %.1f s", out_json, time.perf_counter() - start)
    return record
