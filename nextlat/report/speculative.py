"""Self-speculative decoding reports of any benchmark: the summary table (the best fixed draft
length of each model per domain, and each adaptive policy, beside the paper's numbers where a
slice has them), the full table (every draft length and policy, with the acceptance rate by
draft position) and the draft-length figure. A slice's report module passes its paper's
numbers and domain names (the paper reports Tables 3 and 7).

Inputs: ``inputs["records"]`` (one speculative.json per run that drafts for itself) and
``inputs["prompts"]`` (prompts.json: sources and counts, for the notes). A cell's value is the
mean over the setting's seeds (± their std when there are several). "Best" is chosen per seed
and domain by speed-up among the fixed draft lengths, as the paper reports NextLat's best.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import write_text
from .style import method_color, plt, save
from .tables import load_records, markdown, method_rank, paper_name, write_csv

Paper = dict[tuple[str, int], dict[str, tuple[float, float]]]  # (method, d) -> {domain: (speed-up, accepted)}


def model_label(method: str, horizon) -> str:
    return f"{paper_name(method)} d={int(horizon)}"


def speculative_frame(records: list[dict]) -> pd.DataFrame:
    """One row per (run, domain, draft-length setting)."""
    rows = []
    for rec in records:
        run = rec["run"]
        for domain, d in rec["domains"].items():
            for s in d["settings"]:
                rows.append({
                    "run_id": run["run_id"], "method": run["method"], "horizon": run["horizon"],
                    "seed": run["seed"], "domain": domain, "setting": s["name"], "gamma": s["gamma"],
                    "threshold": s["threshold"], "adaptive": s["threshold"] is not None,
                    "speedup": s["speedup"], "accepted": s["accepted_per_step"], "drafted": s["drafted_per_step"],
                    "tokens_per_s": s["tokens_per_s"], "ar_tokens_per_s": d["ar"]["tokens_per_s"],
                    "greedy_match": s["greedy_match"], "prompts": d["prompts"],
                    "checked": s["checked"], "accepted_by_position": s["accepted"],
                    "max_draft": rec.get("max_draft"),
                    "distinct": d["ar"].get("distinct_fraction", np.nan),
                })
    if not rows:
        raise ValueError("no speculative-decoding records to report (no run drafts for itself?)")
    return pd.DataFrame(rows)


def _order(df: pd.DataFrame, paper: Paper) -> list[tuple[str, int]]:
    """The paper's rows first, in its order, then the others by method and horizon."""
    keys = {(m, int(h)) for m, h in zip(df["method"], df["horizon"])}
    first = [k for k in paper if k in keys]
    return first + sorted(keys - set(first), key=lambda k: (method_rank(k[0]), k[1]))


def _domains(df: pd.DataFrame, labels: dict[str, str]) -> list[str]:
    return [d for d in labels if d in set(df["domain"])] + sorted(set(df["domain"]) - set(labels))


def _agg(values: pd.Series) -> tuple[float, float]:
    return float(values.mean()), float(values.std()) if len(values) > 1 else float("nan")


def _cell(mean_s, std_s, mean_a, std_a, paper=None, gammas: str = "") -> str:
    def one(m, s, digits, suffix=""):
        return f"{m:.{digits}f}" + ("" if np.isnan(s) else f" ± {s:.{digits}f}") + suffix

    text = f"{one(mean_s, std_s, 2, '×')} / {one(mean_a, std_a, 2)}" + (f" [γ {gammas}]" if gammas else "")
    return text if paper is None else f"{text} ({paper[0]:.2f}× / {paper[1]:.2f})"


PAPERS_LENGTH = "paper's draft length"
DEGENERATE = 0.2  # distinct-token fraction of a continuation below which it is a loop


