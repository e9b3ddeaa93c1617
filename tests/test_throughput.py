"""Training throughput (Table 4): the timing/FLOP rows, the stage, its plan-time checks and the report."""
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from nextlat.config import ConfigError
from nextlat.models.transformer import ModelConfig
from nextlat.report.throughput import throughput_frame
from nextlat.stages.throughput import batch_rows, check_throughput, throughput
from nextlat.training.throughput import StepRunner, method_label, parse_method, random_batch, throughput_rows

MODEL = {"n_layer": 1, "n_head": 2, "n_embd": 16, "pos_embedding": "rope", "mlp": "swiglu", "norm": "rms",
         "bias": False, "dropout": 0.0, "vocab_size": 48, "eos_id": 0, "block_size": 13}


def test_rows_compute_ratios_ideal_and_efficiency():
    methods = [{"name": "gpt"}, {"name": "nextlat", "horizon": 2}]
    times = {"gpt": [1.0, 2.0, 1.0], "nextlat d=2": [2.0, 2.0, 4.0]}
    params = {k: {"training": 10, "inference": 8} for k in times}
    rows = throughput_rows(methods, times, params, {"gpt": 100, "nextlat d=2": 125})
    nl = rows[1]
    assert nl["ratio_vs_gpt"] == pytest.approx(0.5)  # median of 0.5, 1.0, 0.25
    assert nl["ratio_best"] == pytest.approx(0.5)  # 1.0 / 2.0
    assert nl["ideal_ratio"] == pytest.approx(0.8)
    assert nl["efficiency"] == pytest.approx(0.5 / 0.8)
    assert nl["steps_per_s"] == pytest.approx(0.5) and nl["gflops_per_step"] == pytest.approx(125e-9)


def test_needed_flops_leave_out_the_checkpoint_recomputation():
    cfg = ModelConfig.from_dict(MODEL)
    batch = random_batch(cfg, 2, 12, "cpu")
    runner = StepRunner(cfg, {"name": "bst", "pair_batch_size": 8}, "cpu")
    from nextlat.training.flops import step_flops

    runner.objective.checkpoint_pairs = False
    plain = step_flops(runner.objective, batch)
    assert plain["recomputed"] == 0
    runner.objective.checkpoint_pairs = True  # as at scale, where the activations pass the budget
    checkpointed = step_flops(runner.objective, batch)
    assert checkpointed["total"] > plain["total"]  # the pair head's forward runs twice
    assert runner.needed_flops(batch) == plain["total"]  # counted without dropping the checkpointing


def test_mtp_memory_efficient_heads_need_what_plain_heads_do():
    cfg = ModelConfig.from_dict(MODEL)
    batch = random_batch(cfg, 2, 12, "cpu")
    plain = StepRunner(cfg, {"name": "mtp", "horizon": 2}, "cpu").needed_flops(batch)
    saving = StepRunner(cfg, {"name": "mtp", "horizon": 2, "memory_efficient": True}, "cpu")
    from nextlat.training.flops import step_flops

    assert step_flops(saving.objective, batch)["recomputed"] > 0
    assert saving.needed_flops(batch) == plain


def test_method_specs():
    assert parse_method("nextlat:2") == {"name": "nextlat", "horizon": 2}
    assert parse_method("bst", bst_subsample=0.1) == {"name": "bst", "subsample_rate": 0.1}
    assert method_label({"name": "mtp", "horizon": 8}) == "mtp d=8" and method_label({"name": "gpt"}) == "gpt"
    with pytest.raises(ValueError, match="unknown method 'gtp'"):
        parse_method("gtp")


def _bench(methods, rows=None):
    return {"train": {"batch_size": 8, "micro_batch_size": None},
            "throughput": {"enabled": True, "rows": rows, "rounds": 1, "steps": 1, "warmup": 0, "methods": methods}}


@pytest.mark.parametrize("methods, message", [
    ([{"name": "nextlat"}], "must include {name: gpt}"),
    ([{"name": "gpt"}, {"name": "gtp"}], r"throughput.methods\[1\].name='gtp' is not a method"),
    ([{"name": "gpt"}, {"name": "mtp", "horizon": 2, "lamda_mtp": 1}], r"methods\[1\]: unknown key 'lamda_mtp'"),
    ([{"name": "gpt"}, {"name": "jtp", "horizon": 20}], r"methods\[1\] \(jtp\): horizon 20 needs rows"),
    ([{"name": "gpt"}, {"name": "mtp", "horizon": 1}, {"name": "mtp", "horizon": 1}], "lists a method twice"),
])
def test_plan_time_checks_name_the_key(methods, message):
    with pytest.raises(ConfigError, match=message):
        check_throughput("fineweb", _bench(methods), row_len=13)


