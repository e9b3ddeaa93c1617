"""Path-Star report: Figure 6 (solve rates per graph and method) and its table.

One panel per graph, smallest first; a bar per method (mean over seeds) with a std error bar,
one dot per seed, and a dashed line at chance level (1 / degree: guessing the arm).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ...report.style import method_color, plt, save
from ...report.tables import (HORIZON_METHODS, load_records, method_label, method_rank, records_frame, summarize,
                              write_table)
from .data import parse_task
from .paper import PAPER_PATHSTAR

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




# --- table ------------------------------------------------------------------------------
def graph_label(task: str) -> str:
    degree, length = parse_task(task)
    return f"G({degree},{length})"


def graph_size(task: str) -> tuple[int, int, int]:
    """Sort key: number of nodes 1 + d(l-1), then degree, then length."""
    degree, length = parse_task(task)
    return (1 + degree * (length - 1), degree, length)


def paper_pathstar(task: str, method: str, horizon) -> str:
    degree, length = parse_task(task)
    text = PAPER_PATHSTAR.get(method, {}).get((degree, length), "—")
    paper_d = length - 2
    other_horizon = not pd.isna(horizon) and int(horizon) != paper_d
    if text != "—" and method in HORIZON_METHODS and other_horizon:
        text += f" [paper d={paper_d}]"  # the paper's outcome is for a different horizon
    return text


def pathstar_table(records: Iterable[dict]) -> pd.DataFrame:
    """One row per (graph, method[ d=h]), graphs by size and methods in METHOD_ORDER.

    Numeric columns (CSV friendly): greedy/sample solve-rate mean and std over seeds,
    seeds, chance level, params; plus the paper's reported outcome as text.
    """
    df = with_decisions(records_frame(records))
    df = df[df["benchmark"] == "pathstar"]
    keys = ["task", "method", "horizon"]
    greedy = summarize(df, "solve_rate/greedy", keys).rename(
        columns={"mean": "solve_greedy_mean", "std": "solve_greedy_std", "n": "seeds"})
    sample = summarize(df, "solve_rate/sample", keys).rename(
        columns={"mean": "solve_sample_mean", "std": "solve_sample_std"}).drop(columns="n")
    for metric, name in ((FIRST, "first_decision"), (REST, "after_first")):
        part = summarize(df, metric, keys).rename(columns={"mean": f"{name}_mean", "std": f"{name}_std"})
        sample = sample.merge(part.drop(columns="n"), on=keys)
    extra = df.groupby(keys, dropna=False, sort=False).agg(
        chance=("chance_solve_rate", "mean"),
        params_training=("params/training", "first"),  # identical across seeds
        params_inference=("params/inference", "first"),
    ).reset_index()
    table = greedy.merge(sample, on=keys).merge(extra, on=keys)
    table = sort_settings(table)

    rows = list(zip(table["task"], table["method"], table["horizon"]))
    table["graph"] = table["task"].map(graph_label)
    table["paper"] = [paper_pathstar(t, m, h) for t, m, h in rows]
    # "nextlat d=3" becomes the shown method; raw name and horizon stay at the end for joins.
    table["method_name"] = table["method"]
    table["method"] = [method_label(m, h) for _, m, h in rows]
    cols = ["graph", "method", "solve_greedy_mean", "solve_greedy_std", "solve_sample_mean",
            "solve_sample_std", "first_decision_mean", "first_decision_std", "after_first_mean",
            "after_first_std", "seeds", "chance", "params_training", "params_inference",
            "paper", "task", "method_name", "horizon"]
    return table[cols]


# Teacher-forced accuracy at the first path position after the source (which arm: the one
# decision that needs planning) and over the positions after it (each the unique successor of
# the previous node in the edge list: the Clever-Hans shortcut learns these, and a model that
# has only these solves 1/degree of the graphs).
FIRST, REST = "first_decision/teacher_forced", "after_first/teacher_forced"


def with_decisions(df: pd.DataFrame) -> pd.DataFrame:
    """Adds FIRST and REST from each record's ``position_acc/teacher_forced`` (position 0 is
    the source, copied from the prompt)."""
    col = "position_acc/teacher_forced"
    acc = df[col] if col in df.columns else pd.Series([None] * len(df), index=df.index)
    df = df.copy()
    df[FIRST] = [a[1] if isinstance(a, list) and len(a) > 1 else np.nan for a in acc]
    df[REST] = [float(np.mean(a[2:])) if isinstance(a, list) and len(a) > 2 else np.nan for a in acc]
    return df


def sort_settings(table: pd.DataFrame) -> pd.DataFrame:
    """Graphs by size, then methods in METHOD_ORDER, then horizon (none first)."""
    def key(i: int):
        horizon = table["horizon"].iat[i]
        return (graph_size(table["task"].iat[i]), method_rank(table["method"].iat[i]),
                -1 if pd.isna(horizon) else int(horizon))
    return table.iloc[sorted(range(len(table)), key=key)].reset_index(drop=True)




# --- report targets -----------------------------------------------------------------------
def fig6(inputs: dict, outputs: dict, params: dict) -> None:
    """Figure 6 (PNG, PDF) and its table (CSV, Markdown) from the runs' eval records."""
    records = load_records(inputs["evals"])
    plot_pathstar(records, outputs["png"], outputs["pdf"])
    write_table(pathstar_table(records), outputs["csv"], outputs["md"])


def claim_frame(inputs: dict) -> pd.DataFrame:
    """The values the claims (paper.CLAIMS) read: one row per run, plus ``largest`` (the run's
    graph is the largest this scale runs)."""
    df = records_frame(load_records(inputs.get("evals") or []))
    if df.empty:
        return df
    df = with_decisions(df)
    largest = max(df["task"].unique(), key=graph_size)
    df["largest"] = df["task"] == largest
    return df
