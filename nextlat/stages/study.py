"""A study (``snakemake study``): the points of a benchmark's ``sweep`` side by side.

A sweep (config ``benchmarks.<name>.sweep``) runs the whole run matrix once per point of a
grid (width, budget, ...), with the same point for every method. The benchmark's report tables
group seeds by setting and would pool the points, so they refuse a sweep; the study reads them
apart instead. Per point it gives the slice's headline metrics (``Benchmark.study_metrics``;
every numeric metric if it names none) as mean ± std over seeds per task and method, the
claims' verdicts per point (from the benchmark's claims table, which is evaluated per point),
and a figure of each metric against the sweep. This module knows no benchmark.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from .. import benchmarks
from ..io import write_text
from ..report.style import method_color, plt, save
from ..report.tables import method_label, summarize, write_csv
from ..runs import setting_of
from .claims import by_variant, values_frame

log = logging.getLogger(__name__)

KEYS = ["task", "method", "horizon"]
_NOT_METRICS = {"run_id", "benchmark", "task", "method", "horizon", "seed", "variant", "setting"}


def _settings(df: pd.DataFrame, variant: str) -> tuple[pd.DataFrame, list[str]]:
    """The frame with ``setting`` (the run id without its point and seed: a grid's variants stay
    apart) and the columns a setting is grouped by; refuses a frame with several rows for one
    setting and seed, which a mean over seeds would silently pool."""
    keys = [k for k in KEYS if k in df.columns]
    if {"run_id", "seed"} <= set(df.columns):
        df = df.assign(setting=[setting_of(str(r), variant, s) for r, s in zip(df["run_id"], df["seed"])])
        keys.append("setting")
    if "seed" in df.columns and df.duplicated(keys + ["seed"]).any():
        dup = df[df.duplicated(keys + ["seed"], keep=False)].head(3)
        raise ValueError(f"study of point {variant!r}: several rows per setting and seed (e.g. "
                         f"{dup[keys + ['seed']].to_dict('records')}), which a mean over seeds would pool; "
                         f"name metrics of one row per run in the slice's study_metrics")
    return df, keys


def _metrics(spec, df: pd.DataFrame) -> list[str]:
    if spec.study_metrics:
        missing = [m for m in spec.study_metrics if m not in df.columns]
        if missing:
            raise ValueError(f"{spec.name}: study_metrics {missing} are not in its results "
                             f"(columns: {sorted(map(str, df.columns))})")
        return list(spec.study_metrics)
    return [c for c in df.columns if c not in _NOT_METRICS and not str(c).startswith(("params/", "sweep/"))
            and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]


def study_frame(benchmark: str, inputs: dict, variants: dict[str, str]) -> pd.DataFrame:
    """Long format: variant, its value per axis, task, method, horizon, metric, mean, std, n."""
    spec = benchmarks.get(benchmark)
    parts = by_variant(inputs, variants)
    if list(parts) == [""]:
        raise ValueError(f"benchmarks.{benchmark} has no sweep: a study compares the points of one "
                         f"(see `sweep` in config.yaml)")
    rows = []
    for variant, part in parts.items():
        df = values_frame(benchmark, part)
        if df.empty:
            continue
        axes = {c: df[c].iloc[0] for c in df.columns if str(c).startswith("sweep/")}  # one value per point
        df, keys = _settings(df, variant)
        for metric in _metrics(spec, df):
            agg = summarize(df.assign(**{metric: pd.to_numeric(df[metric], errors="coerce")}), metric, keys)
            rows.append(agg.assign(variant=variant, metric=metric, **axes))
    if not rows:
        return pd.DataFrame(columns=["variant", *KEYS, "metric", "mean", "std", "n"])
    out = pd.concat(rows, ignore_index=True)
    for k in KEYS:
        if k not in out.columns:
            out[k] = pd.NA
    axes = [c for c in out.columns if str(c).startswith("sweep/")]
    rest = [c for c in out.columns if c not in {*axes, *KEYS, "variant", "metric", "mean", "std", "n"}]
    return out[["variant", *axes, *KEYS, *rest, "metric", "mean", "std", "n"]]


def _cell(mean, std, n) -> str:
    if pd.isna(mean):
        return "–"
    return f"{mean:.3g}" + ("" if pd.isna(std) else f" ± {std:.2g}") + f" ({int(n)})"


def _row_labels(part: pd.DataFrame) -> list[str]:
    """A setting's name: its run id without point and seed, else task · method d=h."""
    if "setting" in part.columns:
        return list(part["setting"].astype(str))
    return [" · ".join(str(x) for x in (t, method_label(m, h)) if pd.notna(x))
            for t, m, h in zip(part["task"], part["method"], part["horizon"])]