def papers_length(df: pd.DataFrame) -> pd.DataFrame:
    """Per (run, domain), the fixed draft length the paper reports: a drafter with a limit
    (MTP, JTP: d tokens) drafts its whole horizon, the longest fixed length up to it; one
    without (NextLat) its fastest length, as the paper reports NextLat's best."""
    fixed = df[~df["adaptive"]]
    limited = fixed["max_draft"].notna()
    longest = fixed[limited].loc[fixed[limited].groupby(["run_id", "domain"])["gamma"].idxmax()]
    fastest = fixed[~limited].loc[fixed[~limited].groupby(["run_id", "domain"])["speedup"].idxmax()]
    return pd.concat([longest, fastest])


def summary_frame(df: pd.DataFrame, paper: Paper, labels: dict[str, str]) -> pd.DataFrame:
    """Long table: per model, policy (the paper's draft length, or an adaptive setting) and
    domain, the speed-up and accepted drafts per step (mean, std over seeds), the draft
    length(s) used and the paper's numbers."""
    policies = {PAPERS_LENGTH: papers_length(df)}
    for name in sorted(df.loc[df["adaptive"], "setting"].unique()):
        policies[name] = df[df["setting"] == name]
    rows = []
    for method, h in _order(df, paper):
        for policy, sel in policies.items():
            part = sel[(sel["method"] == method) & (sel["horizon"] == h)]
            for domain in _domains(df, labels):
                cell = part[part["domain"] == domain]
                if cell.empty:
                    continue
                ref = paper.get((method, h), {}).get(domain) if policy == PAPERS_LENGTH else None
                s, a = _agg(cell["speedup"]), _agg(cell["accepted"])
                rows.append({"method": method, "horizon": h, "model": model_label(method, h), "policy": policy,
                             "domain": domain, "speedup_mean": s[0], "speedup_std": s[1], "accepted_mean": a[0],
                             "accepted_std": a[1], "drafted": float(cell["drafted"].mean()),
                             "gammas": ",".join(str(g) for g in sorted(set(cell["gamma"])))
                             if policy == PAPERS_LENGTH else "", "seeds": len(cell),
                             "paper_speedup": ref[0] if ref else np.nan,
                             "paper_accepted": ref[1] if ref else np.nan})
    return pd.DataFrame(rows)


def _pivot_md(long: pd.DataFrame, row_keys: list[str], labels: dict[str, str],
              extra: dict[str, str] | None = None) -> str:
    """Markdown with one column per domain; each cell 'speed-up× / accepted (paper's)'."""
    out = []
    for key, part in long.groupby(row_keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(row_keys, key))
        for _, r in part.iterrows():
            paper = None if np.isnan(r.get("paper_speedup", np.nan)) else (r["paper_speedup"], r["paper_accepted"])
            row[labels.get(r["domain"], r["domain"])] = _cell(
                r["speedup_mean"], r["speedup_std"], r["accepted_mean"], r["accepted_std"], paper,
                r.get("gammas", "") or "")
        for col, src in (extra or {}).items():
            value = part[src].mean() if pd.api.types.is_float_dtype(part[src]) else part[src].iloc[0]
            row[col] = f"{value:.2f}" if isinstance(value, float) else value
        out.append(row)
    return markdown(pd.DataFrame(out).fillna("—"))


