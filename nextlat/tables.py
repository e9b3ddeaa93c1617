"""Result tables from per-run evaluation records.

A record is the JSON an evaluation writes for one run::

    {"run": {"run_id", "benchmark", "task", "method", "horizon", "seed"},
     "metrics": {name: float or list}, "params": {"training": int, "inference": int}}

:func:`records_frame` flattens records into one row per run, :func:`summarize` aggregates
any scalar metric over seeds, and the benchmark tables (``pathstar_table``) build on them.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from .data.pathstar import parse_task

RUN_KEYS = ("run_id", "benchmark", "task", "method", "horizon", "seed")
GROUP_KEYS = ["benchmark", "task", "method", "horizon"]  # a "setting"; seeds vary inside it

# Display order of methods; methods not listed follow alphabetically.
METHOD_ORDER = ["gpt", "mtp", "jtp", "bst", "nextlat"]


# --- generic ----------------------------------------------------------------------------
def records_frame(records: Iterable[dict]) -> pd.DataFrame:
    """One row per run: run keys, then every metric under its own name, then params/*.

    List-valued metrics (per-position accuracies) stay as Python lists in object columns.
    ``horizon`` is a nullable integer so methods without one (None) group together.
    """
    rows = []
    for rec in records:
        run = rec.get("run", {})
        row = {key: run.get(key) for key in RUN_KEYS}
        row.update({k: v for k, v in run.items() if k not in row})  # keep extra run fields
        row.update(rec.get("metrics", {}))
        row.update({f"params/{k}": v for k, v in rec.get("params", {}).items()})
        rows.append(row)
    df = pd.DataFrame(rows, columns=None if rows else list(RUN_KEYS))
    df["horizon"] = df["horizon"].astype("Int64")
    return df


def summarize(df: pd.DataFrame, metric: str, by: Sequence[str] = GROUP_KEYS) -> pd.DataFrame:
    """Mean, sample std (ddof=1; NaN for a single seed) and n of ``metric`` per group.

    Runs whose metric is missing (NaN) are not counted in n.
    """
    by = list(by)
    grouped = df.groupby(by, dropna=False, sort=False)[metric]  # keep None horizons
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def method_label(method: str, horizon) -> str:
    """'nextlat', 3 -> 'nextlat d=3'; horizon None/NA -> just the method name."""
    return method if horizon is None or pd.isna(horizon) else f"{method} d={int(horizon)}"


def method_rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


# --- Path-Star (Figure 6) ---------------------------------------------------------------

# What the paper reports per graph (Figure 6 gives bars, not numbers), keyed by method then
# (degree, arm length). Graphs absent here were not run in the paper.
PAPER_PATHSTAR = {
    "nextlat": {(2, 10): "solves (~100%)", (5, 5): "solves (~100%)", (7, 7): "solves (~100%)"},
    "bst": {(2, 10): "solves", (5, 5): "solves", (7, 7): "fails"},
}
for _m in ("gpt", "mtp", "jtp"):
    PAPER_PATHSTAR[_m] = {g: "chance on >=1 graph (Fig. 6)" for g in [(2, 10), (5, 5), (7, 7)]}
HORIZON_METHODS = ("mtp", "jtp", "nextlat")  # the paper uses d = l - 2 for these


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
    df = records_frame(records)
    df = df[df["benchmark"] == "pathstar"]
    keys = ["task", "method", "horizon"]
    greedy = summarize(df, "solve_rate/greedy", keys).rename(
        columns={"mean": "solve_greedy_mean", "std": "solve_greedy_std", "n": "seeds"})
    sample = summarize(df, "solve_rate/sample", keys).rename(
        columns={"mean": "solve_sample_mean", "std": "solve_sample_std"}).drop(columns="n")
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
            "solve_sample_std", "seeds", "chance", "params_training", "params_inference",
            "paper", "task", "method_name", "horizon"]
    return table[cols]


def sort_settings(table: pd.DataFrame) -> pd.DataFrame:
    """Graphs by size, then methods in METHOD_ORDER, then horizon (none first)."""
    def key(i: int):
        horizon = table["horizon"].iat[i]
        return (graph_size(table["task"].iat[i]), method_rank(table["method"].iat[i]),
                -1 if pd.isna(horizon) else int(horizon))
    return table.iloc[sorted(range(len(table)), key=key)].reset_index(drop=True)


# --- Countdown (Figure 4) --------------------------------------------------------------

# Figure 4's accuracies (%), keyed by (method, horizon).
PAPER_COUNTDOWN = {("gpt", None): 33.1, ("bst", None): 42.3,
                   ("mtp", 1): 39.2, ("mtp", 4): 49.7, ("mtp", 8): 57.3,
                   ("jtp", 1): 39.0, ("jtp", 4): 49.4, ("jtp", 8): 55.0,
                   ("nextlat", 1): 54.8, ("nextlat", 4): 57.6, ("nextlat", 8): 58.7}


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


# --- Manhattan (Table 1) ----------------------------------------------------------------

# Table 1 of the paper: (next-token %, valid trajectories %, compression, effective rank,
# detour robustness %). MTP, JTP and NextLat use d = 8 there.
TABLE1_METRICS = [("next_token_valid", "next_token", 100), ("valid_trajectories", "valid", 100),
                  ("compression", "compression", 1), ("effective_rank", "rank", 1),
                  ("detour_robustness", "detour", 100)]
PAPER_TABLE1 = {"gpt": (100, 97.0, 0.65, 160.1, 85.0), "mtp": (100, 98.1, 0.64, 57.7, 95.0),
                "jtp": (100, 97.1, 0.32, 215.8, 87.0), "nextlat": (100, 98.7, 0.71, 52.7, 95.0),
                "true world model": (100, 100, 1.00, float("nan"), 100)}
PAPER_TABLE1_HORIZON = 8
TRUE_MODEL = "true world model"


def manhattan_table(records: Iterable[dict], oracle_records: Iterable[dict] = ()) -> pd.DataFrame:
    """Table 1: one row per method[ d=h] (mean and std over seeds; percentages as in the
    paper) and a last row for the true world model (the oracle's record), each beside the
    paper's numbers (``paper_*``; the paper's horizon is 8, see ``paper_horizon``)."""
    df = records_frame(records)
    df = df[df["benchmark"] == "manhattan"]
    oracle = records_frame(oracle_records)
    if len(oracle):
        oracle["method"], oracle["horizon"] = TRUE_MODEL, pd.NA
        df = pd.concat([df, oracle], ignore_index=True)
    keys = ["method", "horizon"]
    table = None
    for metric, name, scale in TABLE1_METRICS:
        if metric not in df.columns:
            df[metric] = float("nan")
        df[metric] = pd.to_numeric(df[metric], errors="coerce")
        part = summarize(df, metric, keys)
        part[["mean", "std"]] = part[["mean", "std"]] * scale
        part = part.rename(columns={"mean": f"{name}_mean", "std": f"{name}_std", "n": f"n_{name}"})
        table = part if table is None else table.merge(part, on=keys)
    table["seeds"] = table["n_next_token"]
    table = table.drop(columns=[c for c in table.columns if c.startswith("n_")])
    if "params/training" in df.columns:
        params = df.groupby(keys, dropna=False, sort=False).agg(
            params_training=("params/training", "first"), params_inference=("params/inference", "first"),
        ).reset_index()
        table = table.merge(params, on=keys)
        for col in ("params_training", "params_inference"):  # the oracle row has none
            table[col] = table[col].astype("Int64")
    last = len(METHOD_ORDER) + 1  # the true world model goes last
    order = sorted(range(len(table)), key=lambda i: (
        (last, "") if table["method"].iat[i] == TRUE_MODEL else method_rank(table["method"].iat[i]),
        -1 if pd.isna(table["horizon"].iat[i]) else int(table["horizon"].iat[i])))
    table = table.iloc[order].reset_index(drop=True)
    horizons = [None if pd.isna(h) else int(h) for h in table["horizon"]]
    for k, (_, name, _) in enumerate(TABLE1_METRICS):
        table[f"paper_{name}"] = [PAPER_TABLE1.get(m, (float("nan"),) * 5)[k] for m in table["method"]]
    table["paper_horizon"] = [PAPER_TABLE1_HORIZON if m in HORIZON_METHODS else pd.NA for m in table["method"]]
    table["paper_horizon"] = table["paper_horizon"].astype("Int64")
    table["method_name"] = table["method"]
    table["method"] = [method_label(m, h) for m, h in zip(table["method_name"], horizons)]
    front = ["method"] + [c for c in table.columns if c.endswith(("_mean", "_std"))]
    rest = [c for c in table.columns if c not in front and c not in ("method_name", "horizon")]
    return table[front + rest + ["method_name", "horizon"]]


# --- writing ----------------------------------------------------------------------------
def _mean_std(mean, std, digits: int) -> str:
    if mean is None or pd.isna(mean):
        return "—"
    if std is None or pd.isna(std):  # one seed: no spread to show
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def display_frame(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Human-readable copy: each ``X_mean``/``X_std`` pair becomes one ``X`` "m ± s" column,
    other floats are rounded and integers get thousands separators."""
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        if col.endswith("_std") and col[:-4] + "_mean" in df.columns:
            continue
        if col.endswith("_mean") and col[:-5] + "_std" in df.columns:
            base = col[:-5]
            out[base] = [_mean_std(m, s, digits) for m, s in zip(df[col], df[base + "_std"])]
        elif pd.api.types.is_float_dtype(df[col]):
            out[col] = [("—" if pd.isna(v) else f"{v:.{digits}f}") for v in df[col]]
        elif pd.api.types.is_integer_dtype(df[col]) and col.startswith("params"):
            out[col] = [("—" if pd.isna(v) else f"{int(v):,}") for v in df[col]]
        else:
            out[col] = ["—" if _is_missing(v) else v for v in df[col]]
    return out


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def markdown(df: pd.DataFrame) -> str:
    """A GitHub pipe table of ``df`` as given (all cells turned into text)."""
    # disable_numparse keeps our own number formatting
    return df.to_markdown(index=False, disable_numparse=True)


def write_table(df: pd.DataFrame, csv_path, md_path,
                drop: Sequence[str] = ("task", "method_name", "horizon"), digits: int = 3) -> None:
    """Write the numeric table as CSV and a readable Markdown version (``drop`` columns are
    join keys that only clutter the Markdown)."""
    csv_path, md_path = Path(csv_path), Path(md_path)
    for path in (csv_path, md_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(csv_path, index=False)
    shown = display_frame(df.drop(columns=[c for c in drop if c in df.columns]), digits)
    md_path.write_text(markdown(shown) + "\n")


__all__ = ["records_frame", "summarize", "method_label", "pathstar_table", "countdown_table", "manhattan_table",
           "write_table",
           "display_frame", "markdown", "graph_label", "graph_size", "method_rank",
           "PAPER_PATHSTAR", "METHOD_ORDER"]
