"""bench/scale_cost.py: a scale's training FLOPs from the runs' real steps, and times from a
calibration on a built scale."""
import importlib.util
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nextlat import config as nlconfig
from nextlat.models.transformer import ModelConfig
from nextlat.runs import expand_runs
from nextlat.training.flops import gpt_step_flops

ROOT = Path(__file__).resolve().parents[1]
RAW = yaml.safe_load((ROOT / "config.yaml").read_text())
# Path-Star alone: counting a step of every smoke run (the 50,257-id FineWeb head too) is slow
ONLY_PATHSTAR = {"benchmarks": {b: {"enabled": b == "pathstar"} for b in RAW["benchmarks"]}}


def smoke_pathstar() -> dict:
    return nlconfig.resolve(RAW, "smoke", ONLY_PATHSTAR)


@pytest.fixture(scope="module")
def scale_cost():
    spec = importlib.util.spec_from_file_location("scale_cost", ROOT / "bench" / "scale_cost.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_gpt_runs_flops_are_the_closed_form_times_rows_and_steps(scale_cost):
    cfg = smoke_pathstar()
    df = scale_cost.frame(cfg).set_index("run_id")
    run = expand_runs(cfg)["g2x4_gpt_s0"]
    train, model = run.config["train"], ModelConfig.from_dict(run.config["model"])
    step = gpt_step_flops(model, int(train["batch_size"]), model.block_size - 1)
    assert math.isclose(df.loc["g2x4_gpt_s0", "step_gflop"] * 1e9, step, rel_tol=1e-9)
    assert math.isclose(df.loc["g2x4_gpt_s0", "pflop"] * 1e15, step * int(train["steps"]), rel_tol=1e-9)
    # NextLat rolls its dynamics out d steps on top of GPT's step: it costs more
    assert df.loc["g2x4_nextlat-d2_s0", "step_gflop"] > df.loc["g2x4_gpt_s0", "step_gflop"]


def test_cpu_time_is_the_calibrated_rate_per_benchmark(scale_cost, tmp_path, capsys):
    """A built scale whose one run took 10 CPU seconds: the rate is its FLOPs / 10 s, and a scale
    with twice the steps costs twice the time per run."""
    cfg = smoke_pathstar()
    run = expand_runs(cfg)["g2x4_gpt_s0"]
    built = tmp_path / "smoke"
    (built / "pathstar" / "runs" / run.run_id).mkdir(parents=True)
    (built / "pathstar" / "runs" / run.run_id / "config.yaml").write_text(yaml.safe_dump(run.config))
    (built / "benchmarks" / "train" / "pathstar").mkdir(parents=True)
    pd.DataFrame([{"s": 12.0, "cpu_time": 10.0}]).to_csv(
        built / "benchmarks" / "train" / "pathstar" / f"{run.run_id}.tsv", sep="\t", index=False)
    measured = scale_cost.built_runs(built, cfg)
    assert list(measured["run_id"]) == [run.run_id] and measured["cpu_s"].iloc[0] == 10.0

    raw = nlconfig.deep_merge(RAW, ONLY_PATHSTAR)
    raw["benchmarks"]["countdown"]["enabled"] = True  # a benchmark the calibration did not build
    raw["scales"]["double"] = {"extends": "smoke", "benchmarks": {"pathstar": {"train": {"steps": 40}}}}
    conf = tmp_path / "config.yaml"
    conf.write_text(yaml.safe_dump(raw))
    per = scale_cost.main(["--config", str(conf), "--scale", "double", "--calibrate", str(built),
                           "--calibrate-scale", "smoke", "--cores", "1", "--csv", str(tmp_path / "runs.csv")])
    runs = pd.read_csv(tmp_path / "runs.csv").set_index("run_id")
    assert math.isclose(runs.loc[run.run_id, "cpu_core_s"], 10.0 * 40 / 20, rel_tol=1e-9)  # smoke trains 20 steps
    assert math.isnan(per.loc["countdown", "cpu_h"])  # not calibrated: no time, and no total
    assert math.isnan(per.loc["total", "cpu_h"])
    # the GPU time of a tiny model is the per-step floor
    assert math.isclose(runs.loc[run.run_id, "gpu_s"], 40 * 0.025, rel_tol=1e-9)
