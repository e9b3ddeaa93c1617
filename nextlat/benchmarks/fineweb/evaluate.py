"""FineWeb-Edu evaluation of one run: held-out loss and the paper's zero-shot harness tasks.

* ``fineweb_ce`` / ``fineweb_ppl`` / ``fineweb_tokens``: mean next-token cross-entropy over
  the first ``val_blocks`` validation blocks (all when null), packed with
  document-restricted attention as in training;
* the harness tasks of ``eval_cfg["harness"]`` (``source``: ``local`` files written into
  ``out_dir/harness_tasks`` or the ``hub``; ``tasks``; ``limit`` docs per task, the same
  subset for every run; ``max_gen_toks``), scored by the LM Evaluation Harness through
  :class:`~nextlat.evaluation.harness.ObjectiveLM` over the GPT-2 tokenizer, as flat
  metrics (:func:`.tasks.extract`). The harness's results are saved in full as
  ``out_dir/harness_results.json``, with what could not be run and why.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from ...evaluation.harness import ObjectiveLM, run_tasks
from ...evaluation.heldout import heldout_loss
from ...io import write_json
from ...objectives.base import Objective
from . import gpt2, tasks
from .data import load_split

log = logging.getLogger(__name__)
SUBSET_SEED = 0  # fixed, not the run's seed: every run is scored on the same docs


def evaluate(objective: Objective, data_dir: Path, eval_cfg: dict, seed: int, device, out_dir: Path) -> dict:
    out_dir = Path(out_dir)
    if objective.model_cfg.vocab_size < gpt2.VOCAB_SIZE:
        raise ValueError(f"model.vocab_size {objective.model_cfg.vocab_size} is smaller than GPT-2's "
                         f"{gpt2.VOCAB_SIZE}: FineWeb-Edu is tokenized with GPT-2")
    start = time.perf_counter()
    val = load_split(data_dir, "validation")
    log.info("FineWeb-Edu validation from %s: %s", data_dir, val)
    loss = heldout_loss(objective, val, eval_cfg["val_blocks"], eval_cfg["batch_size"], device)
    metrics = {"fineweb_ce": loss["val_ce"], "fineweb_ppl": loss["val_ppl"], "fineweb_tokens": loss["val_tokens"]}
    log.info("held-out loss %.4f over %d tokens (%d blocks) in %.1fs", loss["val_ce"], loss["val_tokens"],
             loss["val_blocks"], time.perf_counter() - start)

    cfg = eval_cfg["harness"]
    start = time.perf_counter()
    prepared = tasks.prepare(cfg["tasks"], cfg["source"], out_dir / "harness_tasks", cfg.get("limit"),
                             seed=SUBSET_SEED)
    log.info("harness tasks (%s): %s prepared in %.1fs", cfg["source"], prepared.harness_names,
             time.perf_counter() - start)
    for task, note in prepared.notes.items():
        log.info("  %s: %s", task, note)
    for task, reason in prepared.missing.items():
        log.warning("harness task %s not run: %s", task, reason)

    results: dict = {"results": {}, "n-samples": {}}
    if prepared.harness_names:
        # A training row is block_size tokens: the model reads block_size - 1 and was never
        # trained at a later position, so no harness input is longer than that.
        lm = ObjectiveLM(objective, gpt2.encode, gpt2.decode, gpt2.EOT_ID, device=device,
                         batch_size=eval_cfg["batch_size"], max_length=objective.model_cfg.block_size - 1,
                         max_gen_toks=cfg.get("max_gen_toks", 256),
                         seed=seed)  # only sampled generation draws from it
        start = time.perf_counter()
        results = run_tasks(lm, list(prepared.harness_names.values()), prepared.include_path, prepared.limit)
        log.info("harness ran in %.1fs", time.perf_counter() - start)
        for kind, n in lm.requests.items():
            log.info("  %d %s requests in %.1fs", n, kind, lm.seconds[kind])
    write_json(out_dir / "harness_results.json",
               {**results, "source": cfg["source"], "harness_names": prepared.harness_names,
                "notes": prepared.notes, "missing": prepared.missing})
    metrics.update(tasks.extract(results, prepared))
    # what was scored (the tables say it: offline SciQ is the validation split, hub tasks the harness's own)
    metrics["harness_source"] = cfg["source"]
    metrics["task_notes"] = [f"{t}: {note}" for t, note in prepared.notes.items()]
    return metrics
