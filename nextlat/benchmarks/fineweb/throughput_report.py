"""FineWeb-Edu training throughput: Table 4 (parameters and training steps/s of every method
on the benchmark's model, beside the paper's 1.3B numbers), through the shared report
(:mod:`nextlat.report.throughput`)."""
from __future__ import annotations

from ...report import throughput as report
from .paper import PAPER_TABLE4, PAPER_TABLE4_SETTING


def table4(inputs: dict, outputs: dict, params: dict) -> None:
    report.throughput_table(inputs, outputs, PAPER_TABLE4, PAPER_TABLE4_SETTING)
