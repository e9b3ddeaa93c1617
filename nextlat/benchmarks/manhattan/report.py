"""Manhattan report: Table 1 (world-model metrics beside the paper's) and Figure 3 (maps)."""
from __future__ import annotations

from typing import Iterable

import pandas as pd

from ...report.tables import (HORIZON_METHODS, METHOD_ORDER, load_records, method_label, method_rank, records_frame,
                              summarize, write_table)
from .paper import PAPER_TABLE1, PAPER_TABLE1_HORIZON, TABLE1_METRICS

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


# --- report targets -----------------------------------------------------------------------
def table1(inputs: dict, outputs: dict, params: dict) -> None:
    table = manhattan_table(load_records(inputs["evals"]), load_records(inputs["oracle"]))
    write_table(table, outputs["csv"], outputs["md"], digits=2)


RECONSTRUCTION_COUNTS = ("n_generated", "n_ill_formed", "n_used", "n_failed", "n_new_edges",
                         "true_used", "true_unused")


def reconstruction_table(recons: dict) -> pd.DataFrame:
    """Figure 3's table, one row per map ({label: Reconstruction}): generated, ill-formed and
    used (replayed) sequences, failed ones, new edges, true edges used and unused, the rules
    followed (``mode``) and a ``note`` where the map looks better than it is ("no usable
    sequences": an empty map is not a perfect one). Counts a reconstruction lacks are blank."""
    from .reconstruction import describe_mode

    rows = []
    for label, recon in recons.items():
        c = recon.counts
        mode = describe_mode(c["atomic"], c["candidate_order"]) if "candidate_order" in c else None
        rows.append({"map": label, **{k: c.get(k) for k in RECONSTRUCTION_COUNTS},
                     "mode": mode, "note": recon.note or ""})
    table = pd.DataFrame(rows, columns=["map", *RECONSTRUCTION_COUNTS, "mode", "note"])
    return table.astype({k: "Int64" for k in RECONSTRUCTION_COUNTS})
