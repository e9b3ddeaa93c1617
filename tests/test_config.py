"""Config validation and the run matrix."""
import pytest
import yaml

from nextlat import config as nlconfig
from nextlat.config import ConfigError
from nextlat.runs import eval_horizon, expand_runs

RAW = yaml.safe_load(open("config.yaml"))


def load(scale="smoke", **overrides):
    return nlconfig.resolve(RAW, scale, overrides)


@pytest.mark.parametrize("scale", sorted(RAW["scales"]))
def test_every_scale_validates_and_expands(scale):
    cfg = load(scale)
    runs = expand_runs(cfg)
    assert runs and all(r.config["model"]["vocab_size"] > 0 for r in runs.values())


def test_paper_scale_is_table5():
    ps = load("paper")["benchmarks"]["pathstar"]
    want = {"steps": 20000, "batch_size": 512, "lr": 5e-4, "weight_decay": 0.1, "grad_clip": 100}
    assert {k: ps["train"][k] for k in want} == want
    assert (ps["model"]["n_layer"], ps["model"]["n_head"], ps["model"]["n_embd"]) == (12, 6, 384)
    assert ps["tasks"] == ["g2x10", "g5x5", "g7x7"] and len(ps["seeds"]) == 5
    nextlat = next(m for m in ps["methods"] if m["name"] == "nextlat")
    assert nextlat["dyn_hidden"] == 384 and nextlat["lambda_kl"] == nextlat["lambda_next_h"] == 1.0
    horizons = {r.task: r.horizon for r in expand_runs(load("paper"), "pathstar").values() if r.method == "nextlat"}
    assert horizons == {"g2x10": 8, "g5x5": 3, "g7x7": 5}  # d = l - 2


