"""The claims table (``snakemake claims``): every enabled benchmark's claims (its slice's
``paper.CLAIMS``) evaluated on its results at the chosen scale, then gathered into one table,
with the claims of benchmarks the scale does not run listed as not run.

Per benchmark (rule ``benchmark_claims``), the values the checks read are the slice's
evaluation records by default; a slice whose claims read other records (probes, speculative
decoding) names a ``claim_frame`` stage that builds them from the rule's inputs.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path

import pandas as pd

from .. import benchmarks
from ..io import write_text
from ..report.claims import CLAIM_COLUMNS, RULE, evaluate_claims, not_run, summary_line
from ..report.tables import load_records, markdown, records_frame, write_csv

log = logging.getLogger(__name__)


def claims_of(benchmark: str) -> list:
    """The slice's ``paper.CLAIMS``; none for a slice without a ``paper`` module or claims (a
    new benchmark lists none until its paper.py declares them)."""
    spec = benchmarks.get(benchmark)
    if importlib.util.find_spec(spec.module_name("paper")) is None:
        return []
    return list(getattr(importlib.import_module(spec.module_name("paper")), "CLAIMS", []))


def values_frame(benchmark: str, inputs: dict) -> pd.DataFrame:
    spec = benchmarks.get(benchmark)
    if spec.claim_frame:
        return spec.stage(spec.claim_frame)(inputs)
    evals = inputs.get("evals") or []
    return records_frame(load_records(evals)) if evals else pd.DataFrame()


RUN_FILES = ("evals", "probes", "speculative")  # the rules' inputs that are per-run records


def by_variant(inputs: dict, variants: dict[str, str] | None) -> dict[str, dict]:
    """The rule's inputs split by sweep point ({variant: inputs}, in the sweep's order); a run's
    record belongs to the run whose folder it is in, other inputs (code) go to every point.
    Without a sweep, {"": inputs}."""
    points = list(dict.fromkeys((variants or {}).values()))
    if not any(points):
        return {"": inputs}
    parts = {v: {} for v in points}
    for key, paths in inputs.items():
        paths = [paths] if isinstance(paths, str) else list(paths)
        for v in points:
            parts[v][key] = []
        for p in paths:
            run = next((part for part in Path(p).parts if part in variants), None)
            if run is None and key in RUN_FILES:  # a record outside every run folder: whose point?
                raise ValueError(f"{p}: a {key} record in no run folder of the sweep ({len(variants)} runs)")
            for v in ([variants[run]] if run else points):
                parts[v][key].append(p)
    return parts


def benchmark_claims(benchmark: str, inputs: dict, out_csv, variants: dict[str, str] | None = None,
                     scale: str | None = None) -> pd.DataFrame:
    """The benchmark's claims on its results at ``scale``; on a sweep, once per point (column
    ``variant``)."""
    tables = []
    for variant, part in by_variant(inputs, variants).items():
        df = values_frame(benchmark, part)
        table = evaluate_claims(benchmark, claims_of(benchmark), df, scale)
        if variant:
            table.insert(0, "variant", variant)
        log.info("%s%s: %d claims on %d result rows: %s", benchmark, f" [{variant}]" if variant else "",
                 len(table), len(df), summary_line(table))
        tables.append(table)
    return write_csv(pd.concat(tables, ignore_index=True), out_csv)


def gather_claims(tables: list, enabled: list[str], scale: str, out_csv, out_md) -> pd.DataFrame:
    """One table of every benchmark's claims, enabled ones from their tables, in registry order."""
    parts = {Path(p).parent.name: pd.read_csv(p, keep_default_na=False) for p in tables}
    frames = []
    for name in benchmarks.names():
        if name in parts:
            frames.append(parts[name])
        else:
            why = (f"benchmarks.{name} is disabled at scale {scale}" if name not in enabled
                   else "no claims table")
            frames.append(not_run(name, claims_of(name), why))
    swept = any("variant" in f.columns for f in frames)  # a study scale: one row per claim and sweep point
    columns = (["variant"] if swept else []) + CLAIM_COLUMNS
    table = pd.concat(frames, ignore_index=True).reindex(columns=columns).fillna("")
    write_csv(table, out_csv)
    shown = table.assign(claim=[f"**{b}** · {s}" for b, s in zip(table["benchmark"], table["statement"])])
    shown["reason"] = [r if not n else f"{r}. **{n[0].upper()}{n[1:]}**" for r, n in zip(shown["reason"], shown["scale_note"])]
    shown = shown[(["variant"] if swept else []) + ["claim", "verdict", "ours", "paper", "reason"]]
    shown = shown.rename(columns={"ours": "ours (mean ± std, n seeds)"})
    write_text(out_md, f"# The paper's claims at scale `{scale}`\n\n{summary_line(table)}.\n\n"
                       f"Rule: {RULE}\n\n" + markdown(shown) + "\n")
    log.info("claims at scale %s: %s", scale, summary_line(table))
    return table


__all__ = ["benchmark_claims", "by_variant", "claims_of", "gather_claims", "values_frame"]
