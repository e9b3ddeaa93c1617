"""TinyStories figures: the numbers behind the curves (minus GPT at the same seed and offset,
one ablation switch per figure, GPT and BST in every horizon panel)."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from nextlat.benchmarks.tinystories import report

OFFSETS = [1, 2, 3]


def _record(tmp_path, run_id, method, seed, ce, **keys):
    rec = {"run": {"run_id": run_id, "benchmark": "tinystories", "task": "ts", "seed": seed,
                   "method": method, "horizon": keys.get("horizon")},
           "method": {"name": method, **keys}, "probes": {"offsets": OFFSETS, "ce": ce}}
    path = tmp_path / f"{run_id}.json"
    path.write_text(json.dumps(rec))
    return path


@pytest.fixture
def records(tmp_path):
    r = _record
    return [r(tmp_path, "gpt0", "gpt", 0, [1.0, 2.0, 3.0]), r(tmp_path, "gpt1", "gpt", 1, [1.2, 2.2, 3.2]),
            r(tmp_path, "bst0", "bst", 0, [1.5, 2.5, 3.5]),
            r(tmp_path, "nl0", "nextlat", 0, [0.9, 1.5, 2.0], horizon=4),
            r(tmp_path, "nl1", "nextlat", 1, [1.3, 1.9, 2.4], horizon=4),
            r(tmp_path, "nl1d1", "nextlat", 0, [1.0, 1.9, 2.9], horizon=1),
            r(tmp_path, "nlkl", "nextlat", 0, [2.0, 2.0, 2.0], horizon=4, terms="kl"),
            r(tmp_path, "nlce", "nextlat", 0, [2.5, 2.5, 2.5], horizon=4, token_term="ce"),
            r(tmp_path, "nlsg", "nextlat", 0, [3.0, 3.0, 3.0], horizon=4, stop_grad="none"),
            r(tmp_path, "nlsgce", "nextlat", 0, [9.0, 9.0, 9.0], horizon=4, stop_grad="none", token_term="ce")]


def _run(tmp_path, records, figure):
    outputs = {k: tmp_path / f"{figure}.{k}" for k in ("png", "pdf", "csv", "md")}
    getattr(report, figure)({"probes": records}, outputs, {})
    assert all(p.stat().st_size > 0 for p in outputs.values())
    return pd.read_csv(outputs["csv"]), outputs["md"].read_text()


def test_fig8_subtracts_gpt_at_the_same_seed_and_offset(tmp_path, records):
    table, md = _run(tmp_path, records, "fig8")
    nl = table[(table["curve"] == "nextlat") & (table["horizon"] == 4)].set_index("offset")
    # seed 0: 0.9-1.0, 1.5-2.0, 2.0-3.0; seed 1: 1.3-1.2, 1.9-2.2, 2.4-3.2
    assert nl.loc[1, "mean"] == pytest.approx(0.0) and nl.loc[1, "min"] == pytest.approx(-0.1)
    assert nl.loc[3, "mean"] == pytest.approx((-1.0 - 0.8) / 2) and nl.loc[3, "seeds"] == 2
    assert set(table["curve"]) == {"bst", "nextlat"}  # GPT is the zero line, ablations excluded
    bst = table[table["curve"] == "bst"]
    assert sorted(bst["horizon"].unique()) == [1, 4]  # drawn in every panel
    assert (bst["mean"] == 0.5).all()  # seed 0 only: its own GPT seed
    assert "Paper:" in md and "k=1" in md


def test_fig16_is_absolute_and_includes_gpt(tmp_path, records):
    table, _ = _run(tmp_path, records, "fig16")
    gpt = table[(table["curve"] == "gpt") & (table["horizon"] == 4)].set_index("offset")
    assert gpt.loc[2, "mean"] == pytest.approx(2.1)


@pytest.mark.parametrize("figure,label,value", [
    ("fig12", "KL only", 2.0), ("fig13", "CE to next token", 2.5), ("fig14", "no stop-gradient", 3.0)])
def test_each_ablation_figure_varies_only_its_key(tmp_path, records, figure, label, value):
    table, _ = _run(tmp_path, records, figure)
    assert "nextlat" not in set(table["curve"])  # labelled by the switch's value
    curve = table[(table["curve"] == label) & (table["horizon"] == 4)].set_index("offset")
    assert curve.loc[1, "mean"] == pytest.approx(value - 1.0)  # minus GPT seed 0
    assert not (table["mean"] > 7).any()  # the run with two switches belongs to no figure
    paper = table[table["curve"].str.contains("paper")]
    assert len(paper) and set(paper["horizon"]) == {1, 4}


def test_minus_gpt_needs_gpt(tmp_path, records):
    with pytest.raises(ValueError, match="need GPT runs"):
        _run(tmp_path, [p for p in records if "gpt" not in p.name], "fig8")


def test_two_settings_on_one_curve_are_refused_naming_the_runs(tmp_path, records):
    other = _record(tmp_path, "nl0-kl0.5", "nextlat", 0, [0.5, 0.5, 0.5], horizon=4, lambda_kl=0.5)
    with pytest.raises(ValueError, match=r"would average runs of different settings: \['nl0', 'nl0-kl0.5'\]"):
        _run(tmp_path, records + [other], "fig8")


def test_an_offset_with_nothing_scored_is_a_gap_not_a_crash(tmp_path, records):
    rec = json.loads(records[3].read_text())
    rec["probes"]["ce"][2] = None
    records[3].write_text(json.dumps(rec))
    table, _ = _run(tmp_path, records, "fig16")
    nl = table[(table["curve"] == "nextlat") & (table["horizon"] == 4)].set_index("offset")
    assert nl.loc[3, "seeds"] == 1 and nl.loc[1, "seeds"] == 2
