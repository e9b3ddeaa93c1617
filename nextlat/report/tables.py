"""Result tables from per-run evaluation records.

A record is the JSON an evaluation writes for one run::

    {"run": {"run_id", "benchmark", "task", "method", "horizon", "seed"},
     "metrics": {name: float or list}, "params": {"training": int, "inference": int}}

:func:`records_frame` flattens records into one row per run, :func:`summarize` aggregates
any scalar metric over seeds; each benchmark's ``report.py`` builds its tables on them.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from ..io import atomic_path, write_text


RUN_KEYS = ("run_id", "benchmark", "task", "method", "horizon", "seed")
GROUP_KEYS = ["benchmark", "task", "method", "horizon"]  # a "setting"; seeds vary inside it

# Display order of methods; methods not listed follow alphabetically.
METHOD_ORDER = ["gpt", "mtp", "jtp", "bst", "nextlat"]
METHOD_NAMES = {"gpt": "GPT", "mtp": "MTP", "jtp": "JTP", "bst": "BST", "nextlat": "NextLat"}
# Methods run at a prediction horizon d (the paper sets d per benchmark).
HORIZON_METHODS = ("mtp", "jtp", "nextlat")


# --- generic ----------------------------------------------------------------------------
def load_records(paths) -> list[dict]:
    """Run records (eval.json, probes.json, speculative.json) from their paths, all of one sweep
    point: every report reads seeds per setting, and two points of a sweep would pool."""
    records = [json.loads(Path(p).read_text()) for p in paths]
    check_one_point(r.get("run", {}).get("variant", "") for r in records)
    return records


def check_one_point(variants: Iterable) -> None:
    """Refuses the runs of several sweep points (their ``variant`` labels) in one table."""
    points = sorted({str(v) for v in variants})
    if len(points) > 1:
        raise ValueError(f"records of {len(points)} sweep variants ({points}) in one table: a report reads one "
                         f"point of a sweep; the `study` target compares them")


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
    if "variant" in df.columns:  # every table groups seeds by setting; two sweep points would pool
        check_one_point(df["variant"].fillna(""))
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


def paper_name(method: str) -> str:
    """The method as the paper writes it: 'GPT', 'NextLat'; unknown methods upper-cased."""
    return METHOD_NAMES.get(method, method.upper())


def method_rank(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


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


def write_csv(df: pd.DataFrame, path) -> pd.DataFrame:
    """``df`` as CSV at ``path``, written atomically (a killed job leaves no half file)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return df


def write_table(df: pd.DataFrame, csv_path, md_path,
                drop: Sequence[str] = ("task", "method_name", "horizon"), digits: int = 3, note: str = "") -> None:
    """Write the numeric table as CSV and a readable Markdown version (``drop`` columns are
    join keys that only clutter the Markdown; ``note``, if any, follows the table)."""
    write_csv(df, csv_path)
    shown = display_frame(df.drop(columns=[c for c in drop if c in df.columns]), digits)
    write_text(md_path, markdown(shown) + "\n" + (f"\n{note}\n" if note else ""))