def _notes(inputs: dict, records: list[dict], df: pd.DataFrame, labels: dict[str, str], paper_setting: str) -> str:
    prompts = json.loads(Path(inputs["prompts"]).read_text())
    rec = records[0]
    dec = rec["decoding"]
    sources = "; ".join(f"{labels.get(d, d)}: {len(v['prompts'])} prompts from {v['source']}"
                        + (f" ({v['note']})" if v.get("note") else "") for d, v in prompts["domains"].items())
    match = df["greedy_match"].dropna()
    vocab = rec.get("draft_vocab")
    lines = [
        "Cells: wall-clock speed-up over plain KV-cached decoding in the same process / accepted draft tokens "
        "per target forward (the paper's 'accepted tokens', which exclude the target's own next token)"
        + (f"; the paper's numbers in parentheses ({paper_setting})." if paper_setting else "."),
        "Draft length (γ in brackets): ours counts drafter tokens; the paper's gamma also counts the target's "
        "own next token (paper gamma = ours + 1). The paper's draft length: MTP and JTP draft their d tokens; "
        "NextLat, which has no limit, its fastest fixed length per seed and domain, as the paper reports its "
        "best (picked on the same timings, which flatters it slightly; Table 7 has every length). Adaptive "
        "policies stop drafting when the calibrated chance that every draft so far is accepted falls below tau.",
        f"Prompts ({prompts['source']}, {prompts['prompt_tokens']} tokens, {dec['new_tokens']} new tokens, "
        f"temperature {dec['temperature']}): {sources}.",
        f"Device {rec['device']}, {rec['threads']} thread(s); drafters read "
        + ("the whole vocabulary" if not vocab else f"the {vocab} most frequent training tokens") + ".",
    ]
    distinct = df.groupby(["run_id", "domain"])["distinct"].first().groupby("run_id").mean().dropna()
    if len(distinct):
        # Acceptance is a property of the drafter *and* the text: a model that loops on one
        # token is predicted by any drafter, so a near-1 acceptance there measures the loop.
        lines.append(f"Plain decoding's continuations: {distinct.mean():.0%} distinct tokens on average "
                     f"(over runs and prompts; lowest run {distinct.min():.0%}).")
        if distinct.min() < DEGENERATE:
            lines.append(f"WARNING: some models' continuations are degenerate (under {DEGENERATE:.0%} distinct "
                         "tokens: a repeated token or short loop). Drafters that see the sampled token predict a "
                         "loop almost perfectly, so these acceptances overstate what the drafter would achieve on "
                         "real text; prefer sampling (temperature > 0) or larger models.")
    if len(match):
        lines.append(f"Greedy check: speculative output equal to plain greedy decoding on {match.mean():.1%} "
                     "of prompts (exact in exact arithmetic; a difference is a float near-tie).")
    return "\n\n".join(lines)


def _frame_of(inputs: dict) -> tuple[list[dict], pd.DataFrame]:
    records = load_records(inputs["records"])
    return records, speculative_frame(records)


def summary_table(inputs: dict, outputs: dict, paper: Paper, labels: dict[str, str], paper_setting: str = "") -> None:
    """``outputs["csv"]`` (long: model, policy, domain) and ``outputs["md"]`` (domains as columns)."""
    records, df = _frame_of(inputs)
    long = write_csv(summary_frame(df, paper, labels), outputs["csv"])
    md = _pivot_md(long, ["model", "policy"], labels, {"drafted/step": "drafted"})
    write_text(outputs["md"], md + "\n\n" + _notes(inputs, records, df, labels, paper_setting) + "\n")


def _position_rates(part: pd.DataFrame) -> str:
    """Acceptance rate by draft position over the rows' summed counts: 'k1 k2 ...'."""
    width = max(len(c) for c in part["checked"])
    checked = np.zeros(width)
    accepted = np.zeros(width)
    for c, a in zip(part["checked"], part["accepted_by_position"]):
        checked[: len(c)] += c
        accepted[: len(a)] += a
    return " ".join("—" if n == 0 else f"{x / n:.2f}" for x, n in zip(accepted, checked))


def full_frame(df: pd.DataFrame, paper: Paper, labels: dict[str, str]) -> pd.DataFrame:
    rows = []
    for method, h in _order(df, paper):
        part = df[(df["method"] == method) & (df["horizon"] == h)]
        for setting in sorted(part["setting"].unique(), key=lambda s: (s.startswith("adaptive"), len(s), s)):
            sel = part[part["setting"] == setting]
            for domain in _domains(df, labels):
                cell = sel[sel["domain"] == domain]
                if cell.empty:
                    continue
                s, a = _agg(cell["speedup"]), _agg(cell["accepted"])
                rows.append({"method": method, "horizon": h, "model": model_label(method, h), "setting": setting,
                             "domain": domain, "speedup_mean": s[0], "speedup_std": s[1], "accepted_mean": a[0],
                             "accepted_std": a[1], "drafted": float(cell["drafted"].mean()),
                             "plain_tokens_per_s": float(cell["ar_tokens_per_s"].mean()),
                             "greedy_match": float(cell["greedy_match"].mean()) if cell["greedy_match"].notna().any()
                             else np.nan, "seeds": len(cell)})
            rows[-1]["acceptance_by_position"] = _position_rates(sel)  # all domains, on the setting's last row
    out = pd.DataFrame(rows)
    out["acceptance_by_position"] = out["acceptance_by_position"].fillna("")
    return out


