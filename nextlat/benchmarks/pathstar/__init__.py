"""Path-Star (paper Figure 6): find the path from the centre of a star graph to a leaf.

Files: ``data.py`` (graphs, tokenizer, dataset), ``evaluate.py`` (solve rates),
``report.py`` (``fig6``), ``paper.py`` (the paper's outcomes), ``schema.yaml``.
"""
from __future__ import annotations

from .. import register
from ..base import Benchmark


@register
class PathStar(Benchmark):
    name = "pathstar"
    title = "Path-Star"
    reports = ("fig6",)
    claim_frame = "report:claim_frame"
    # solved, and why not: which arm at the first decision (the step that needs planning) and
    # the rest of the path given the right arm (teacher-forced; added by report.claim_frame)
    study_metrics = ("solve_rate/greedy", "first_decision/teacher_forced", "after_first/teacher_forced")

    def task_vars(self, task: str) -> dict[str, int]:
        from .data import parse_task

        d, l = parse_task(task)
        return {"d": d, "l": l}

    def model_fields(self, bench_cfg: dict, task: str) -> dict:
        from . import data

        d, l = data.parse_task(task)
        n = bench_cfg["data"]["n_nodes"]
        return {"vocab_size": data.vocab_size(n), "eos_id": data.eos_id(n), "block_size": data.seq_len(d, l)}
