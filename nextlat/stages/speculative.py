"""The speculative-decoding stage (paper Tables 3 and 7): time plain and self-speculative
decoding of one trained run on its benchmark's prompts (:mod:`nextlat.evaluation.speculative`)
and write the run's ``speculative.json``, last and atomically."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ..io import write_json

log = logging.getLogger(__name__)


def draft_vocabulary(run_cfg: dict, data_dir: str | Path, decoding: dict):
    """The ``draft_vocab`` most frequent tokens of the first ``frequency_tokens`` tokens of the
    run's training stream (None when drafting reads the whole vocabulary)."""
    k = decoding.get("draft_vocab")
    if not k:
        return None
    from .. import benchmarks
    from ..decoding.drafters import frequent_tokens

    train, _ = benchmarks.get(run_cfg["benchmark"]).load_train(Path(data_dir))
    if not hasattr(train, "stream"):
        raise ValueError(f"speculative.decoding.draft_vocab: the {run_cfg['benchmark']} training data is not a "
                         "token stream; set draft_vocab: null")
    n = min(int(decoding.get("frequency_tokens", 10_000_000)), train.n_tokens)
    vocab = frequent_tokens(train.stream(0, n), int(k), int(run_cfg["model"]["vocab_size"]))
    log.info("draft vocabulary: the %d most frequent of %d ids in %d training tokens of %s", len(vocab),
             run_cfg["model"]["vocab_size"], n, data_dir)
    return vocab


def speculative(run_cfg: dict, model_path: str | Path, prompts_json: str | Path, data_dir: str | Path,
                decoding: dict, out_json: str | Path, device: str | None = None, threads: int | None = None) -> dict:
    """``threads``: CPU threads for the timed decoding (the job's own; default: the runtime's)."""
    import torch

    from ..evaluation.speculative import measure
    from ..training.checkpoint import load_model
    from .evaluate import model_device, run_labels

    device = model_device(run_cfg.get("runtime", {}), device)
    if threads:  # timings are only comparable when the job keeps to the cores it was given
        torch.set_num_threads(int(threads))
    start = time.perf_counter()
    model = load_model(model_path, expected_cfg=run_cfg, device=device)
    record = json.loads(Path(prompts_json).read_text())
    prompts = {d: v["prompts"] for d, v in record["domains"].items()}
    log.info("speculative decoding of %s (%s) from %s: %s prompts of %d tokens, %d new tokens, device %s, "
             "%d threads", run_cfg["run_id"], run_cfg["method"]["name"], model_path,
             {d: len(p) for d, p in prompts.items()}, record["prompt_tokens"], decoding["new_tokens"], device,
             torch.get_num_threads())
    vocab = draft_vocabulary(run_cfg, data_dir, decoding)
    result = measure(model, prompts, decoding, seed=int(run_cfg["seed"]), device=device, vocab=vocab)
    from ..decoding.drafters import self_drafter

    run = run_labels(run_cfg)
    run["horizon"] = run["horizon"] or model.settings.horizon  # the method's default when not configured
    out = {"run": run, "device": str(device), "threads": torch.get_num_threads(),
           "max_draft": self_drafter(model).max_draft,
           "decoding": decoding, "prompt_tokens": record["prompt_tokens"],
           "draft_vocab": None if vocab is None else len(vocab),
           "sources": {d: v["source"] for d, v in record["domains"].items()}, "domains": result}
    write_json(out_json, out)
    log.info("wrote %s in %.1f s", out_json, time.perf_counter() - start)
    return out
