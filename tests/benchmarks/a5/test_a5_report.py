"""Figure 10 and its table from evaluation records: the right numbers at the right lengths."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nextlat.benchmarks.a5 import report

LENGTHS = {"train": 4, "test": 12, "eval": 20}


def record(tmp_path, task, method, seed, modes, lengths=LENGTHS):
    horizon = 1 if method == "nextlat" else None
    run_id = f"{task}_{method}_s{seed}"
    metrics = {"n_words": 10, **{f"{k}_length": v for k, v in {**lengths, "train": int(task[3:])}.items()}}
    for i, (mode, position) in enumerate(modes.items()):
        position = np.asarray(position, dtype=float)
        metrics[f"{mode}/position"] = position.tolist()
        metrics[f"{mode}/prefix"] = np.minimum.accumulate(position).tolist()
        metrics[f"{mode}/params_body"] = 1000 + 10 * i
    path = tmp_path / f"{run_id}.json"
    path.write_text(json.dumps({"run": {"run_id": run_id, "benchmark": "a5", "task": task, "method": method,
                                        "horizon": horizon, "seed": seed}, "metrics": metrics}))
    return path


def ramp(top, n=20):
    """1.0 up to position `top`, then falling to 0.1."""
    return [1.0 if t <= top else 0.1 for t in range(1, n + 1)]


@pytest.fixture
def paths(tmp_path):
    return [record(tmp_path, "len4", "gpt", 0, {"transformer": ramp(4)}),
            record(tmp_path, "len4", "gpt", 1, {"transformer": ramp(5)}),
            record(tmp_path, "len4", "nextlat", 0, {"transformer": ramp(4), "rnn": ramp(15)}),
            record(tmp_path, "len12", "gpt", 0, {"transformer": ramp(2)})]


def test_table_reads_each_curve_at_its_training_test_and_furthest_length(paths):
    out = report.table(report.curve_frame(paths)).set_index("model")
    gpt = out.loc["GPT, transformer, trained on length 4"]
    assert gpt["seeds"] == 2
    assert gpt["position@train_mean"] == 1.0 and gpt["position@12_mean"] == pytest.approx(0.1)
    rnn = out.loc["NextLat, dynamics model as RNN, trained on length 4"]
    assert rnn["position@12_mean"] == 1.0 and rnn["position@20_mean"] == pytest.approx(0.1)
    assert rnn["prefix@20_mean"] == pytest.approx(0.1)
    assert rnn["params (body)"] == 1010 and out.loc["NextLat, transformer, trained on length 4"]["params (body)"] == 1000
    control = out.loc["GPT, transformer, trained on length 12"]
    assert control["position@train_mean"] == pytest.approx(0.1)  # read at 12, its own training length
    assert "though trained on it" in control["paper (Fig. 10)"]
    assert "> 95%" in rnn["paper (Fig. 10)"]
    # display order: the short-length models by method, RNN after transformer, then the control
    assert list(out.index) == ["GPT, transformer, trained on length 4", "NextLat, transformer, trained on length 4",
                               "NextLat, dynamics model as RNN, trained on length 4",
                               "GPT, transformer, trained on length 12"]


def test_records_with_different_test_sets_are_refused(tmp_path, paths):
    odd = record(tmp_path, "len4", "gpt", 7, {"transformer": ramp(4)}, lengths={**LENGTHS, "test": 10})
    with pytest.raises(ValueError, match="test_length"):
        report.table(report.curve_frame([*paths, odd]))


def test_targets_write_the_figure_and_tables(tmp_path, paths):
    out = {"png": tmp_path / "f.png", "pdf": tmp_path / "f.pdf", "csv": tmp_path / "t.csv", "md": tmp_path / "t.md"}
    report.fig10({"evals": paths}, out, {})
    report.table_a5({"evals": paths}, out, {})
    assert out["png"].stat().st_size > 10_000 and out["pdf"].exists()
    csv = pd.read_csv(out["csv"])
    assert len(csv) == 4 and "position@12_mean" in csv.columns
    assert "2.62M" in out["md"].read_text()
    with pytest.raises(ValueError, match="no A5 evaluation records"):
        report.fig10({"evals": []}, out, {})
