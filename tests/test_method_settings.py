"""Typed method settings: one dataclass per objective, the schema generated from it, strict
method keys (entries, grids, run overrides) and horizons the sequences can hold."""
from dataclasses import FrozenInstanceError, dataclass, fields

import pytest
import yaml

from nextlat import config as nlconfig
from nextlat.config import ConfigError
from nextlat.objectives import available, build_objective, register
from nextlat.objectives.base import MethodSettings, Objective, settings_of
from nextlat.runs import expand_runs

from _tokens import model_cfg

RAW = yaml.safe_load(open("config.yaml"))


def load(scale="smoke", **overrides):
    return nlconfig.resolve(RAW, scale, overrides)


def pathstar(*methods, **more):
    return {"benchmarks": {"pathstar": {"methods": list(methods), **more}}}


# --- defaults: what each constructor read before the settings dataclasses -------------------
# (method.get(key, default) in the old constructors; changing one changes trained weights)
OLD_DEFAULTS = {
    "gpt": {},
    "nextlat": {"horizon": 1, "lambda_next_h": 1.0, "lambda_kl": 1.0, "latent_ce": False,
                # the loss ablations default to the paper's loss, the only one before them
                "terms": "both", "token_term": "kl", "stop_grad": "both"},
    "mtp": {"horizon": 1, "lambda_mtp": 1.0, "memory_efficient": False},
    "jtp": {"horizon": 1, "lambda_mtp": 1.0},
    "bst": {"min_gap": 1, "max_gap": None, "subsample_rate": 1.0, "pair_batch_size": 4096,
            "single_gap_mode": "eos"},
}


@pytest.mark.parametrize("name", available())
def test_defaults_equal_the_old_constructor_defaults(name):
    obj = build_objective(model_cfg(), {"name": name})
    cls = settings_of(name)
    assert type(obj.settings) is cls and obj.settings == cls()
    if name not in OLD_DEFAULTS:  # a newer method: its defaults are its own
        return
    for key, want in OLD_DEFAULTS[name].items():
        got = getattr(obj, key)
        assert got == want and type(got) is type(want), (name, key, got)
    # every setting is covered: the old defaults, or one checked below
    assert set(cls.keys()) - set(OLD_DEFAULTS[name]) <= {"dyn_hidden", "subsample_seed"}


def test_defaults_with_derived_values():
    m = model_cfg()
    nl = build_objective(m, {"name": "nextlat"})
    assert nl.settings.dyn_hidden is None and nl.dynamics.mlp[0].out_features == m["n_embd"]
    bst = build_objective(m, {"name": "bst"})
    assert bst.settings.subsample_seed is None and int(bst.subsample_seed) >= 0  # drawn from the RNG


def test_settings_coerce_like_the_old_constructors():
    obj = build_objective(model_cfg(), {"name": "nextlat", "horizon": 2.0, "lambda_kl": 1, "latent_ce": 1})
    assert (obj.horizon, obj.lambda_kl, obj.latent_ce) == (2, 1.0, True)
    assert type(obj.horizon) is int and type(obj.lambda_kl) is float and obj.latent_ce is True
    bst = build_objective(model_cfg(), {"name": "bst", "max_gap": -1, "subsample_seed": 7})
    assert bst.max_gap is None and int(bst.subsample_seed) == 7  # -1 = every gap, as before


def test_method_dict_is_kept_as_given():
    meth = {"name": "mtp", "horizon": 2}
    obj = build_objective(model_cfg(), meth)
    assert obj.method_cfg == meth == {"name": "mtp", "horizon": 2}  # no defaults injected


@pytest.mark.parametrize("name, key", [("gpt", "lambda_kl"), ("nextlat", "lamda_kl"), ("mtp", "lambda_kl"),
                                       ("bst", "horizon")])
def test_constructor_refuses_unknown_keys(name, key):
    with pytest.raises(ValueError, match=f"'{key}' for method {name}; {name} accepts"):
        build_objective(model_cfg(), {"name": name, key: 1})


