"""Training-throughput report of any benchmark (the paper's Table 4): per method its
parameters (training, inference), measured steps/s and ratio to GPT, the ratio its FLOPs
allow (``ideal``) and the efficiency (measured / ideal), beside the paper's numbers where
the slice has them. Input: ``inputs["record"]``, the throughput stage's JSON."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import write_text
from .tables import markdown, method_rank, paper_name, write_csv

Paper = dict[tuple[str, int | None], dict[str, float]]  # (method, d) -> params_training, params_inference, steps_per_s


def _count(n) -> str:
    if n is None or (isinstance(n, float) and np.isnan(n)):
        return "—"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(int(n))


def _num(x, digits: int = 2) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def throughput_frame(record: dict, paper: Paper) -> pd.DataFrame:
    """One row per timed method, GPT first, then the paper's method order and horizon."""
    gpt_paper = paper.get(("gpt", None), {}).get("steps_per_s")
    rows = []
    for r in record["throughput"]:
        ref = paper.get((r["name"], r["horizon"]), {})
        label = paper_name(r["name"]) + (f" d={r['horizon']}" if r["horizon"] else "")
        rows.append({**{k: r[k] for k in ("name", "horizon", "params_training", "params_inference", "steps_per_s",
                                          "steps_per_s_best", "ratio_vs_gpt", "ratio_best", "gflops_per_step",
                                          "ideal_ratio", "efficiency", "efficiency_best")},
                     "model": label,
                     "paper_params_training": ref.get("params_training", np.nan),
                     "paper_params_inference": ref.get("params_inference", np.nan),
                     "paper_steps_per_s": ref.get("steps_per_s", np.nan),
                     "paper_ratio": ref["steps_per_s"] / gpt_paper if ref and gpt_paper else np.nan})
    df = pd.DataFrame(rows)
    order = sorted(range(len(df)), key=lambda i: (df["name"][i] != "gpt", method_rank(df["name"][i]),
                                                  df["horizon"].fillna(0)[i]))
    return df.iloc[order].reset_index(drop=True)


def throughput_table(inputs: dict, outputs: dict, paper: Paper, paper_setting: str = "") -> pd.DataFrame:
    """``outputs["csv"]`` (every number) and ``outputs["md"]`` (readable, with notes)."""
    record = json.loads(Path(inputs["record"]).read_text())
    df = throughput_frame(record, paper)
    write_csv(df, outputs["csv"])
    shown = pd.DataFrame({
        "model": df["model"],
        "training params": [f"{_count(a)} ({_count(b)})" for a, b in zip(df["params_training"], df["paper_params_training"])],
        "inference params": [f"{_count(a)} ({_count(b)})" for a, b in zip(df["params_inference"],
                                                                          df["paper_params_inference"])],
        "steps/s": [f"{_num(a, 3)} ({_num(b)})" for a, b in zip(df["steps_per_s"], df["paper_steps_per_s"])],
        "vs GPT": [f"{_num(a)} ({_num(b)})" for a, b in zip(df["ratio_vs_gpt"], df["paper_ratio"])],
        "ideal": [_num(x) for x in df["ideal_ratio"]],
        "efficiency": [f"{_num(a)} (best {_num(b)})" for a, b in zip(df["efficiency"], df["efficiency_best"])],
        "GFLOP/step": [_num(x, 1) for x in df["gflops_per_step"]],
    })
    m = record["model"]
    notes = [
        "Ours, with the paper's numbers in parentheses" + (f" ({paper_setting})." if paper_setting else "."),
        f"Model: {m['n_layer']} layers x {m['n_embd']}, {m['n_head']} heads, vocabulary {m['vocab_size']:,}; batch "
        f"{record['rows']} rows x {record['seq_len']} tokens; device {record['device']}, {record['threads']} "
        f"thread(s), autocast {record['autocast']}, torch {record['torch']}; {record['settings']['rounds']} "
        f"rounds x {record['settings']['steps']} steps after {record['settings']['warmup']} warm-up "
        + ("(interleaved: each round times every method in turn, in a rotated order)."
           if record["settings"].get("interleave", True) else
           "(one method at a time, built and freed in turn: round k of a method is paired with GPT's round k, "
           "measured minutes apart)."),
        "steps/s: one full training step (forward, backward, AdamW), median over rounds. vs GPT: median over "
        "rounds of GPT's step time / the method's. ideal: FLOPs(GPT) / FLOPs(method), both counted on the real "
        "step with torch's FlopCounterMode (matrix products only; attention dense; recomputation "
        "under activation checkpointing not charged). efficiency: vs GPT / ideal (best: from each method's fastest round). "
        "Below 1, a method spends time beyond its extra arithmetic (small kernels, memory traffic, Python).",
    ]
    if record.get("noisy"):
        notes.append(f"WARNING: the machine was busy while timing {', '.join(record['noisy'])} (median step > "
                     "1.25x the fastest); prefer the best-round efficiencies or rerun on a quiet machine.")
    write_text(outputs["md"], markdown(shown) + "\n\n" + "\n\n".join(notes) + "\n")
    return df


__all__ = ["throughput_frame", "throughput_table"]
