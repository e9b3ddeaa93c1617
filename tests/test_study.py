"""Sweeps (a grid over the whole run matrix), scales that extend scales, and the study that
sets a sweep's points side by side."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nextlat import config as nlconfig
from nextlat.config import ConfigError
from nextlat.report.tables import records_frame
from nextlat.runs import expand_runs
from nextlat.stages.claims import benchmark_claims, by_variant, gather_claims
from nextlat.stages.evaluate import run_labels
from nextlat.stages.study import study, study_frame

RAW = yaml.safe_load(open("config.yaml"))


def smoke_with(**pathstar):
    raw = nlconfig.deep_merge(RAW, {"scales": {"smoke": {"benchmarks": {"pathstar": pathstar}}}})
    return nlconfig.resolve(raw, "smoke")


WIDTH = {"w32": {}, "w48": {"model": {"n_embd": 48}, "method": {"nextlat": {"dyn_hidden": 48}}}}
BUDGET = {"b1": {}, "b2": {"train": {"steps": 40, "batch_size": 8}}}


# --- the run matrix ------------------------------------------------------------------------
def test_a_sweep_runs_every_method_once_per_point_of_the_product():
    runs = expand_runs(smoke_with(sweep={"width": WIDTH, "budget": BUDGET}), "pathstar")
    plain = expand_runs(smoke_with(), "pathstar")
    assert len(runs) == 4 * len(plain)
    points = {r.variant for r in runs.values()}
    assert points == {"w32-b1", "w32-b2", "w48-b1", "w48-b2"}
    wide_long = runs["g2x4_nextlat-d2_w48-b2_s0"].config
    assert wide_long["model"]["n_embd"] == 48 and wide_long["method"]["dyn_hidden"] == 48
    assert wide_long["train"]["steps"] == 40 and wide_long["train"]["batch_size"] == 8
    assert wide_long["train"]["lr"] == plain["g2x4_nextlat-d2_s0"].config["train"]["lr"]  # the rest kept
    assert wide_long["sweep"] == {"width": "w48", "budget": "b2"}
    # the method override reaches only its method; every method gets the same model and budget
    gpt = runs["g2x4_gpt_w48-b2_s0"].config
    assert "dyn_hidden" not in gpt["method"] and gpt["model"]["n_embd"] == 48 and gpt["train"]["steps"] == 40
    # an empty point leaves the run as without a sweep, apart from its id and labels
    base = runs["g2x4_gpt_w32-b1_s0"].config
    same = plain["g2x4_gpt_s0"].config
    assert {k: v for k, v in base.items() if k not in ("run_id", "variant", "sweep")} == \
           {k: v for k, v in same.items() if k != "run_id"}


def test_without_a_sweep_run_configs_are_unchanged():
    runs = expand_runs(smoke_with(), "pathstar")
    assert all("variant" not in r.config and "sweep" not in r.config and r.variant == "" for r in runs.values())


@pytest.mark.parametrize("sweep, words", [
    ({"width": {"w1": {"model": {"n_embdd": 48}}}}, ["sweep.width.w1.model", "n_embdd"]),
    ({"width": {"w1": {"train": {"steps": 0}}}}, ["sweep.width.w1.train", "steps"]),
    ({"width": {"w1": {"method": {"cnn": {"x": 1}}}}}, ["sweep.width.w1.method", "cnn"]),
    ({"width": {"w1": {"method": {"nextlat": {"horizon": 3}}}}}, ["nextlat", "horizon"]),
    ({"width": {"w1": {}}, "budget": {"w1": {}}}, ["sweep", "w1", "twice"]),
    ({"width": {"W-1": {}}}, ["W-1"]),
    ({"width": {"w1": {"data": {"n_train": 5}}}}, ["data"]),
])
def test_a_bad_sweep_is_refused_with_its_path(sweep, words):
    with pytest.raises(ConfigError) as err:
        expand_runs(smoke_with(sweep=sweep), "pathstar")
    assert all(w in str(err.value) for w in words), str(err.value)


@pytest.mark.parametrize("setting, words", [
    ({"dyn_hiden": 8}, ["sweep.a.method.nextlat", "dyn_hiden"]),
    ({"dyn_hidden": 40.7}, ["sweep.a.method.nextlat.dyn_hidden", "integer"]),
    ({"lambda_kl": True}, ["sweep.a.method.nextlat.lambda_kl", "number"]),
])
def test_a_sweep_method_setting_is_checked_by_its_methods_schema(setting, words):
    with pytest.raises(ConfigError) as err:
        expand_runs(smoke_with(sweep={"w": {"a": {"method": {"nextlat": setting}}}}), "pathstar")
    assert all(w in str(err.value) for w in words), str(err.value)


def test_a_sweep_may_not_set_what_the_methods_entry_grids_over():
    methods = [{"name": "gpt"}, {"name": "nextlat", "horizon": 2, "dyn_hidden": 32, "grid": {"lambda_kl": [0.1, 1.0]}}]
    with pytest.raises(ConfigError, match=r"sets \['lambda_kl'\]"):
        expand_runs(smoke_with(methods=methods, sweep={"w": {"a": {"method": {"nextlat": {"lambda_kl": 5.0}}}}}),
                    "pathstar")
    runs = expand_runs(smoke_with(methods=methods, sweep={"w": {"a": {"method": {"nextlat": {"dyn_hidden": 48}}}}}),
                       "pathstar")
    assert {r.config["method"]["lambda_kl"] for r in runs.values() if r.method == "nextlat"} == {0.1, 1.0}


@pytest.mark.parametrize("name", [1000, True])
def test_sweep_value_names_must_be_words(name):
    with pytest.raises(ConfigError, match="value names must be words"):
        expand_runs(smoke_with(sweep={"steps": {name: {}}}), "pathstar")


@pytest.mark.parametrize("name", ["s1000", "s0"])
def test_sweep_value_names_may_not_read_as_seeds(name):
    with pytest.raises(ConfigError, match=r"sweep\.steps.*read as seeds"):
        expand_runs(smoke_with(sweep={"steps": {name: {}}}), "pathstar")
    assert "g2x4_gpt_steps1k_s0" in expand_runs(smoke_with(sweep={"steps": {"steps1k": {}}}), "pathstar")


def test_a_sweep_combines_with_run_overrides_by_the_swept_id():
    runs = expand_runs(smoke_with(sweep={"width": WIDTH},
                                  run_overrides={"g2x4_gpt_w48_s0": {"train": {"lr": 0.5}}}), "pathstar")
    assert runs["g2x4_gpt_w48_s0"].config["train"]["lr"] == 0.5
    assert runs["g2x4_gpt_w48_s0"].config["model"]["n_embd"] == 48
    assert runs["g2x4_gpt_w32_s0"].config["train"]["lr"] != 0.5


# --- scales that extend scales ------------------------------------------------------------------
def test_a_scale_extends_another_and_overrides_it():
    raw = nlconfig.deep_merge(RAW, {"scales": {"mine": {"extends": "smoke",
                                                        "benchmarks": {"pathstar": {"train": {"steps": 7}}}}}})
    mine, smoke = nlconfig.resolve(raw, "mine"), nlconfig.resolve(raw, "smoke")
    assert mine["benchmarks"]["pathstar"]["train"]["steps"] == 7
    assert mine["benchmarks"]["pathstar"]["model"] == smoke["benchmarks"]["pathstar"]["model"]
    assert mine["benchmarks"]["manhattan"] == smoke["benchmarks"]["manhattan"]
    assert mine["scale"] == "mine" and "extends" not in mine


@pytest.mark.parametrize("scales, words", [
    ({"a": {"extends": "b"}, "b": {"extends": "a"}}, ["cycle"]),
    ({"a": {"extends": "a"}}, ["cycle"]),
    ({"a": {"extends": "nowhere"}}, ["scales.a.extends", "nowhere"]),
    ({"a": {"extends": ["smoke"]}}, ["scales.a.extends", "one scale"]),
])
def test_a_bad_extends_is_named(scales, words):
    raw = nlconfig.deep_merge(RAW, {"scales": scales})
    with pytest.raises(ConfigError) as err:
        nlconfig.resolve(raw, "a")
    assert all(w in str(err.value) for w in words)


def test_the_study_scale_extends_default():
    study_cfg, default = nlconfig.resolve(RAW, "study"), nlconfig.resolve(RAW, "default")
    ps = study_cfg["benchmarks"]["pathstar"]
    assert ps["sweep"] and ps["data"] == default["benchmarks"]["pathstar"]["data"]
    assert ps["train"] == default["benchmarks"]["pathstar"]["train"]  # its base point is the default's run
    runs = expand_runs(study_cfg, "pathstar")
    base = {r.run_id: r for r in runs.values() if r.variant == "base"}
    for run in base.values():
        same = expand_runs(default, "pathstar")[run.run_id.replace("_base", "")].config
        assert {k: v for k, v in run.config.items() if k not in ("run_id", "variant", "sweep", "runtime")} == \
               {k: v for k, v in same.items() if k not in ("run_id", "runtime")}


# --- records, claims and the study ----------------------------------------------------------------
def _records(tmp_path, values: dict) -> tuple[list[str], dict]:
    """eval.json files of Path-Star runs at two points: {(variant, method, seed): solve}."""
    paths, variants = [], {}
    for (variant, method, seed), solve in values.items():
        horizon = 2 if method == "nextlat" else None
        run_id = f"g2x4_{method}{'-d2' if horizon else ''}_{variant}_s{seed}"
        cfg = {"run_id": run_id, "benchmark": "pathstar", "task": "g2x4", "seed": seed,
               "method": {"name": method, **({"horizon": horizon} if horizon else {})},
               "variant": variant, "sweep": {"size": variant}}
        acc = [1.0, solve, 1.0, 1.0]  # teacher-forced per position: the first decision is position 1
        rec = {"run": run_labels(cfg), "metrics": {"solve_rate/greedy": solve, "position_acc/teacher_forced": acc},
               "params": {"training": 1, "inference": 1}}
        path = tmp_path / "runs" / run_id / "eval.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(rec))
        paths.append(str(path))
        variants[run_id] = variant
    return paths, variants


VALUES = {("small", "gpt", 0): 0.50, ("small", "gpt", 1): 0.48, ("small", "nextlat", 0): 0.40,
          ("small", "nextlat", 1): 0.60, ("big", "gpt", 0): 0.50, ("big", "gpt", 1): 0.52,
          ("big", "nextlat", 0): 0.95, ("big", "nextlat", 1): 0.99}


def test_run_labels_carry_the_point_and_reports_refuse_to_pool_points(tmp_path):
    paths, _ = _records(tmp_path, VALUES)
    recs = [json.loads(Path(p).read_text()) for p in paths]
    assert recs[0]["run"]["variant"] == "small" and recs[0]["run"]["sweep/size"] == "small"
    with pytest.raises(ValueError, match="2 sweep variants"):
        records_frame(recs)
    assert len(records_frame([r for r in recs if r["run"]["variant"] == "big"])) == 4


def test_inputs_split_by_the_run_folder(tmp_path):
    paths, variants = _records(tmp_path, VALUES)
    parts = by_variant({"evals": paths, "code": ["nextlat/x.py"]}, variants)
    assert list(parts) == ["small", "big"]  # the sweep's order
    assert all(Path(p).parent.name.endswith(f"_{v}_s0") or Path(p).parent.name.endswith(f"_{v}_s1")
               for v, part in parts.items() for p in part["evals"])
    assert sum(len(p["evals"]) for p in parts.values()) == len(paths)
    assert all(p["code"] == ["nextlat/x.py"] for p in parts.values())  # not a run's file: every point
    assert by_variant({"evals": paths}, {}) == {"": {"evals": paths}}


def test_claims_and_study_per_point(tmp_path):
    paths, variants = _records(tmp_path, VALUES)
    (tmp_path / "pathstar").mkdir()
    claims_csv = tmp_path / "pathstar" / "claims.csv"
    claims = benchmark_claims("pathstar", {"evals": paths}, claims_csv, variants)
    assert set(claims["variant"]) == {"small", "big"}
    # "NextLat is no worse than GPT ... better on one": the rule, by hand, at each point
    # "NextLat is no worse than GPT on every graph and better on at least one", at each point:
    # small: NextLat 0.50 +- 0.14 vs GPT 0.49 +- 0.014, spreads overlap; big: 0.97 vs 0.51, apart
    row = claims[claims["claim"] == "nextlat_beats_gpt"].set_index("variant")["verdict"]
    assert row["small"] == "inconclusive" and row["big"] == "holds"

    out = {k: tmp_path / f"study.{k}" for k in ("csv", "md", "png", "pdf")}
    frame = study("pathstar", {"evals": paths, "claims": str(claims_csv)}, variants, claims_csv, out)
    solve = frame[frame["metric"] == "solve_rate/greedy"].set_index(["variant", "method"])
    for (variant, method), part in pd.Series(VALUES).groupby(level=[0, 1]):
        assert math.isclose(solve.loc[(variant, method), "mean"], part.mean())
        assert math.isclose(solve.loc[(variant, method), "std"], part.std(ddof=1))
        assert solve.loc[(variant, method), "n"] == 2
    first = frame[frame["metric"] == "first_decision/teacher_forced"].set_index(["variant", "method"])
    assert math.isclose(first.loc[("big", "nextlat"), "mean"], 0.97)  # position 1 of each record
    assert set(frame["sweep/size"]) == {"small", "big"}  # the axis' value per row
    assert set(frame["setting"]) == {"g2x4_gpt", "g2x4_nextlat-d2"}  # the run id without point and seed
    md = out["md"].read_text()
    claims_part = md.split("## The claims at each point")[1].split("## ")[0]
    assert "nextlat_beats_gpt" in claims_part and "| inconclusive | holds" in claims_part.replace("  ", " ")
    assert all(p.exists() and p.stat().st_size > 0 for p in out.values())

    gathered = gather_claims([claims_csv], ["pathstar"], "study", tmp_path / "all.csv", tmp_path / "all.md")
    assert list(gathered.columns)[0] == "variant"
    assert set(gathered.loc[gathered["benchmark"] == "pathstar", "variant"]) == {"small", "big"}
    assert set(gathered.loc[gathered["benchmark"] != "pathstar", "verdict"]) == {"not run"}


def test_a_study_refuses_to_pool_several_rows_of_one_run(tmp_path):
    """A grid's variants are settings of their own; rows that repeat a setting and seed (one per
    probe offset, say) cannot be averaged as seeds."""
    paths, variants = _records(tmp_path, {("small", "gpt", 0): 0.5, ("small", "gpt", 1): 0.4})
    frame = study_frame("pathstar", {"evals": paths}, variants)
    assert frame.loc[frame["metric"] == "solve_rate/greedy", "n"].tolist() == [2]
    from nextlat.stages import study as study_module
    df = pd.DataFrame({"run_id": ["t_gpt_small_s0"] * 2, "task": "t", "method": "gpt", "horizon": pd.NA,
                       "seed": 0, "ce": [1.0, 2.0]})
    with pytest.raises(ValueError, match="several rows per setting and seed"):
        study_module._settings(df, "small")


def test_a_record_outside_every_run_folder_is_refused(tmp_path):
    paths, variants = _records(tmp_path, VALUES)
    stray = tmp_path / "elsewhere" / "eval.json"
    stray.parent.mkdir()
    stray.write_text(Path(paths[0]).read_text())
    with pytest.raises(ValueError, match="no run folder"):
        by_variant({"evals": paths + [str(stray)]}, variants)


def test_a_study_needs_a_sweep(tmp_path):
    paths, _ = _records(tmp_path, {("small", "gpt", 0): 0.5})
    with pytest.raises(ValueError, match="no sweep"):
        study_frame("pathstar", {"evals": paths}, {})


def test_at_a_swept_scale_all_builds_the_study_not_the_pooling_reports(tmp_path):
    over = tmp_path / "over.yaml"
    over.write_text(yaml.safe_dump({"scales": {"tiny": {"extends": "smoke", "benchmarks": {
        "pathstar": {"sweep": {"width": WIDTH}}}}}}))
    out = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "all", "-n", "--configfile", str(over),
                          "--config", "scale=tiny", f"results={tmp_path / 'r'}"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    plan = out.stdout
    assert "rule benchmark_study:" in plan and "rule fig6:" not in plan
    assert "rule table1:" in plan  # an unswept benchmark keeps its reports
    assert f"{tmp_path / 'r'}/tiny/pathstar/study.csv" in plan