def test_register_refuses_bad_settings_classes():
    @dataclass(frozen=True)
    class NotMethodSettings:
        horizon: int = 1

    @dataclass(frozen=True)
    class Reserved(MethodSettings):
        grid: int = 0

    for cls, msg in [(dict, "frozen dataclass"), (NotMethodSettings, "frozen dataclass"), (Reserved, "reserved")]:
        bad = type("Bad", (Objective,), {"name": "bad_settings", "settings_cls": cls})
        with pytest.raises(TypeError, match=msg):
            register(bad)
    assert "bad_settings" not in available()


# --- the generated schema ------------------------------------------------------------------
def test_schema_method_block_is_generated_from_the_settings():
    defs = nlconfig.load_schema()["$defs"]
    assert defs["method"]["properties"]["name"]["enum"] == sorted(available())
    for name in available():
        props = defs[f"method_{name}"]["properties"]
        assert list(props) == ["name", *settings_of(name).keys(), "tasks", "grid"]
        assert defs[f"method_{name}"]["additionalProperties"] is False
        assert set(props["grid"]["properties"]) == set(settings_of(name).keys()) - {"horizon"}
    nl = defs["method_nextlat"]["properties"]
    assert nl["dyn_hidden"]["description"] == "Hidden width of the latent dynamics MLP (Table 5)."
    assert nl["lambda_kl"]["minimum"] == 0 and nl["lambda_kl"]["type"] == "number"
    assert defs["method_bst"]["properties"]["subsample_rate"]["exclusiveMinimum"] == 0
    assert all("default" not in p for n in available() for p in defs[f"method_{n}"]["properties"].values())


@pytest.mark.parametrize("scale", ["smoke", "default", "paper"])
def test_generated_schema_accepts_every_method_of_config_yaml(scale):
    cfg = nlconfig.load("config.yaml", scale)
    method_schema = nlconfig.sub_schema("method")
    for bench in cfg["benchmarks"].values():
        for entry in bench["methods"]:
            nlconfig.validate(dict(entry), method_schema)
    runs = expand_runs(cfg)
    assert {r.method for r in runs.values()} <= set(available())
    for run in runs.values():  # every resolved method builds its settings
        settings_of(run.method).from_method(run.config["method"])


@pytest.mark.parametrize("horizon", [3, "l-2", [1, "l-2"]])
def test_horizon_keeps_its_matrix_forms(horizon):
    expand_runs(load(**pathstar({"name": "nextlat", "horizon": horizon})))


# --- strict keys at check time ------------------------------------------------------------
def test_misspelled_grid_key_is_refused_naming_key_and_method():
    with pytest.raises(ConfigError) as err:
        load(**pathstar({"name": "gpt"}, {"name": "nextlat", "horizon": 2, "grid": {"lamda_kl": [0.1, 1.0]}}))
    msg = str(err.value)
    assert "benchmarks.pathstar.methods[1].grid (nextlat)" in msg and "'lamda_kl'" in msg
    assert "lambda_kl" in msg.replace("'lamda_kl'", "") and "\n" not in msg


def test_grid_values_are_typed_and_horizon_is_not_a_grid_key():
    with pytest.raises(ConfigError, match=r"methods\[0\]\.grid\.lambda_kl\[0\] \(nextlat\)"):
        load(**pathstar({"name": "nextlat", "grid": {"lambda_kl": ["big"]}}))
    with pytest.raises(ConfigError, match=r"\(nextlat\): unknown grid key 'horizon'"):
        load(**pathstar({"name": "nextlat", "grid": {"horizon": [1, 2]}}))


def test_key_of_another_method_is_refused():
    with pytest.raises(ConfigError, match=r"benchmarks\.pathstar\.methods\[0\] \(gpt\): unknown key "
                                          r"'lambda_kl'; gpt accepts no settings"):
        load(**pathstar({"name": "gpt", "lambda_kl": 1.0}))
    with pytest.raises(ConfigError, match=r"methods\[0\] \(nextlat\): unknown key 'lamda_kl'; nextlat accepts "
                                          r"horizon, lambda_next_h, lambda_kl"):
        load(**pathstar({"name": "nextlat", "lamda_kl": 1.0}))
    with pytest.raises(ConfigError, match=r"methods\[0\] \(mtp\): unknown key 'min_gap'"):
        load(**pathstar({"name": "mtp", "min_gap": 2}))


