"""Result tables (summaries, Path-Star table, Markdown) and the Path-Star figure."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from nextlat.benchmarks.pathstar.report import plot_pathstar
from nextlat.report.style import method_color
from nextlat.benchmarks.pathstar.data import parse_task as parse_graph
from nextlat.benchmarks.pathstar.report import graph_label, pathstar_table
from nextlat.report.tables import display_frame, records_frame, summarize, write_table


def record(task, method, horizon, seed, greedy, sample=None, benchmark="pathstar"):
    degree, length = parse_graph(task) if benchmark == "pathstar" else (2, 3)
    return {
        "run": {"run_id": f"{task}-{method}-{horizon}-{seed}", "benchmark": benchmark,
                "task": task, "method": method, "horizon": horizon, "seed": seed},
        "metrics": {"solve_rate/greedy": greedy,
                    "solve_rate/sample": greedy if sample is None else sample,
                    "position_acc/greedy": [1.0] * length, "position_acc/sample": [1.0] * length,
                    "position_acc/teacher_forced": [1.0] * length,
                    "chance_solve_rate": 1 / degree, "n_graphs": 100},
        "params": {"training": 1000 + (50 if method == "nextlat" else 0), "inference": 1000},
    }


@pytest.fixture
def records():
    """2 graphs x 2 methods x 2 seeds, with hand-picked solve rates."""
    values = {("g5x5", "gpt"): (0.2, 0.4), ("g5x5", "nextlat"): (0.9, 1.0),
              ("g2x10", "gpt"): (0.5, 0.5), ("g2x10", "nextlat"): (0.7, 0.9)}
    recs = []
    for (task, method), pair in values.items():
        horizon = parse_graph(task)[1] - 2 if method == "nextlat" else None
        for seed, v in enumerate(pair):
            recs.append(record(task, method, horizon, seed, v, sample=v / 2))
    return recs


def test_records_frame_flattens_one_row_per_run(records):
    df = records_frame(records)
    assert len(df) == 8
    assert {"run_id", "task", "method", "horizon", "seed", "solve_rate/greedy",
            "position_acc/greedy", "params/training"} <= set(df.columns)
    assert df["horizon"].isna().sum() == 4  # gpt rows keep a missing horizon
    assert df["position_acc/greedy"].iloc[0] == [1.0] * 5


def test_summarize_hand_checked():
    recs = [record("t", "gpt", None, s, v, benchmark="toy") for s, v in enumerate([1.0, 2.0, 4.0])]
    recs += [record("t", "nextlat", 1, 0, 3.0, benchmark="toy")]
    out = summarize(records_frame(recs), "solve_rate/greedy")
    gpt = out[out["method"] == "gpt"].iloc[0]
    # mean 7/3; sample variance ((1-7/3)^2 + (2-7/3)^2 + (4-7/3)^2) / 2 = 14/6
    assert gpt["mean"] == pytest.approx(7 / 3)
    assert gpt["std"] == pytest.approx(math.sqrt(14 / 6))
    assert gpt["n"] == 3
    single = out[out["method"] == "nextlat"].iloc[0]
    assert single["mean"] == 3.0 and single["n"] == 1 and math.isnan(single["std"])
    assert list(out.columns) == ["benchmark", "task", "method", "horizon", "mean", "std", "n"]


def test_summarize_custom_grouping(records):
    out = summarize(records_frame(records), "solve_rate/greedy", by=["method"])
    assert dict(zip(out["method"], out["mean"])) == pytest.approx({"gpt": 0.4, "nextlat": 0.875})
    assert set(out["n"]) == {4}


def test_pathstar_table_rows_and_columns(records):
    table = pathstar_table(records)
    # Graphs by size (G(2,10) has 19 nodes, G(5,5) 21), methods gpt before nextlat.
    assert list(table["graph"]) == ["G(2,10)", "G(2,10)", "G(5,5)", "G(5,5)"]
    assert list(table["method"]) == ["gpt", "nextlat d=8", "gpt", "nextlat d=3"]
    for col in ["solve_greedy_mean", "solve_greedy_std", "solve_sample_mean", "solve_sample_std",
                "seeds", "chance", "params_training", "params_inference", "paper"]:
        assert col in table.columns
    row = table.iloc[3]  # G(5,5) nextlat d=3: seeds 0.9 and 1.0
    assert row["solve_greedy_mean"] == pytest.approx(0.95)
    assert row["solve_greedy_std"] == pytest.approx(math.sqrt(0.005))
    assert row["solve_sample_mean"] == pytest.approx(0.475)
    assert row["seeds"] == 2 and row["chance"] == pytest.approx(0.2)
    assert row["params_training"] == 1050 and row["params_inference"] == 1000
    assert "solves" in row["paper"]
    assert "chance" in table.iloc[0]["paper"]
    assert table.iloc[0]["solve_greedy_std"] == 0.0  # G(2,10) gpt: 0.5 twice


def test_pathstar_table_paper_column_edge_cases():
    recs = [record("g3x4", "nextlat", 2, 0, 0.9),        # graph the paper did not run
            record("g7x7", "bst", None, 0, 0.2),          # paper: BST fails G(7,7)
            record("g5x5", "nextlat", 1, 0, 0.9),         # paper used d = 3 there
            record("g5x5", "newmethod", None, 0, 0.5)]    # method not in the paper
    table = pathstar_table(recs).set_index("method")
    assert table.loc["nextlat d=2", "paper"] == "—"
    assert table.loc["bst", "paper"] == "fails"
    assert "paper d=3" in table.loc["nextlat d=1", "paper"]
    assert table.loc["newmethod", "paper"] == "—"


def test_pathstar_table_ignores_other_benchmarks(records):
    table = pathstar_table(records + [record("x", "gpt", None, 0, 0.1, benchmark="countdown")])
    assert len(table) == 4


def test_write_table_csv_and_markdown(records, tmp_path):
    table = pathstar_table(records)
    write_table(table, tmp_path / "t.csv", tmp_path / "sub" / "t.md")
    back = pd.read_csv(tmp_path / "t.csv")
    assert len(back) == 4 and back["solve_greedy_mean"].iloc[3] == pytest.approx(0.95)
    md = (tmp_path / "sub" / "t.md").read_text()
    lines = md.strip().splitlines()
    assert len(lines) == 2 + 4 and lines[0].startswith("|")
    assert "0.950 ± 0.071" in md and "G(5,5)" in md and "nextlat d=3" in md
    assert "method_name" not in lines[0]  # join keys are left out of the Markdown


def test_display_frame_single_seed_has_no_spread():
    shown = display_frame(pathstar_table([record("g5x5", "gpt", None, 0, 0.25)]))
    assert shown["solve_greedy"].iloc[0] == "0.250"


def test_graph_names():
    assert parse_graph("g2x10") == (2, 10) and graph_label("g7x7") == "G(7,7)"
    with pytest.raises(ValueError):
        parse_graph("star")


def test_plot_writes_png_and_pdf(records, tmp_path):
    png, pdf = tmp_path / "fig6.png", tmp_path / "out" / "fig6.pdf"
    plot_pathstar(records, png, pdf)
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert pdf.stat().st_size > 1000 and pdf.read_bytes()[:4] == b"%PDF"
    plot_pathstar(records, tmp_path / "s.png", tmp_path / "s.pdf", decoding="sample")
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_plot_rejects_empty(tmp_path):
    with pytest.raises(ValueError):
        plot_pathstar([], tmp_path / "a.png", tmp_path / "a.pdf")


def test_method_colors_are_fixed():
    assert method_color("nextlat") == method_color("nextlat") != method_color("gpt")
    assert method_color("someday") == method_color("someday")  # unlisted: stable by name


# --- Countdown (Figures 4 and 5) ----------------------------------------------------------
def countdown_record(method, horizon, seed, solve, eq_valid):
    return {"run": {"run_id": f"cd4_{method}_s{seed}", "benchmark": "countdown", "task": "cd4",
                    "method": method, "horizon": horizon, "seed": seed},
            "metrics": {"solve_rate/greedy": solve, "solve_rate/sample": solve / 2,
                        "solve_rate_paper/sample": solve, "eq_valid/sample": eq_valid, "n_problems": 10},
            "params": {"training": 10, "inference": 8}}


def test_countdown_table_in_percent_beside_the_paper():
    from nextlat.benchmarks.countdown.report import countdown_table

    recs = [countdown_record("nextlat", 1, s, v, [1, 1, 1]) for s, v in ((0, 0.5), (1, 0.7))]
    recs.append(countdown_record("gpt", None, 0, 0.2, [1, 0.5, 0.1]))
    table = countdown_table(recs)
    assert list(table["method"]) == ["gpt", "nextlat d=1"]
    row = table.iloc[1]
    assert row["greedy_mean"] == pytest.approx(60.0) and row["sample_mean"] == pytest.approx(30.0)
    assert row["greedy_std"] == pytest.approx(100 * 0.1414213, rel=1e-4) and row["seeds"] == 2
    assert row["paper_acc"] == 54.8 and table.iloc[0]["paper_acc"] == 33.1


def test_countdown_validity_plot_writes_files(tmp_path):
    from nextlat.benchmarks.countdown.report import plot_countdown_validity

    recs = [countdown_record("gpt", None, 0, 0.2, [0.9, 0.5, 0.2]),
            countdown_record("mtp", 4, 0, 0.3, [0.9, 0.6, 0.3]),
            countdown_record("mtp", 4, 1, 0.3, [0.8, 0.6, 0.4])]
    png, pdf = plot_countdown_validity(recs, tmp_path / "f.png", tmp_path / "f.pdf")
    assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF"


def manhattan_record(method, horizon, seed, valid, rank, benchmark="manhattan"):
    return {"run": {"run_id": f"rw_{method}_s{seed}", "benchmark": benchmark, "task": "rw",
                    "method": method, "horizon": horizon, "seed": seed},
            "metrics": {"next_token_valid": 1.0, "valid_trajectories": valid, "compression": 0.5,
                        "effective_rank": rank, "detour_robustness": 0.8},
            "params": {"training": 10, "inference": 10}}


def test_manhattan_table_percentages_oracle_row_and_paper_columns():
    from nextlat.benchmarks.manhattan.report import manhattan_table

    recs = [manhattan_record("nextlat", 4, 0, 0.9, 50.0), manhattan_record("nextlat", 4, 1, 0.7, 70.0),
            manhattan_record("gpt", None, 0, 0.5, 100.0),
            manhattan_record("gpt", None, 0, 0.0, 1.0, benchmark="pathstar")]  # ignored
    oracle = {"run": {"run_id": "oracle", "benchmark": "manhattan", "method": "true world model",
                      "horizon": None, "seed": 0},
              "metrics": {"next_token_valid": 1.0, "valid_trajectories": 1.0, "compression": 1.0,
                          "effective_rank": None, "detour_robustness": 1.0}}
    t = manhattan_table(recs, [oracle])
    assert list(t["method"]) == ["gpt", "nextlat d=4", "true world model"]
    row = t.set_index("method").loc["nextlat d=4"]
    assert row["valid_mean"] == pytest.approx(80.0)          # percent, mean of 90 and 70
    assert row["valid_std"] == pytest.approx(math.sqrt(200))  # sample std of (90, 70)
    assert row["rank_mean"] == pytest.approx(60.0)            # rank is not scaled
    assert row["compression_mean"] == pytest.approx(0.5)      # compression is a fraction, as in the paper
    assert row["paper_valid"] == 98.7 and row["paper_horizon"] == 8
    true = t.set_index("method").loc["true world model"]
    assert true["valid_mean"] == 100.0 and pd.isna(true["rank_mean"]) and true["paper_compression"] == 1.0
    assert pd.isna(t.set_index("method").loc["gpt", "paper_horizon"])