def full_table(inputs: dict, outputs: dict, paper: Paper, labels: dict[str, str], paper_setting: str = "") -> None:
    records, df = _frame_of(inputs)
    long = write_csv(full_frame(df, paper, labels), outputs["csv"])
    md = _pivot_md(long, ["model", "setting"], labels, {"drafted/step": "drafted"})
    rates = long[long["acceptance_by_position"] != ""][["model", "setting", "acceptance_by_position"]]
    write_text(outputs["md"], md + "\n\nAcceptance rate by draft position k = 1, 2, ... (accepted / checked, "
               "all domains; a draft is checked when every draft before it was accepted):\n\n"
               + markdown(rates) + "\n\n" + _notes(inputs, records, df, labels, paper_setting) + "\n")


def draft_length_figure(inputs: dict, outputs: dict, paper: Paper, title: str) -> None:
    """Speed-up and accepted drafts per step against the draft length (mean over domains and
    seeds), one line per model; each adaptive policy a marker at its mean drafted length."""
    records = load_records(inputs["records"])
    df = speculative_frame(records)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    markers = ["*", "P", "X", "D"]
    thresholds = sorted(df.loc[df["adaptive"], "threshold"].unique())  # one marker per threshold
    for method, h in _order(df, paper):
        part = df[(df["method"] == method) & (df["horizon"] == h)]
        color = method_color(method)
        style = "-" if h == 1 else ("--" if h == 2 else ":")
        label = model_label(method, h)
        fixed = part[~part["adaptive"]].groupby("gamma")[["speedup", "accepted"]].mean()
        axes[0].plot(fixed.index, fixed["speedup"], style, color=color, marker="o", ms=3, label=label)
        axes[1].plot(fixed.index, fixed["accepted"], style, color=color, marker="o", ms=3, label=label)
        for tau, marker in zip(thresholds, markers):
            sel = part[part["adaptive"] & (part["threshold"] == tau)]
            if not sel.empty:
                x = sel["drafted"].mean()
                axes[0].scatter([x], [sel["speedup"].mean()], color=color, marker=marker, s=80, edgecolor="k", zorder=3)
                axes[1].scatter([x], [sel["accepted"].mean()], color=color, marker=marker, s=80, edgecolor="k",
                                zorder=3)
        longest = part[~part["adaptive"]]
        longest = longest[longest["gamma"] == longest["gamma"].max()]
        rates = [float(r) if r != "—" else np.nan for r in _position_rates(longest).split()]
        axes[2].plot(range(1, len(rates) + 1), rates, style, color=color, marker="o", ms=3, label=label)
    for tau, marker in zip(thresholds, markers):
        axes[0].scatter([], [], color="w", edgecolor="k", marker=marker, s=80,
                        label=f"adaptive, tau={tau:g} (at its mean draft length)")
    gmax = int(df["gamma"].max())
    axes[0].axhline(1.0, color="0.6", lw=0.8)
    axes[1].plot([0, gmax], [0, gmax], color="0.6", lw=0.8, label="every draft accepted")
    axes[0].set(xlabel="draft length (drafter tokens per step; paper's gamma - 1)", ylabel="speed-up over plain decoding")
    axes[1].set(xlabel="draft length", ylabel="accepted drafts per step")
    axes[2].set(xlabel="draft position k (longest fixed length)", ylabel="P(draft k accepted | drafts < k accepted)",
                ylim=(0, 1.02))
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title}: speed-up and acceptance against the draft length (mean over domains)")
    save(fig, outputs["png"], outputs["pdf"])
