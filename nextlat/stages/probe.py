"""The probe stage (paper F.4): freeze a trained run and train linear probes on its probe
state, probe k reading the token k steps ahead (:mod:`nextlat.evaluation.probes`). Runs for
the benchmarks whose spec sets ``probes`` (their config block has a ``probe:`` section); it
trains on the run's own training data and scores on its validation split."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from .. import benchmarks
from ..io import write_json

log = logging.getLogger(__name__)


def probe(run_cfg: dict, model_path: str | Path, data_dir: str | Path, probe_cfg: dict,
          out_json: str | Path, out_csv: str | Path, device: str | None = None) -> dict:
    """Write ``probes.json`` (held-out probe CE per offset, last and atomically) and the
    training curve ``probes.csv`` of one run."""
    from ..evaluation.probes import ProbeSettings, train_probes
    from ..training.checkpoint import load_model
    from .evaluate import model_device, run_labels

    device = model_device(run_cfg.get("runtime", {}), device)
    start = time.perf_counter()
    model = load_model(model_path, expected_cfg=run_cfg, device=device)
    train, val = benchmarks.get(run_cfg["benchmark"]).load_train(Path(data_dir))
    settings = ProbeSettings.from_dict({**probe_cfg, "seed": int(run_cfg["seed"])})
    method = run_cfg["method"]
    log.info("probing %s (%s) from %s: %d offsets, %d steps of %d rows, device %s", run_cfg["run_id"],
             method["name"], model_path, settings.offsets, settings.steps, settings.batch_size, device)
    result = train_probes(model, train, val, settings, eos_id=run_cfg["model"]["eos_id"], device=device,
                          log_csv=out_csv)
    record = {"run": run_labels(run_cfg), "method": method, "probes": result.to_record()}
    write_json(out_json, record)
    log.info("wrote %s and %s in %.1f s", out_json, out_csv, time.perf_counter() - start)
    return record
