"""Path-Star solve rates per graph and method (paper Figure 6).

One panel per graph, smallest first; a bar per method (mean over seeds) with a std error bar,
one dot per seed, and a dashed line at chance level (1 / degree: guessing the arm).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..tables import graph_label, graph_size, method_label, method_rank, records_frame
from .style import method_color, plt, save

def _settings(df: pd.DataFrame) -> list[tuple[str, object]]:
    """(method, horizon) pairs in display order."""
    pairs = df[["method", "horizon"]].drop_duplicates().itertuples(index=False)
    return sorted(pairs, key=lambda p: (method_rank(p[0]), -1 if pd.isna(p[1]) else int(p[1])))


def _draw_panel(ax, df: pd.DataFrame, metric: str, rng: np.random.Generator) -> None:
    settings = _settings(df)
    for x, (method, horizon) in enumerate(settings):
        same_horizon = df["horizon"].isna() if pd.isna(horizon) else df["horizon"] == horizon
        values = df.loc[(df["method"] == method) & same_horizon, metric].dropna().to_numpy()
        color = method_color(method)
        std = values.std(ddof=1) if len(values) > 1 else None  # no bar for a single seed
        ax.bar(x, values.mean(), width=0.7, color=color, alpha=0.75, edgecolor=color,
               yerr=std, capsize=4, error_kw={"elinewidth": 1.2, "ecolor": "black"})
        jitter = rng.uniform(-0.15, 0.15, len(values))  # spread seeds so they don't overlap
        ax.scatter(x + jitter, values, s=14, color="black", alpha=0.7, zorder=3, clip_on=False)
    chance = df["chance_solve_rate"].mean()
    ax.axhline(chance, color="black", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(settings)))
    ax.set_xticklabels([method_label(m, h).replace(" ", "\n") for m, h in settings])
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _legend_handles(methods: list[str]) -> list:
    handles = [Patch(facecolor=method_color(m), alpha=0.75, label=m) for m in methods]
    handles.append(Line2D([], [], color="black", linestyle="--", label="chance (1/degree)"))
    handles.append(Line2D([], [], color="black", marker="o", linestyle="", markersize=4,
                          alpha=0.7, label="seed"))
    return handles


def plot_pathstar(records, png_path, pdf_path, decoding: str = "greedy") -> list[Path]:
    """Draw Figure 6 from eval records; ``decoding`` picks solve_rate/greedy or /sample."""
    df = records_frame(records)
    df = df[df["benchmark"] == "pathstar"]
    if df.empty:
        raise ValueError("no Path-Star records to plot")
    metric = f"solve_rate/{decoding}"
    tasks = sorted(df["task"].unique(), key=graph_size)

    fig, axes = plt.subplots(1, len(tasks), figsize=(1.0 + 3.2 * len(tasks), 3.6),
                             sharey=True, squeeze=False)
    rng = np.random.default_rng(0)  # fixed jitter: identical figures from identical inputs
    for ax, task in zip(axes[0], tasks):
        _draw_panel(ax, df[df["task"] == task], metric, rng)
        ax.set_title(graph_label(task))
    axes[0][0].set_ylabel(f"solve rate ({decoding})")

    methods = sorted(df["method"].unique(), key=method_rank)
    fig.legend(handles=_legend_handles(methods), loc="upper center",
               ncol=len(methods) + 2, frameon=False, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.9))  # leave the top strip for the legend

    return save(fig, png_path, pdf_path)


__all__ = ["plot_pathstar"]