def test_batch_rows_default_to_one_forward_pass():
    assert batch_rows(_bench([{"name": "gpt"}])) == 8
    assert batch_rows(_bench([{"name": "gpt"}], rows=32)) == 32
    cfg = _bench([{"name": "gpt"}])
    cfg["train"]["micro_batch_size"] = 2
    assert batch_rows(cfg) == 2


def test_stage_writes_every_method_and_the_table(tmp_path, one_thread_module):
    methods = [{"name": "gpt"}, {"name": "nextlat", "horizon": 1}, {"name": "jtp", "horizon": 2}]
    settings = {"rounds": 2, "steps": 1, "warmup": 1, "methods": methods}
    out = throughput(MODEL, settings, rows=2, runtime={"accelerator": "cpu"}, out_json=tmp_path / "t.json", threads=1)
    assert [r["method"] for r in out["throughput"]] == ["gpt", "nextlat d=1", "jtp d=2"]
    assert out["seq_len"] == 12 and out["rows"] == 2 and len(out["raw_seconds_per_step"]["gpt"]) == 2
    gpt, nl = out["throughput"][0], out["throughput"][1]
    assert gpt["ideal_ratio"] == pytest.approx(1.0) and 0 < nl["ideal_ratio"] < 1
    assert nl["params_training"] > nl["params_inference"] == gpt["params_inference"]  # p_psi: training only

    from nextlat.benchmarks.fineweb import paper, throughput_report

    outputs = {"csv": str(tmp_path / "t4.csv"), "md": str(tmp_path / "t4.md")}
    throughput_report.table4({"record": str(tmp_path / "t.json")}, outputs, {})
    df = pd.read_csv(outputs["csv"])
    assert list(df["model"]) == ["GPT", "JTP d=2", "NextLat d=1"]
    nl_row = df[df["model"] == "NextLat d=1"].iloc[0]
    assert nl_row["paper_ratio"] == pytest.approx(3.09 / 3.09)
    assert df[df["model"] == "JTP d=2"].iloc[0]["paper_steps_per_s"] == paper.PAPER_TABLE4[("jtp", 2)]["steps_per_s"]
    md = Path(outputs["md"]).read_text()
    assert "(1.32B)" in md and "FlopCounterMode" in md and "2 rows x 12 tokens" in md


def test_frame_orders_gpt_first_then_the_papers_method_order():
    rec = {"throughput": [
        {"name": n, "horizon": h, "params_training": 1, "params_inference": 1, "steps_per_s": 1.0,
         "steps_per_s_best": 1.0, "ratio_vs_gpt": 1.0, "ratio_best": 1.0, "gflops_per_step": 1.0,
         "ideal_ratio": 1.0, "efficiency": 1.0, "efficiency_best": 1.0}
        for n, h in [("nextlat", 2), ("mtp", 8), ("gpt", None), ("mtp", 1), ("bst", None)]]}
    labels = list(throughput_frame(rec, {})["model"])
    assert labels[0] == "GPT" and labels.index("MTP d=1") < labels.index("MTP d=8")


def test_rows_time_the_models_the_runs_train():
    """A throughput entry takes its method's settings from the benchmark's methods (p_psi's
    width, loss weights) unless it sets them itself; run-matrix keys are not settings."""
    from nextlat.stages.throughput import resolve_methods

    cfg = _bench([{"name": "gpt"}, {"name": "nextlat", "horizon": 8}, {"name": "mtp", "horizon": 1, "lambda_mtp": 0.5}])
    cfg["methods"] = [{"name": "gpt"}, {"name": "nextlat", "horizon": [1, 2], "dyn_hidden": 96, "lambda_kl": 2.0},
                      {"name": "mtp", "horizon": 2, "lambda_mtp": 1.0, "tasks": ["a"]}]
    gpt, nextlat, mtp = resolve_methods(cfg)
    assert gpt == {"name": "gpt"}
    assert nextlat == {"name": "nextlat", "horizon": 8, "dyn_hidden": 96, "lambda_kl": 2.0}
    assert mtp == {"name": "mtp", "horizon": 1, "lambda_mtp": 0.5}


def test_one_method_at_a_time_gives_the_same_rows(one_thread_module):
    cfg = ModelConfig.from_dict(MODEL)
    batch = random_batch(cfg, 2, 12, "cpu")
    methods = [{"name": "gpt"}, {"name": "jtp", "horizon": 1}]
    from nextlat.training.throughput import measure_throughput

    together, t1 = measure_throughput(cfg, methods, batch, "cpu", rounds=2, warmup=0)
    apart, t2 = measure_throughput(cfg, methods, batch, "cpu", rounds=2, warmup=0, interleave=False)
    for a, b in zip(together, apart):
        assert (a["method"], a["gflops_per_step"], a["params_training"]) == (b["method"], b["gflops_per_step"],
                                                                             b["params_training"])
    assert all(len(ts) == 2 for ts in t2.values())
