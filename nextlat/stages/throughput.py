"""The throughput stage (paper Table 4): training steps/s of a benchmark's methods on its
model, timed in one process on the device its runs use, with parameters and FLOPs per step
(:mod:`nextlat.training.throughput`). A benchmark opts in with a ``throughput:`` block
(``enabled``, ``rows``, ``rounds``, ``steps``, ``warmup``, ``methods``); the generic
``throughput`` rule runs this once per such benchmark."""
from __future__ import annotations

import logging
import platform
import time
from pathlib import Path

from ..config import ConfigError
from ..io import write_json

log = logging.getLogger(__name__)


RUN_KEYS = ("name", "horizon", "grid", "tasks")  # a run-matrix entry's keys that are not method settings


def resolve_methods(bench_cfg: dict) -> list[dict]:
    """``throughput.methods`` with each method's settings filled in from the benchmark's own
    ``methods`` entry of the same name (its p_psi width, loss weights, ...), so that a row
    times the model the runs train; the throughput entry's own keys (horizon, ...) win."""
    trained = {}
    for entry in bench_cfg.get("methods", []):
        trained.setdefault(entry["name"], {k: v for k, v in entry.items() if k not in RUN_KEYS})
    return [{**trained.get(m["name"], {}), **m} for m in bench_cfg["throughput"]["methods"]]


def check_throughput(benchmark: str, bench_cfg: dict, row_len: int) -> None:
    """Plan-time check of a ``throughput:`` block: every method known, its settings valid and
    its horizon within rows of ``row_len`` tokens, each listed once, GPT among them."""
    from ..objectives.base import available, settings_of
    from ..training.throughput import method_label

    where, labels = f"benchmarks.{benchmark}.throughput.methods", []
    for i, method in enumerate(resolve_methods(bench_cfg)):
        name = method["name"]
        if name not in available():
            raise ConfigError(f"{where}[{i}].name={name!r} is not a method; available: {available()}")
        try:
            settings = settings_of(name).from_method(method, name)
        except ValueError as err:
            raise ConfigError(f"{where}[{i}]: {err}") from None
        problem = settings.row_problem(row_len)
        if problem:
            raise ConfigError(f"{where}[{i}] ({name}): {problem}")
        labels.append(method_label(method))
    if len(set(labels)) != len(labels):
        raise ConfigError(f"{where} lists a method twice: {labels}")
    if "gpt" not in labels:
        raise ConfigError(f"{where} must include {{name: gpt}}: every ratio is to GPT's steps/s")


def batch_rows(bench_cfg: dict) -> int:
    """Rows per timed step: ``throughput.rows``, else what one training forward pass takes."""
    train = bench_cfg["train"]
    return bench_cfg["throughput"].get("rows") or train.get("micro_batch_size") or train["batch_size"]


def throughput(model: dict, settings: dict, rows: int, runtime: dict, out_json: str | Path,
               threads: int | None = None) -> dict:
    """Time every method of ``settings["methods"]`` on ``model`` (a resolved model block) with
    batches of ``rows`` x (block_size - 1) inputs; write the rows of
    :func:`nextlat.training.throughput.throughput_rows` and the raw timings."""
    import torch

    from ..models.transformer import ModelConfig
    from ..training.throughput import measure_throughput, noisy, random_batch
    from .evaluate import model_device

    device = model_device(runtime, None)
    if threads:  # timings hold only for the cores the job was given
        torch.set_num_threads(int(threads))
    # The runs' precision: bf16-mixed autocasts on CPU too (as Fabric does); bf16-true is timed
    # as autocast, which keeps float32 master weights.
    autocast = "bf16" if "bf16" in str(runtime.get("precision", "")) else "none"
    cfg = ModelConfig.from_dict(model)
    seq_len = cfg.block_size - 1
    batch = random_batch(cfg, rows, seq_len, device)
    methods = [dict(m) for m in settings["methods"]]
    log.info("throughput of %d methods on %d layers x %d, vocabulary %d: %d rows x %d tokens, device %s, %d threads, "
             "autocast %s; %d rounds x %d steps after %d warm-up", len(methods), cfg.n_layer, cfg.n_embd,
             cfg.vocab_size, rows, seq_len, device, torch.get_num_threads(), autocast, settings["rounds"],
             settings["steps"], settings["warmup"])
    start = time.perf_counter()
    table, times = measure_throughput(cfg, methods, batch, device, autocast, settings["rounds"], settings["steps"],
                                      settings["warmup"], interleave=settings.get("interleave", True))
    busy = noisy(times)
    if busy:
        log.warning("machine busy while timing %s (median step > 1.25x the fastest): prefer the best-round ratios",
                    ", ".join(busy))
    out = {"model": model, "rows": rows, "seq_len": seq_len, "device": str(device), "threads": torch.get_num_threads(),
           "autocast": autocast, "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
           "settings": settings, "throughput": table, "raw_seconds_per_step": times, "noisy": busy}
    write_json(out_json, out)
    log.info("wrote %s in %.1f s", out_json, time.perf_counter() - start)
    return out


__all__ = ["batch_rows", "check_throughput", "resolve_methods", "throughput"]
