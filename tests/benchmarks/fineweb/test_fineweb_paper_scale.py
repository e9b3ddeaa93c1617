"""The paper-scale FineWeb-Edu config is the paper's 1.3B model (Table 4's parameter counts)."""
from pathlib import Path

import pytest
import torch

from nextlat import config as nlconfig
from nextlat.objectives.base import build_objective
from nextlat.runs import expand_runs

# Paper Table 4 (training / inference parameters, billions), d = 1 / 2 where it differs.
PAPER = {("gpt", None): (1.32, 1.32), ("nextlat", 1): (1.40, 1.32), ("mtp", 1): (1.37, 1.32),
         ("mtp", 2): (1.42, 1.32), ("jtp", 1): (1.34, 1.34)}


@pytest.fixture(scope="module")
def paper_runs():
    import yaml

    raw = yaml.safe_load((Path(__file__).parents[3] / "config.yaml").read_text())
    cfg = nlconfig.validate(nlconfig.merge_scale({**raw, "scale": "paper"}))
    return {(r.method, r.config["method"].get("horizon")): r for r in expand_runs(cfg).values()
            if r.benchmark == "fineweb"}


def test_paper_scale_is_the_papers_training_setup(paper_runs):
    run = paper_runs[("gpt", None)]
    model, train = run.config["model"], run.config["train"]
    assert (model["n_layer"], model["n_head"], model["n_embd"], model["vocab_size"]) == (22, 16, 2048, 50257)
    assert model["block_size"] - 1 == 1024  # the model reads 1024 tokens per row
    tokens = train["steps"] * train["batch_size"] * 1024
    assert abs(tokens - 100e9) / 100e9 < 1e-3  # 100B tokens
    sched = train["schedule"]
    assert sched["name"] == "wsd"
    per_step = train["batch_size"] * 1024
    assert abs(sched["warmup_steps"] * per_step - 1e9) < per_step  # 1B-token warmup
    assert abs(sched["decay_steps"] * per_step - 10e9) < per_step  # 10B-token decay
    assert {k for k in paper_runs} >= {("gpt", None), ("mtp", 1), ("mtp", 2), ("mtp", 4), ("jtp", 1), ("jtp", 2),
                                        ("jtp", 4), ("nextlat", 1), ("nextlat", 2)}


@pytest.mark.parametrize("key", sorted(PAPER, key=str))
def test_parameter_counts_match_table4(paper_runs, key):
    run = paper_runs[key]
    with torch.device("meta"):  # shapes only: 1.3B parameters never allocated
        counts = build_objective(run.config["model"], run.config["method"]).param_counts()
    train_b, infer_b = PAPER[key]
    assert round(counts["training"] / 1e9, 2) == train_b
    assert round(counts["inference"] / 1e9, 2) == infer_b
