"""Countdown (paper Figures 4 and 5): reach a target number from four inputs with + - * /.

Files: ``data.py`` (Stream-of-Search generator, tokenizer, dataset), ``evaluate.py``
(strict and paper checkers), ``report.py`` (``fig4``, ``fig5``), ``paper.py``, ``schema.yaml``.
"""
from __future__ import annotations

from .. import register
from ..base import Benchmark, Resources


@register
class Countdown(Benchmark):
    name = "countdown"
    title = "Countdown"
    reports = ("fig4", "fig5")
    data_resources = Resources(threads=2, mem_mb=2000, runtime_min=30)  # parallel generator

    def model_fields(self, bench_cfg: dict, task: str) -> dict:
        from . import data as cd

        data = bench_cfg["data"]
        cd.parse_task(task)
        return {"vocab_size": cd.vocab_size(data["max_number"]), "eos_id": cd.eos_id(data["max_number"]),
                "block_size": cd.seq_len(data["n_pause"])}