def test_bad_setting_value_names_the_method():
    with pytest.raises(ConfigError, match=r"methods\[0\]\.lambda_kl \(nextlat\)"):
        load(**pathstar({"name": "nextlat", "lambda_kl": -1}))
    with pytest.raises(ConfigError, match=r"methods\[0\]\.horizon \(mtp\)"):
        load(**pathstar({"name": "mtp", "horizon": 0}))


def test_misspelled_run_override_method_key_is_refused():
    with pytest.raises(ConfigError) as err:
        expand_runs(load(benchmarks={"pathstar": {"run_overrides": {
            "g2x4_nextlat-d2_s0": {"method": {"lamda_kl": 0.5}}}}}))
    assert str(err.value).startswith("benchmarks.pathstar.run_overrides.g2x4_nextlat-d2_s0.method (nextlat): "
                                     "unknown key 'lamda_kl'; nextlat accepts")
    with pytest.raises(ConfigError, match=r"\(gpt\): unknown key 'lambda_kl'"):
        expand_runs(load(benchmarks={"pathstar": {"run_overrides": {"g2x4_gpt_s0": {"method": {"lambda_kl": 1}}}}}))


def test_valid_run_override_method_changes_only_that_run():
    base = expand_runs(load())
    runs = expand_runs(load(benchmarks={"pathstar": {"run_overrides": {
        "g2x4_nextlat-d2_s0": {"method": {"lambda_kl": 0.5}}}}}))
    assert runs["g2x4_nextlat-d2_s0"].config["method"]["lambda_kl"] == 0.5
    assert [r for r in runs if runs[r].config != base[r].config] == ["g2x4_nextlat-d2_s0"]


# --- horizons the sequences can hold -------------------------------------------------------
def test_horizon_beyond_the_sequence_is_refused():
    with pytest.raises(ConfigError) as err:
        expand_runs(load(**pathstar({"name": "nextlat", "horizon": 50})))
    msg = str(err.value)  # g2x4 at smoke scale: rows of 26 tokens
    assert "g2x4_nextlat-d50_s0" in msg and "horizon 50" in msg and "26 tokens" in msg


@pytest.mark.parametrize("name", ["nextlat", "mtp", "jtp"])
def test_longest_usable_horizon_is_accepted(name):
    block = expand_runs(load(), "pathstar")["g2x4_gpt_s0"].config["model"]["block_size"]
    expand_runs(load(**pathstar({"name": name, "horizon": block - 2})), "pathstar")
    with pytest.raises(ConfigError, match=f"horizon {block - 1}"):
        expand_runs(load(**pathstar({"name": name, "horizon": block - 1})), "pathstar")


def test_horizon_from_a_run_override_is_checked_too():
    with pytest.raises(ConfigError, match=r"run g2x4_nextlat-d2_s0 \(nextlat\): horizon 40"):
        expand_runs(load(benchmarks={"pathstar": {"run_overrides": {"g2x4_nextlat-d2_s0": {"method": {"horizon": 40}}}}}))


def test_bst_gap_checks_run_at_check_time():
    with pytest.raises(ConfigError, match=r"run g2x4_bst_s0 \(bst\): method\.max_gap=2 leaves no gap"):
        expand_runs(load(**pathstar({"name": "bst", "min_gap": 3, "max_gap": 2})))
    with pytest.raises(ConfigError, match="min_gap 30 needs rows of at least 31 tokens"):
        expand_runs(load(**pathstar({"name": "bst", "min_gap": 30})))


def test_settings_fields_are_frozen():
    s = settings_of("nextlat")()
    with pytest.raises(FrozenInstanceError):
        s.horizon = 3
    assert [f.name for f in fields(s)] == settings_of("nextlat").keys()
