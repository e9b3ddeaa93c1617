"""Settings that would fail only once training starts are refused by `nextlat check` and at
plan time (expand_runs), with the key named."""
from __future__ import annotations

from pathlib import Path

import pytest

from nextlat import config as nlconfig
from nextlat.cli import main
from nextlat.config import ConfigError
from nextlat.runs import expand_runs

ROOT = Path(__file__).resolve().parents[1]


def runs_with(**overrides):
    """expand_runs on the smoke config with ``overrides`` merged into every benchmark block
    named in it (dicts: {benchmark: {...}})."""
    return expand_runs(nlconfig.load(ROOT / "config.yaml", "smoke", {"benchmarks": overrides}))


BENCH = "pathstar"  # any benchmark with the default train/test layout


@pytest.mark.parametrize("override, message", [
    ({"model": {"n_head": 3}}, r"model \(run .*\): model.n_embd=.* not divisible by model.n_head=3"),
    ({"train": {"batch_size": 10**6}}, r"train.batch_size=1000000 exceeds the train split"),
    ({"train": {"micro_batch_size": 3}}, r"train.micro_batch_size=3 must divide the per-device batch"),
    ({"train": {"schedule": {"name": "wsd", "warmup_steps": 10**6}}}, r"warmup_steps=1000000 must lie in"),
    ({"train": {"schedule": {"name": "wsd", "warmup_steps": 5, "decay_steps": 10**6}}}, r"exceed train.steps"),
    ({"seeds": [0, 0]}, r"benchmarks.pathstar.seeds lists a seed twice"),
])
def test_training_errors_are_caught_at_check_time(override, message):
    with pytest.raises(ConfigError, match=message):
        runs_with(**{BENCH: override})


def test_run_override_errors_name_the_override():
    cfg = nlconfig.load(ROOT / "config.yaml", "smoke")
    run_id = next(r for r in expand_runs(cfg) if r.startswith("g2x4_gpt"))
    with pytest.raises(ConfigError, match=rf"run_overrides.{run_id}.train.micro_batch_size"):
        runs_with(**{BENCH: {"run_overrides": {run_id: {"train": {"micro_batch_size": 3}}}}})


def test_manhattan_pickle_source_is_checked_at_check_time(tmp_path):
    with pytest.raises(ConfigError, match="graph.pickle.neighbors: the pickle source needs"):
        runs_with(manhattan={"graph": {"source": "pickle"}, "data": {"pickups": "uniform"}})
    with pytest.raises(ConfigError, match=r"graph.pickle.neighbors: file .*nope.pkl does not exist"):
        runs_with(manhattan={"graph": {"source": "pickle", "pickle": {"neighbors": str(tmp_path / "nope.pkl")}},
                             "data": {"pickups": "uniform"}})


def test_cli_check_reports_the_error_in_one_line(capsys):
    assert main(["check", "--config", str(ROOT / "config.yaml"), "--scale", "smoke",
                 "--set", "benchmarks.pathstar.model.n_head=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nextlat: error: ") and "n_head=3" in err and "Traceback" not in err


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([*args, "--config", str(ROOT / "config.yaml"), "--scale", "smoke"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_names_unknown_benchmarks_tasks_and_scale_overrides(capsys):
    code, _, err = run_cli(capsys, "data", "pathstr", "g2x4")
    assert code == 2 and "unknown benchmark 'pathstr'" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "data", "pathstar", "g5x5")
    assert code == 2 and "has no task 'g5x5'" in err
    code, _, err = run_cli(capsys, "check", "--set", "scale=paper")
    assert code == 2 and "use --scale" in err


def test_cli_stop_after_says_how_to_resume(capsys, tmp_path):
    cfg = nlconfig.load(ROOT / "config.yaml", "smoke")
    run = next(r for r in expand_runs(cfg).values() if r.benchmark == BENCH and r.method == "gpt")
    data = tmp_path / "data"
    assert run_cli(capsys, "data", BENCH, run.task, "--out", str(data))[0] == 0
    import yaml

    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run.config))
    code = main(["train-config", str(tmp_path / "run.yaml"), "--data", str(data), "--out", str(tmp_path / "run"),
                 "--stop-after", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "stopped after 2 step(s)" in out and "resume" in out and "None" not in out


def test_swapped_manhattan_pickles_say_which_file_is_which(tmp_path):
    import pickle

    from nextlat.benchmarks.manhattan.streets.pickles import from_pickle

    neighbors = {(1, "N"): 2, (2, "S"): 1}
    turns = {1: ["N"], 2: ["S"]}
    (tmp_path / "n.pkl").write_bytes(pickle.dumps(neighbors))
    (tmp_path / "t.pkl").write_bytes(pickle.dumps(turns))
    assert from_pickle(tmp_path / "n.pkl", tmp_path / "t.pkl").n_nodes == 2
    with pytest.raises(ValueError, match=r"neighbors=.*t\.pkl should map \(node, direction\).*swapped"):
        from_pickle(tmp_path / "t.pkl", tmp_path / "n.pkl")
    with pytest.raises(ValueError, match=r"turns=.*n\.pkl should map node -> list"):
        from_pickle(tmp_path / "n.pkl", tmp_path / "n.pkl")