def _markdown(benchmark: str, frame: pd.DataFrame, claims: pd.DataFrame, order: list[str]) -> str:
    from ..report.tables import markdown

    out = [f"# Study: {benchmark} across its sweep\n",
           f"Points (variants): {', '.join(order)}. Each cell: mean ± std (seeds) over the point's runs; "
           "every method gets the same point, so the budget is equal across methods.\n"]
    if not claims.empty and "variant" in claims.columns:
        claims = claims.assign(claim=[f"{c}: {s}" for c, s in zip(claims["claim"], claims["statement"])])
        verdicts = claims.pivot(index="claim", columns="variant", values="verdict")  # refuses a duplicate
        verdicts = verdicts.reindex(index=list(dict.fromkeys(claims["claim"])), columns=order)
        out += ["## The claims at each point\n", markdown(verdicts.reset_index().fillna("")), ""]
    for metric, part in frame.groupby("metric", sort=False):
        part = part.assign(row=_row_labels(part),
                           cell=[_cell(m, s, n) for m, s, n in zip(part["mean"], part["std"], part["n"])])
        table = part.pivot(index="row", columns="variant", values="cell")
        table = table.reindex(index=list(dict.fromkeys(part["row"])))
        out += [f"## {metric}\n", markdown(table.reindex(columns=order).reset_index().fillna("–")), ""]
    return "\n".join(out) + "\n"


def _figure(benchmark: str, frame: pd.DataFrame, order: list[str], png, pdf) -> None:
    metrics = list(dict.fromkeys(frame["metric"]))
    tasks = list(dict.fromkeys(frame["task"].fillna(""))) or [""]
    fig, axes = plt.subplots(max(len(metrics), 1), len(tasks), squeeze=False,
                             figsize=(3.6 * len(tasks), 2.6 * max(len(metrics), 1)))
    x = {v: i for i, v in enumerate(order)}
    for r, metric in enumerate(metrics):
        for c, task in enumerate(tasks):
            ax = axes[r][c]
            part = frame[(frame["metric"] == metric) & (frame["task"].fillna("") == task)]
            part = part.assign(row=_row_labels(part))
            for label, line in part.groupby("row", sort=False):
                line = line.assign(x=line["variant"].map(x)).sort_values("x")
                ax.errorbar(line["x"], line["mean"], yerr=line["std"].fillna(0), marker="o", capsize=3,
                            color=method_color(str(line["method"].iloc[0])), label=label)
            ax.set_xticks(range(len(order)), order, rotation=30, fontsize=7)
            ax.set_title(f"{task}: {metric}", fontsize=8)
            if r == 0 and c == len(tasks) - 1:
                ax.legend(fontsize=6, loc="best")
    fig.suptitle(f"{benchmark}: the sweep's points (mean ± std over seeds)", fontsize=9)
    save(fig, png, pdf)


def study(benchmark: str, inputs: dict, variants: dict[str, str], claims_csv, out: dict) -> pd.DataFrame:
    """Writes ``out['csv']``, ``out['md']``, ``out['png']`` and ``out['pdf']``."""
    frame = study_frame(benchmark, inputs, variants)
    order = [v for v in dict.fromkeys(variants.values()) if v in set(frame["variant"])]
    claims = (pd.read_csv(claims_csv, keep_default_na=False, dtype={"variant": str})
              if claims_csv and Path(claims_csv).exists() else pd.DataFrame())
    write_csv(frame, out["csv"])
    write_text(out["md"], _markdown(benchmark, frame, claims, order))
    _figure(benchmark, frame, order, out["png"], out["pdf"])
    log.info("%s: study of %d points, %d metrics, %d rows", benchmark, len(order),
             frame["metric"].nunique(), len(frame))
    return frame


__all__ = ["study", "study_frame"]
