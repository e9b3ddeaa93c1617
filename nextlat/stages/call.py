"""A benchmark's own stage, called by name: ``call_stage(benchmark, "report:table1", ...)``.

Report targets and extra evaluations are functions ``fn(inputs, outputs, params)`` in the
benchmark's slice; the workflow reaches them through this one entry point (the thin script
``workflow_scripts/stage.py``), with Snakemake's named inputs, outputs and params as dicts.
"""
from __future__ import annotations

import logging
import time

from .. import benchmarks

log = logging.getLogger(__name__)


def _as_dict(named) -> dict:
    """Snakemake's Namedlist (or a dict) -> {name: value}; unnamed entries stay in order."""
    if isinstance(named, dict):
        return dict(named)
    out = dict(named.items())
    return out or {i: v for i, v in enumerate(named)}


def call_stage(benchmark: str, stage: str, inputs, outputs, params) -> object:
    fn = benchmarks.get(benchmark).stage(stage)
    ins, outs, pars = _as_dict(inputs), _as_dict(outputs), _as_dict(params)
    pars.pop("benchmark", None), pars.pop("stage", None)
    start = time.perf_counter()
    log.info("%s %s: reading %d input file(s)", benchmark, stage,
             sum(len(v) if isinstance(v, list) else 1 for v in ins.values()))
    result = fn(ins, outs, pars)
    log.info("%s %s: wrote %s in %.1f s", benchmark, stage, sorted(map(str, outs.values()))[:8],
             time.perf_counter() - start)
    return result
