"""Countdown per-equation validity (paper Figure 5).

For each method setting, the fraction of test problems whose generated equation j
(j = 1, 2, 3) is arithmetically valid (LHS = RHS), mean over seeds with a std band.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..tables import method_label, method_rank, records_frame
from .style import method_color, plt, save

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


__all__ = ["plot_countdown_validity"]
