"""TinyStories report: probe cross-entropy per offset (Figures 8 and 16), the three loss
ablations (Figures 12-14), their tables, and the generated stories.

Every figure has one panel per horizon d (GPT and BST, which have none, appear in each), one
line per curve (a method, or a NextLat loss variant) with the seed mean and a band over the
seed range. "Minus GPT" figures subtract GPT's probe CE of the same seed and offset (GPT's
seed mean where GPT lacks that seed). Tables list every curve at every offset.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ...io import atomic_path, write_text
from ...report.style import method_color, plt, save
from ...report.tables import METHOD_ORDER, load_records, markdown
from .paper import ABLATIONS, PAPER_LOSS, PAPER_SHAPE, TABLE_OFFSETS


# --- records -----------------------------------------------------------------------------
def probe_frame(paths) -> pd.DataFrame:
    """One row per (run, offset): method, horizon, seed, the NextLat loss variant, ce."""
    rows = []
    for rec in load_records(paths):
        run, method, probes = rec["run"], rec["method"], rec["probes"]
        variant = {k: method.get(k, PAPER_LOSS[k]) for k in PAPER_LOSS} if run["method"] == "nextlat" else {}
        setting = json.dumps({k: v for k, v in method.items() if k != "seed"}, sort_keys=True)
        for k, ce in zip(probes["offsets"], probes["ce"]):
            rows.append({"run_id": run["run_id"], "method": run["method"], "horizon": run["horizon"],
                         "seed": run["seed"], "offset": int(k), "setting": setting,
                         "ce": float("nan") if ce is None else float(ce), **variant})  # None: nothing scored
    df = pd.DataFrame(rows)
    if df.empty:
        raise ValueError("no probe records to report")
    return df


def is_paper_loss(df: pd.DataFrame) -> pd.Series:
    """NextLat rows trained with the paper's loss (every ablation key at its default)."""
    ok = df["method"] == "nextlat"
    for key, value in PAPER_LOSS.items():
        ok &= df.get(key, pd.Series(value, index=df.index)).fillna(value) == value
    return ok


def curves(df: pd.DataFrame, figure: str) -> pd.DataFrame:
    """The runs of ``figure`` with a ``curve`` label (and colour key ``family``)."""
    main = (df["method"] != "nextlat") | is_paper_loss(df)
    if figure in ("fig8", "fig16"):
        out = df[main].copy()
        out["curve"], out["family"] = out["method"], out["method"]
        if figure == "fig8":
            out = out[out["method"] != "gpt"]
        return out
    key, labels = ABLATIONS[figure]
    others = [k for k in PAPER_LOSS if k != key]
    keep = df["method"] == "nextlat"
    for k in others:  # one switch at a time: the other keys stay the paper's
        keep &= df[k] == PAPER_LOSS[k]
    out = df[keep].copy()
    out["curve"] = [labels.get(v, f"{key}={v}") for v in out[key]]
    out["family"] = out[key]
    return out


def minus_gpt(df: pd.DataFrame, gpt: pd.DataFrame) -> pd.DataFrame:
    """``ce`` minus GPT's at the same seed and offset (GPT's seed mean if it lacks the seed)."""
    if gpt.empty:
        raise ValueError("the minus-GPT figures need GPT runs in the tinystories run matrix")
    by_seed = gpt.groupby(["seed", "offset"])["ce"].mean()
    by_offset = gpt.groupby("offset")["ce"].mean()
    base = [by_seed.get((s, k), by_offset[k]) for s, k in zip(df["seed"], df["offset"])]
    out = df.copy()
    out["ce"] = out["ce"].to_numpy() - np.asarray(base)
    return out


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Seed mean, std, min, max and count per (panel horizon, curve, offset). Two different
    method settings drawn as one curve (say, two NextLat entries differing in ``lambda_kl``)
    would be averaged as if they were seeds: refused, naming the runs."""
    clash = df.groupby(["panel", "curve", "seed", "offset"], dropna=False)["setting"].nunique()
    if (clash > 1).any():
        panel, curve, seed, _ = clash[clash > 1].index[0]
        here = df[(df["curve"] == curve) & (df["seed"] == seed) & (df["panel"].astype(object) == panel)]
        runs = sorted(here["run_id"].unique())
        raise ValueError(f"curve {curve!r} (d={panel}, seed {seed}) would average runs of different "
                         f"settings: {runs}; give each its own grid value or drop one from the run matrix")
    g = df.groupby(["panel", "curve", "family", "offset"], sort=False)["ce"]
    return g.agg(mean="mean", std="std", min="min", max="max", seeds="count").reset_index()


def panels(df: pd.DataFrame) -> pd.DataFrame:
    """Each row once per panel it is drawn in: its horizon's, or every panel (no horizon)."""
    horizons = sorted({int(h) for h in df["horizon"].dropna()}) or [None]
    parts = []
    for h in horizons:
        here = df[df["horizon"].isna() | (df["horizon"] == h)] if h is not None else df
        parts.append(here.assign(panel=h))
    return pd.concat(parts, ignore_index=True)


# --- drawing -----------------------------------------------------------------------------
def _curve_order(table: pd.DataFrame) -> list[str]:
    first = table.drop_duplicates("curve")
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(first["curve"], key=lambda c: (rank.get(c, len(rank)), c))


