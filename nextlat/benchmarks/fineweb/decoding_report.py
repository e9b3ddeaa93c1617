"""FineWeb-Edu self-speculative decoding: Table 3 (each model's best draft length per domain,
and each adaptive policy, beside the paper's numbers), Table 7 (every draft length and policy,
with the acceptance rate by draft position) and the draft-length figure, through the shared
report (:mod:`nextlat.report.speculative`) with the paper's numbers from :mod:`.paper`."""
from __future__ import annotations

from ...report import speculative as report
from .paper import DOMAIN_LABELS, PAPER_TABLE3

PAPER_SETTING = "1.3B models, 1024 prompts x 512 tokens, one B200"


def table3(inputs: dict, outputs: dict, params: dict) -> None:
    report.summary_table(inputs, outputs, PAPER_TABLE3, DOMAIN_LABELS, PAPER_SETTING)


def table7(inputs: dict, outputs: dict, params: dict) -> None:
    report.full_table(inputs, outputs, PAPER_TABLE3, DOMAIN_LABELS, PAPER_SETTING)


def fig_draft_length(inputs: dict, outputs: dict, params: dict) -> None:
    report.draft_length_figure(inputs, outputs, PAPER_TABLE3, "FineWeb-Edu, self-speculative decoding")
