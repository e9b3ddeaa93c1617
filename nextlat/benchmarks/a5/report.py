"""A5 report: Figure 10 (accuracy against position for every model) and its table.

A curve is one (training length, method, horizon, mode) over its seeds: the mean, with the
seeds' range shaded. Modes: ``transformer`` (the model as trained) and ``rnn`` (NextLat's
dynamics model run alone after the transformer encodes x_1). Dotted verticals mark the
training length(s) and the test length, the dashed horizontal line chance (1/60).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...report.style import method_color, plt, save
from ...report.tables import load_records, method_rank, paper_name, records_frame, write_table
from . import group
from .paper import PAPER_A5, PAPER_PARAMS, PAPER_TEST_LENGTH, PAPER_TRAIN_LENGTH

KINDS = {"position": "accuracy at position t", "prefix": "whole-prefix accuracy (all of 1..t right)"}
# Line style by mode, for the shortest training length and for longer ones (the controls).
_STYLE = {True: {"transformer": "-", "rnn": "--"}, False: {"transformer": "-.", "rnn": ":"}}


def curve_frame(paths) -> pd.DataFrame:
    """One row per (run, mode): run labels, the lengths, both curves and the mode's parameters."""
    rows = []
    for rec in load_records(paths):
        run, m = rec["run"], rec["metrics"]
        for mode in sorted({k.split("/")[0] for k in m if "/" in k}):
            rows.append({**{k: run.get(k) for k in ("run_id", "task", "method", "horizon", "seed")}, "mode": mode,
                         **{f"{k}_length": m[f"{k}_length"] for k in ("train", "test", "eval")},
                         "n_words": m["n_words"], "params": m[f"{mode}/params_body"],
                         "curves": {kind: m[f"{mode}/{kind}"] for kind in KINDS}})
    return pd.DataFrame(rows)


def _label(method: str, horizon, mode: str, train_length: int) -> str:
    name = paper_name(method)
    if horizon is not None and not pd.isna(horizon) and not (method == "nextlat" and int(horizon) == 1):
        name = f"{name} d={int(horizon)}"
    what = "dynamics model as RNN" if mode == "rnn" else "transformer"
    return f"{name}, {what}, trained on length {train_length}"


def settings(df: pd.DataFrame) -> list[tuple]:
    """(train_length, method, horizon, mode) in display order: by method, RNN after transformer."""
    keys = df[["train_length", "method", "horizon", "mode"]].drop_duplicates().itertuples(index=False)
    return sorted((tuple(k) for k in keys),
                  key=lambda k: (k[0], method_rank(k[1]), -1 if pd.isna(k[2]) else int(k[2]), k[3] != "transformer"))


def _select(df: pd.DataFrame, key: tuple) -> pd.DataFrame:
    L, method, horizon, mode = key
    same_h = df["horizon"].isna() if pd.isna(horizon) else df["horizon"] == horizon
    return df[(df["train_length"] == L) & (df["method"] == method) & same_h & (df["mode"] == mode)]


def _check_lengths(df: pd.DataFrame) -> tuple[int, int]:
    """The one test and evaluation length every record shares (else the curves do not compare)."""
    for col in ("test_length", "eval_length"):
        if df[col].nunique() != 1:
            raise ValueError(f"A5 records disagree on {col}: {sorted(df[col].unique())}; regenerate the data "
                             "of every task from one config")
    return int(df["test_length"].iloc[0]), int(df["eval_length"].iloc[0])