@pytest.mark.parametrize("override, key", [
    ({"benchmarks": {"pathstar": {"train": {"lrr": 1}}}}, "benchmarks.pathstar.train.lrr"),
    ({"runtime": {"precison": "bf16-mixed"}}, "runtime.precison"),
    ({"bogus": 1}, "bogus"),
    ({"benchmarks": {"manhattan": {"graph": {"synthetic": {"avenuez": 3}}}}}, "benchmarks.manhattan.graph.synthetic.avenuez"),
    ({"benchmarks": {"manhattan": {"eval": {"detour": {"pp": 0.5}}}}}, "benchmarks.manhattan.eval.detour.pp"),
])
def test_unknown_key_fails_with_its_name(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load(**override)


@pytest.mark.parametrize("override, where", [
    ({"runtime": {"devices": 0}}, "runtime.devices"),
    ({"benchmarks": {"pathstar": {"methods": [{"name": "gtp"}]}}}, "benchmarks.pathstar.methods.0.name"),
    ({"benchmarks": {"pathstar": {"tasks": ["star5"]}}}, "benchmarks.pathstar.tasks.0"),
])
def test_bad_value_fails_with_its_path(override, where):
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        load(**override)


def test_unknown_scale_is_named():
    with pytest.raises(ConfigError, match="unknown scale 'huge'"):
        load("huge")


def test_schema_defaults_are_filled():
    train = load()["benchmarks"]["pathstar"]["train"]
    assert train["betas"] == [0.9, 0.95] and train["schedule"]["name"] == "constant"


def test_grid_horizon_list_and_run_ids():
    cfg = load(benchmarks={"pathstar": {"methods": [
        {"name": "gpt"},
        {"name": "nextlat", "horizon": [1, "l-2"], "grid": {"lambda_kl": [0.1, 1.0]}},
    ], "seeds": [0, 1]}})
    ids = sorted(expand_runs(cfg, "pathstar"))
    assert "g2x4_gpt_s0" in ids and "g2x4_nextlat-d1-lambda_kl0.1_s1" in ids
    assert len(ids) == 2 + 2 * 2 * 2
    run = expand_runs(cfg, "pathstar")["g2x4_nextlat-d2-lambda_kl1.0_s0"]
    assert run.config["method"] == {"name": "nextlat", "lambda_kl": 1.0, "horizon": 2}


def test_word_valued_grid_keys_join_with_an_underscore():
    cfg = load(benchmarks={"pathstar": {"methods": [
        {"name": "nextlat", "horizon": 2, "grid": {"stop_grad": ["none", "head"], "lambda_kl": [0.5]}}]}})
    runs = expand_runs(cfg, "pathstar")
    assert sorted(runs) == ["g2x4_nextlat-d2-lambda_kl0.5-stop_grad_head_s0",
                            "g2x4_nextlat-d2-lambda_kl0.5-stop_grad_none_s0"]
    assert runs["g2x4_nextlat-d2-lambda_kl0.5-stop_grad_none_s0"].config["method"]["stop_grad"] == "none"


def test_run_override_changes_only_that_run():
    base = expand_runs(load())
    cfg = load(benchmarks={"pathstar": {"run_overrides": {"g2x4_gpt_s0": {"train": {"lr": 0.01}}}}})
    runs = expand_runs(cfg)
    changed = [r for r in runs if runs[r].config != base[r].config]
    assert changed == ["g2x4_gpt_s0"] and runs["g2x4_gpt_s0"].config["train"]["lr"] == 0.01


def test_bad_run_override_is_refused():
    with pytest.raises(ConfigError, match="unknown run"):
        expand_runs(load(benchmarks={"pathstar": {"run_overrides": {"g9x9_gpt_s0": {}}}}))
    with pytest.raises(ConfigError, match="lrr"):
        expand_runs(load(benchmarks={"pathstar": {"run_overrides": {"g2x4_gpt_s0": {"train": {"lrr": 1}}}}}))


def test_horizon_expressions():
    assert eval_horizon("l-2", {"d": 5, "l": 7}) == 5
    assert eval_horizon(3, {}) == 3
    with pytest.raises(ConfigError, match=">= 1"):
        eval_horizon("l-2", {"d": 2, "l": 2})
    with pytest.raises(ConfigError, match="only"):
        eval_horizon("__import__('os')", {"l": 3})


def test_runtime_is_not_part_of_model_identity():
    a = expand_runs(load())
    b = expand_runs(load(runtime={"precision": "bf16-mixed"}))
    for rid in a:
        assert {k: v for k, v in a[rid].config.items() if k != "runtime"} == \
               {k: v for k, v in b[rid].config.items() if k != "runtime"}


def test_countdown_paper_matrix_is_figure4():
    runs = expand_runs(load("paper"), "countdown")
    settings = sorted({(r.method, r.horizon) for r in runs.values()}, key=str)
    assert len(settings) == 11 and len(runs) == 33  # GPT, BST, MTP/JTP/NextLat x d=1,4,8; 3 seeds
    nextlat = runs["cd4_nextlat-d4_s0"].config
    assert nextlat["method"]["lambda_next_h"] == 2.0 and nextlat["method"]["dyn_hidden"] == 768
    assert nextlat["model"]["vocab_size"] == 10008 and nextlat["model"]["block_size"] == 31


def test_manhattan_paper_matrix_is_table1():
    mh = load("paper")["benchmarks"]["manhattan"]
    assert (mh["model"]["n_layer"], mh["model"]["n_head"], mh["model"]["n_embd"]) == (48, 8, 384)
    assert (mh["train"]["steps"], mh["train"]["batch_size"], mh["train"]["lr"]) == (400000, 256, 1e-4)
    assert mh["train"]["grad_clip"] is None and mh["train"]["weight_decay"] == 0.01
    runs = expand_runs(load("paper"), "manhattan")
    assert sorted(runs) == ["rw_gpt_s0", "rw_jtp-d8_s0", "rw_mtp-d8_s0", "rw_nextlat-d8_s0"]  # no BST
    nextlat = runs["rw_nextlat-d8_s0"].config
    assert nextlat["method"]["lambda_kl"] == 0.1 and nextlat["method"]["dyn_hidden"] == 1536
    assert nextlat["model"]["block_size"] == 256 and nextlat["model"]["eos_id"] == 1
    assert nextlat["model"]["vocab_size"] == 5000 + 10  # osm: max_nodes plus pad, end, 8 directions


def test_manhattan_vocabulary_is_sized_before_the_graph_exists():
    from nextlat.benchmarks.manhattan.data import has_coords as manhattan_has_coords
    from nextlat.benchmarks.manhattan.streets import synthetic_city

    cfg = load("smoke", benchmarks={"manhattan": {"graph": {"synthetic": {"avenues": 5, "streets": 7}}}})
    run = expand_runs(cfg, "manhattan")["rw_gpt_s0"]
    assert run.config["model"]["vocab_size"] == synthetic_city(5, 7).n_nodes + 10 == 45
    assert manhattan_has_coords({"source": "synthetic"}) and manhattan_has_coords({"source": "osm"})
    assert not manhattan_has_coords({"source": "pickle", "pickle": {"neighbors": "n.pkl"}})
    assert manhattan_has_coords({"source": "pickle", "pickle": {"coords": "xy.csv"}})