def draw(table: pd.DataFrame, title: str, ylabel: str, png: str, pdf: str, zero_line: bool) -> None:
    panel_values = list(dict.fromkeys(table["panel"]))
    fig, axes = plt.subplots(1, len(panel_values), figsize=(4.2 * len(panel_values) + 0.8, 3.6),
                             sharey=True, squeeze=False)
    order = _curve_order(table)
    for ax, panel in zip(axes[0], panel_values):
        here = table[table["panel"].astype(object) == panel] if panel is not None else table
        for i, curve in enumerate(order):
            c = here[here["curve"] == curve].sort_values("offset")
            if c.empty:
                continue
            fam = c["family"].iloc[0]
            color = method_color(fam) if fam in METHOD_ORDER else plt.cm.tab10(i % 10)
            ax.plot(c["offset"], c["mean"], marker="o", markersize=3, color=color, label=curve)
            if (c["seeds"] > 1).any():
                ax.fill_between(c["offset"], c["min"], c["max"], color=color, alpha=0.18, linewidth=0)
        if zero_line:
            ax.axhline(0.0, color=method_color("gpt"), linestyle="--", linewidth=1, label="gpt (zero)")
        ax.set_title(f"d = {panel}" if panel is not None else "all runs")
        ax.set_xlabel("probe offset k (tokens ahead)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:  # curves that only appear in later panels
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.suptitle(title)
    fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 5), frameon=False,
               bbox_to_anchor=(0.5, 0.95))
    rows = -(-len(labels) // 5)  # legend rows under the title
    fig.tight_layout(rect=(0, 0, 1, 0.9 - 0.06 * rows))
    save(fig, png, pdf)


def _figure(inputs: dict, outputs: dict, figure: str) -> pd.DataFrame:
    df = probe_frame(inputs["probes"])
    gpt = df[df["method"] == "gpt"]
    data = curves(df, figure)
    if data.empty:
        raise ValueError(f"{figure}: the run matrix has no runs for this figure (see the ablation "
                         "grid entries of benchmarks.tinystories.methods)")
    absolute = figure == "fig16"
    if not absolute:
        data = minus_gpt(data, gpt)
    table = summary(panels(data))
    ylabel = "probe CE (nats)" if absolute else "probe CE minus GPT's (nats)"
    draw(table, PAPER_SHAPE[figure]["title"], ylabel, outputs["png"], outputs["pdf"], zero_line=not absolute)
    out = table.rename(columns={"panel": "horizon"})
    out.insert(0, "figure", figure)
    with atomic_path(outputs["csv"]) as tmp:
        out.drop(columns="family").to_csv(tmp, index=False)
    write_text(outputs["md"], _wide_markdown(out, figure))
    return out


def _wide_markdown(table: pd.DataFrame, figure: str) -> str:
    """Offsets 1, 2, 5, 10, 20 as columns, "mean ± std (n)" per curve and panel."""
    shown = table[table["offset"].isin(TABLE_OFFSETS)]
    rows = []
    for (h, curve), g in shown.groupby(["horizon", "curve"], sort=False, dropna=False):
        row = {"d": "—" if pd.isna(h) else int(h), "curve": curve}
        for _, r in g.iterrows():
            spread = f" ± {r['std']:.3f}" if r["seeds"] > 1 else ""
            row[f"k={int(r['offset'])}"] = f"{r['mean']:+.3f}{spread}" if figure != "fig16" else f"{r['mean']:.3f}{spread}"
        rows.append(row)
    head = PAPER_SHAPE[figure]
    return (f"# {head['title']}\n\n{head['caption']}\n\n" + markdown(pd.DataFrame(rows).fillna("—"))
            + f"\n\nPaper: {head['paper']}\n")


def fig8(inputs, outputs, params):
    return _figure(inputs, outputs, "fig8")


def fig16(inputs, outputs, params):
    return _figure(inputs, outputs, "fig16")


def fig12(inputs, outputs, params):
    return _figure(inputs, outputs, "fig12")


def fig13(inputs, outputs, params):
    return _figure(inputs, outputs, "fig13")


def fig14(inputs, outputs, params):
    return _figure(inputs, outputs, "fig14")


# --- stories -----------------------------------------------------------------------------
def stories(inputs, outputs, params):
    """Corpus and data statistics, each run's held-out loss, and its sampled stories."""
    stats = json.loads(Path(inputs["stats"]).read_text())
    meta = json.loads(Path(inputs["meta"]).read_text())
    lines = ["# TinyStories: corpus and generated stories", "",
             f"Corpus source: **{stats['source']}**.", ""]
    rows = []
    for split in ("train", "validation"):
        w, m = stats[split], meta[split]
        rows.append({"split": split, "stories": w["stories"], "words": w["words"],
                     "distinct words": w["distinct_words"], "tokens": m["tokens"],
                     "dropped (> block)": m["dropped_too_long"], "tokens/word": m.get("tokens_per_word")})
    lines += [markdown(pd.DataFrame(rows)), ""]
    evals = {e["run"]["run_id"]: e for e in load_records(inputs["evals"])}
    for path in inputs["stories"]:
        run_id = Path(path).parent.name
        rec = json.loads(Path(path).read_text())
        ev = evals.get(run_id, {}).get("metrics", {})
        loss = f" (held-out CE {ev['val_ce']:.3f}, ppl {ev['val_ppl']:.2f})" if "val_ce" in ev else ""
        lines += [f"## {run_id}{loss}", ""]
        for i, story in enumerate(rec["stories"], 1):
            lines += [f"{i}. " + " ".join(story.split()), ""]
    write_text(outputs["md"], "\n".join(lines) + "\n")


def claim_frame(inputs: dict) -> pd.DataFrame:
    """The values the claims (paper.CLAIMS) read: probe CE per (run, offset) of every run trained
    with the paper's loss (NextLat's ablation variants are other settings, not more seeds)."""
    probes = inputs.get("probes") or []
    if not probes:
        return pd.DataFrame()
    df = probe_frame(probes)
    return df[(df["method"] != "nextlat") | is_paper_loss(df)].reset_index(drop=True)