def plot_fig10(df: pd.DataFrame, png_path, pdf_path) -> list[Path]:
    test_len, eval_len = _check_lengths(df)
    short = int(df["train_length"].min())
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=True)
    t = np.arange(1, eval_len + 1)
    for ax, (kind, title) in zip(axes, KINDS.items()):
        for key in settings(df):
            L, method, horizon, mode = key
            sel = _select(df, key)
            ys = np.array([c[kind] for c in sel["curves"]])
            color = method_color(method)
            label = _label(method, horizon, mode, L) + f" [{len(ys)} seed{'s' * (len(ys) > 1)}]"
            ax.plot(t, ys.mean(0), _STYLE[bool(L == short)].get(mode, ":"), color=color, linewidth=1.6, label=label)
            if len(ys) > 1:
                ax.fill_between(t, ys.min(0), ys.max(0), color=color, alpha=0.15, linewidth=0)
        for L in sorted(set(df["train_length"].unique()) - {test_len}):
            ax.axvline(L, color="grey", linestyle=":", linewidth=1)
            ax.text(L, 1.02, f"train {L}", ha="center", fontsize=7, color="grey", transform=ax.get_xaxis_transform())
        ax.axvline(test_len, color="black", linestyle=":", linewidth=1)
        ax.text(test_len, 1.02, f"test {test_len}", ha="center", fontsize=7, transform=ax.get_xaxis_transform())
        ax.axhline(1 / group.ORDER, color="black", linestyle="--", linewidth=0.8)
        ax.set_xlabel("position t (number of group elements read)")
        ax.set_title(title, fontsize=10, pad=14)
        ax.set_xlim(1, eval_len)
        ax.set_ylim(0, 1.0)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy of the state x_1 ... x_t")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, frameon=False)
    fig.text(0.5, -0.02 - 0.035 * ((len(labels) + 1) // 2 + 1), (f"Paper (train {PAPER_TRAIN_LENGTH}, test {PAPER_TEST_LENGTH}): NextLat's dynamics model as "
                          f"an RNN stays above 95% at {PAPER_TEST_LENGTH}; GPT and NextLat as transformers fail beyond "
                          f"{PAPER_TRAIN_LENGTH}; GPT trained on {PAPER_TEST_LENGTH} also fails. Dashed line: chance."),
             ha="center", fontsize=8)
    fig.suptitle("Figure 10: A5 state tracking, length generalisation", y=1.04)
    return save(fig, png_path, pdf_path)


def table(df: pd.DataFrame) -> pd.DataFrame:
    """Accuracy at the training, test and furthest length per curve (mean ± std over seeds),
    and the parameters each mode runs (embedding and output head left out)."""
    test_len, eval_len = _check_lengths(df)
    rows = []
    for key in settings(df):
        L, method, horizon, mode = key
        sel = _select(df, key)
        row = {"model": _label(method, horizon, mode, L), "task": f"len{L}", "method_name": method,
               "horizon": horizon, "seeds": len(sel)}
        for kind in KINDS:
            for name, n in (("train", L), (str(test_len), test_len), (str(eval_len), eval_len)):
                vals = np.array([c[kind][n - 1] for c in sel["curves"]])
                row[f"{kind}@{name}_mean"] = vals.mean()
                row[f"{kind}@{name}_std"] = vals.std(ddof=1) if len(vals) > 1 else np.nan
        row["params (body)"] = sel["params"].iloc[0]
        row["paper (Fig. 10)"] = PAPER_A5.get((method, mode, L >= test_len), "—")
        rows.append(row)
    out = pd.DataFrame(rows)
    out["params (body)"] = out["params (body)"].astype("Int64")
    return out


def _records(inputs) -> pd.DataFrame:
    df = curve_frame(inputs["evals"])
    if df.empty:
        raise ValueError("no A5 evaluation records: enable benchmarks.a5 and its runs")
    return df


def fig10(inputs, outputs, params):
    plot_fig10(_records(inputs), outputs["png"], outputs["pdf"])


def table_a5(inputs, outputs, params):
    note = (f"Parameters (body: embedding and output head left out): the paper quotes "
            f"{PAPER_PARAMS['rnn_cell'] / 1e6:.2f}M for the RNN cell and {PAPER_PARAMS['transformer_body'] / 1e6:.2f}M "
            "for the transformer at its Table 5 size.")
    write_table(table(_records(inputs)), outputs["csv"], outputs["md"], note=note)


def claim_frame(inputs: dict) -> pd.DataFrame:
    """The values the claims (paper.CLAIMS) read: one row per run, plus ``trained_on_test``
    (the run trained on sequences as long as the test length)."""
    df = records_frame(load_records(inputs.get("evals") or []))
    if not df.empty:
        df["trained_on_test"] = df["train_length"] >= df["test_length"]
    return df
