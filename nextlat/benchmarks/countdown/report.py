"""Countdown report: Figure 4 (solve rates beside the paper's) and Figure 5 (per-equation validity).

For each method setting, the fraction of test problems whose generated equation j
(j = 1, 2, 3) is arithmetically valid (LHS = RHS), mean over seeds with a std band.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ...report.style import method_color, plt, save
from ...report.tables import load_records, method_label, method_rank, records_frame, summarize, write_table
from .paper import PAPER_COUNTDOWN

HORIZON_STYLES = {None: "-", 1: "-", 4: "--", 8: ":"}


def plot_countdown_validity(records, png_path, pdf_path, decoding: str = "sample") -> list[Path]:
    df = records_frame(records)
    df = df[df["benchmark"] == "countdown"]
    metric = f"eq_valid/{decoding}"
    horizons = [None if pd.isna(h) else int(h) for h in df["horizon"]]
    settings = sorted(set(zip(df["method"], horizons)),
                      key=lambda s: (method_rank(s[0]), -1 if s[1] is None else s[1]))
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    x = np.arange(1, 4)
    for method, horizon in settings:
        rows = df[(df["method"] == method) & (df["horizon"].fillna(-1) == (horizon or -1))]
        curves = np.array([np.asarray(v, dtype=float) for v in rows[metric]])  # (seeds, 3)
        mean = curves.mean(0)
        ax.plot(x, mean, HORIZON_STYLES.get(horizon, "-."), marker="o", color=method_color(method),
                label=method_label(method, horizon))
        if len(curves) > 1:
            std = curves.std(0, ddof=1)
            ax.fill_between(x, mean - std, mean + std, color=method_color(method), alpha=0.12)
    ax.set_xticks(x, [f"eq. {j}" for j in x])
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"valid equations ({decoding})")
    ax.set_title("Countdown: per-equation validity")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save(fig, png_path, pdf_path)




# --- Figure 4 table ---------------------------------------------------------------------
def countdown_table(records: Iterable[dict]) -> pd.DataFrame:
    """One row per method[ d=h]: solve rates (strict checker; greedy and sampled; and the
    paper's lenient checker on samples), mean and std over seeds, in percent, beside the
    paper's Figure 4 accuracy."""
    df = records_frame(records)
    df = df[df["benchmark"] == "countdown"]
    keys = ["method", "horizon"]
    table = None
    for metric, name in (("solve_rate/greedy", "greedy"), ("solve_rate/sample", "sample"),
                         ("solve_rate_paper/sample", "sample_paper_checker")):
        part = summarize(df, metric, keys)
        part[["mean", "std"]] = part[["mean", "std"]] * 100
        part = part.rename(columns={"mean": f"{name}_mean", "std": f"{name}_std", "n": "seeds"})
        table = part if table is None else table.merge(part.drop(columns="seeds"), on=keys)
    params = df.groupby(keys, dropna=False, sort=False).agg(
        params_training=("params/training", "first"), params_inference=("params/inference", "first"),
    ).reset_index()
    table = table.merge(params, on=keys)
    order = sorted(range(len(table)), key=lambda i: (method_rank(table["method"].iat[i]),
                   -1 if pd.isna(table["horizon"].iat[i]) else int(table["horizon"].iat[i])))
    table = table.iloc[order].reset_index(drop=True)
    horizons = [None if pd.isna(h) else int(h) for h in table["horizon"]]
    table["paper_acc"] = [PAPER_COUNTDOWN.get((m, h), float("nan")) for m, h in zip(table["method"], horizons)]
    table["method_name"] = table["method"]
    table["method"] = [method_label(m, h) for m, h in zip(table["method_name"], horizons)]
    cols = ["method", "greedy_mean", "greedy_std", "sample_mean", "sample_std",
            "sample_paper_checker_mean", "sample_paper_checker_std", "paper_acc", "seeds",
            "params_training", "params_inference", "method_name", "horizon"]
    return table[cols]




# --- report targets -----------------------------------------------------------------------
def fig4(inputs: dict, outputs: dict, params: dict) -> None:
    write_table(countdown_table(load_records(inputs["evals"])), outputs["csv"], outputs["md"], digits=1)


def fig5(inputs: dict, outputs: dict, params: dict) -> None:
    plot_countdown_validity(load_records(inputs["evals"]), outputs["png"], outputs["pdf"])
