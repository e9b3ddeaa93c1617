"""Contracts every registered objective and every registered benchmark must keep.

Objectives (``nextlat.objectives.available()``): the interface the trainer, evaluations and
probes rely on -- a finite scalar loss whose gradients reach every parameter, next-token
logits and probe/rank states of the documented shapes, causal states, parameter counts,
and a loss that a few optimizer steps lower.

Benchmarks (``nextlat.benchmarks.names()``): the slice layout, and the stages chained by
hand at the smoke scale exactly as the workflow chains them -- data (``make_data`` with
``data_config``), a GPT run trained for two steps, its evaluation, and every report target
through ``call_stage`` with the inputs, outputs and params its rule in
``rules/<name>.smk`` passes. A new benchmark whose report targets only read the runs'
``evals`` needs no change here; one with other inputs adds a builder to ``REPORT_IO``.
"""
from __future__ import annotations

import copy
import functools
import importlib
import inspect
import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from nextlat import benchmarks
from nextlat import config as nlconfig
from nextlat.codedeps import objective_module
from nextlat.models.layout import Layout
from nextlat.objectives import Batch, available, build_objective
from nextlat.runs import expand_runs
from nextlat.stages.call import call_stage
from nextlat.stages.data import data_config, make_data
from nextlat.stages.evaluate import evaluate
from nextlat.stages.probe import probe
from nextlat.stages.speculative import speculative
from nextlat.stages.throughput import throughput
from nextlat.stages.train import load_train_data, train

from _tokens import EOS, V, model_cfg, rand_tokens

ROOT = Path(__file__).resolve().parents[1]
OBJECTIVES = available()
BENCHMARKS = benchmarks.names()
HORIZON = 2


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    """Tiny models: one intra-op thread (conftest.one_thread_module)."""


# ================================================================================================
# Objectives
# ================================================================================================
def make(name: str, seed: int = 0, **model_kw):
    """A tiny float64 objective with fixed weights, at horizon 2 for methods that have one."""
    try:
        torch.manual_seed(seed)
        obj = build_objective(model_cfg(**model_kw), {"name": name, "horizon": HORIZON})
    except ValueError as err:  # a method without a horizon refuses the key
        if "horizon" not in str(err):
            raise
        torch.manual_seed(seed)
        obj = build_objective(model_cfg(**model_kw), {"name": name})
    return obj.double()


def batch_of(packed: bool, B: int = 3, L: int = 18, prompt: int = 4) -> Batch:
    """Random rows; the first ``prompt`` tokens are unsupervised. Packed rows hold several
    EOS-led documents (the packing convention: EOS opens a document)."""
    x = rand_tokens(B, L, seed=5)
    if packed:
        x[:, 0] = EOS
        x[0, 7] = x[1, 11] = x[2, 5] = x[2, 12] = EOS
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[:, :prompt] = False
    return Batch(x, mask, packed=packed)


def grads(obj, loss) -> dict[str, torch.Tensor | None]:
    obj.zero_grad(set_to_none=True)
    loss.backward()
    return {n: (None if p.grad is None else p.grad.detach().clone()) for n, p in obj.named_parameters()}


@pytest.mark.parametrize("packed", [False, True], ids=["rows", "packed"])
@pytest.mark.parametrize("name", OBJECTIVES)
def test_loss_is_a_finite_scalar_with_gradients_reaching_every_parameter(name, packed):
    obj = make(name)
    batch = batch_of(packed)
    out = obj.loss(batch)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss), out.loss
    assert out.loss.requires_grad
    for key, value in out.metrics.items():  # logged values: detached, finite
        assert not value.requires_grad, key
        assert torch.isfinite(torch.as_tensor(value)).all(), key
    trainable = {n for n, p in obj.named_parameters() if p.requires_grad}
    assert trainable, "an objective without parameters"
    g = grads(obj, out.loss)
    missing = sorted(n for n in trainable if g[n] is None)
    zero = sorted(n for n in trainable if g[n] is not None and not g[n].abs().sum() > 0)
    assert not missing and not zero, f"{name}: no gradient for {missing}, zero gradient for {zero}"
    assert all(torch.isfinite(v).all() for v in g.values() if v is not None)
    # forward() is the loss (what Fabric/DDP wrap), and the value is reproducible
    torch.testing.assert_close(obj(batch).loss, out.loss)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_objective_lives_in_its_registry_file(name):
    """codedeps maps method -> nextlat/objectives/<method>.py: a run's code inputs rely on it."""
    obj = make(name)
    assert type(obj).__module__ == objective_module(name)
    assert (ROOT / (objective_module(name).replace(".", "/") + ".py")).is_file()
    assert importlib.import_module(objective_module(name))


@pytest.mark.parametrize("name", OBJECTIVES)
def test_config_schema_accepts_every_registered_method(name):
    nlconfig.validate({"name": name}, nlconfig.sub_schema("method"))


def test_config_schema_refuses_an_unregistered_method():
    with pytest.raises(nlconfig.ConfigError):
        nlconfig.validate({"name": "not_a_method"}, nlconfig.sub_schema("method"))


@pytest.mark.parametrize("name", OBJECTIVES)
def test_logits_have_one_row_per_position(name):
    obj = make(name).eval()
    x = rand_tokens(3, 17, seed=2)
    with torch.no_grad():
        plain = obj.logits(x)
        packed = obj.logits(x, Layout.packed(x, EOS))
    assert plain.shape == packed.shape == (3, 17, V)
    assert torch.isfinite(plain).all() and torch.isfinite(packed).all()
    with torch.no_grad():  # a row with no EOS is one document: both layouts agree
        torch.testing.assert_close(plain, packed)


@pytest.mark.parametrize("name", OBJECTIVES)
def test_param_counts_training_at_least_inference(name):
    obj = make(name)
    counts = obj.param_counts()
    assert set(counts) >= {"training", "inference"}
    total = sum(p.numel() for p in obj.parameters())  # unique parameters (shared ones once)
    assert counts["training"] == total
    assert 0 < counts["inference"] <= counts["training"]


@pytest.mark.parametrize("which", ["probe", "rank"])
@pytest.mark.parametrize("name", OBJECTIVES)
def test_hidden_states_shape_and_causality(name, which):
    obj = make(name).eval()
    x = rand_tokens(2, 15, seed=4)
    with torch.no_grad():
        h = obj.hidden_states(x, which=which)
        assert h.shape == (2, 15, model_cfg()["n_embd"]) and torch.isfinite(h).all()
        t = 6
        y = x.clone()
        y[:, t + 1:] = (y[:, t + 1:] + 3) % EOS
        h2 = obj.hidden_states(y, which=which)
    torch.testing.assert_close(h[:, : t + 1], h2[:, : t + 1])  # state at t reads x_{<=t} only
    assert not torch.allclose(h[:, t + 1:], h2[:, t + 1:])


@pytest.mark.parametrize("name", OBJECTIVES)
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(name):
    obj = make(name, seed=1).float()
    batch = batch_of(packed=False, B=4, L=16)
    opt = torch.optim.AdamW(obj.parameters(), lr=1e-2, weight_decay=0.0)
    first = None
    for _ in range(12):
        loss = obj.loss(batch).loss
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = obj.loss(batch).loss.item()
    assert last < 0.8 * first, (name, first, last)


# ================================================================================================
# Benchmarks
# ================================================================================================
@functools.cache
def smoke() -> tuple[dict, dict]:
    """The smoke-scale config and its run matrix (loaded on first use, not at collection)."""
    cfg = nlconfig.load(ROOT / "config.yaml", "smoke")
    return cfg, expand_runs(cfg)


def slice_dir(name: str) -> Path:
    return ROOT / "nextlat" / "benchmarks" / name


def smk_block(name: str, target: str) -> str:
    """The ``use rule ... as <target> with:`` block of rules/<name>.smk."""
    text = (ROOT / "rules" / f"{name}.smk").read_text()
    m = re.search(rf"^use rule \w+ as {target} with:\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    assert m, f"rules/{name}.smk has no `use rule ... as {target} with:`"
    return m.group(1)


def smk_stage(name: str, target: str) -> str:
    """The ``params.stage`` ("module:function") of a report target's rule."""
    m = re.search(r'stage="([\w.]+:\w+)"', smk_block(name, target))
    assert m, f"{target}'s rule sets no params.stage"
    return m.group(1)


def smk_outputs(name: str, target: str) -> dict[str, str]:
    """Named outputs of a report rule and their file extensions, read from its rule block
    (``png=report(f"...fig6.png", ...)`` -> ``{"png": "png"}``); {} for computed outputs."""
    block = smk_block(name, target)
    section = re.search(r"^    output:\n(.*?)(?=^    \w+:|\Z)", block, re.M | re.S).group(1)
    keys = list(re.finditer(r"^ {8}(\w+)=", section, re.M))
    out = {}
    for k, nxt in zip(keys, keys[1:] + [None]):
        chunk = section[k.end(): nxt.start() if nxt else len(section)]
        ext = re.search(r"\.(\w+)\"", chunk)
        out[k.group(1)] = ext.group(1) if ext else "out"
    return out


@pytest.mark.parametrize("name", BENCHMARKS)
def test_slice_has_the_documented_layout(name):
    spec = benchmarks.get(name)
    folder = slice_dir(name)
    assert spec.name == name == folder.name
    assert spec.package == f"nextlat.benchmarks.{name}"
    for f in ("__init__.py", "data.py", "evaluate.py", "report.py", "paper.py", "schema.yaml"):
        assert (folder / f).is_file(), f"nextlat/benchmarks/{name}/{f} is missing"
    assert benchmarks.schema_file(name) == folder / "schema.yaml"
    data_params = list(inspect.signature(importlib.import_module(spec.module_name("data")).make_data).parameters)
    # a slice whose data stage reads files its own rules make (data_inputs) takes them as `inputs`
    assert len(data_params) == 4 or data_params[4:] == ["inputs"], data_params
    assert (data_params[4:] == ["inputs"]) == bool(spec.data_inputs(CFG_SMOKE(name), "x")), name
    assert len(inspect.signature(importlib.import_module(spec.module_name("evaluate")).evaluate).parameters) == 6
    assert spec.reports, f"{name} declares no report target"
    for target in spec.reports:  # a target's function: report.py unless its rule names another module
        stage = smk_stage(name, target)
        assert stage.split(":")[1] == target, f"{target}'s rule calls {stage}"
        assert len(inspect.signature(spec.stage(stage)).parameters) == 3, target
        assert f'benchmark="{name}"' in smk_block(name, target)
    rules_text = (ROOT / "rules" / f"{name}.smk").read_text()
    for target in spec.reports:  # `all` builds every report target
        assert re.search(rf"ALL_TARGETS\.extend\([^\n]*rules\.{target}\.output", rules_text), target
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert name in raw["benchmarks"] and name in raw["scales"]["smoke"]["benchmarks"]
    assert "meta" in spec.data_outputs  # written last: the dataset is complete once it exists
    assert "eval" in spec.eval_outputs


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """build(name): one benchmark at the smoke scale -- data, a GPT run trained two steps,
    its eval.json -- made once per module whatever order the tests run in."""
    done: dict[str, dict] = {}

    def _build(name: str) -> dict:
        if name not in done:
            done[name] = _build_benchmark(name, tmp_path_factory.mktemp(name))
        return done[name]

    return _build


def CFG_SMOKE(name: str) -> dict:
    return smoke()[0]["benchmarks"][name]


def _tinystories_inputs(tmp: Path, bench: dict) -> dict:
    """The corpus and tokenizer the tinystories_corpus/_tokenizer rules make before its data."""
    corpus = {k: tmp / "corpus" / f"{k}.{'json' if k == 'stats' else 'parquet'}"
              for k in ("train", "validation", "stats")}
    call_stage("tinystories", "corpus:make_corpus", {}, corpus, {"corpus": bench["corpus"]})
    tok = tmp / "tokenizer.json"
    call_stage("tinystories", "tokenizer:make_tokenizer", {"train": corpus["train"]}, {"tokenizer": tok},
               {"tokenizer": bench["tokenizer"]})
    return {"train": corpus["train"], "validation": corpus["validation"], "tokenizer": tok}


def _fineweb_inputs(tmp: Path, bench: dict) -> dict:
    """The corpus parts and the tokenization jobs' folders the fineweb rules make before the gather."""
    corpus = tmp / "corpus"
    call_stage("fineweb", "corpus:make_corpus", {}, {"corpus": corpus}, {"corpus": bench["corpus"]})
    jobs = bench["tokenize"]["jobs"]
    tok = {k: v for k, v in bench["tokenize"].items() if k not in ("resources", "jobs")}
    inputs = {"corpus": corpus}
    for j in range(jobs):
        inputs[f"tokens_{j}"] = tmp / "tokens" / f"job-{j}"
        call_stage("fineweb", "tokenize:tokenize_job", {"corpus": corpus}, {"tokens": inputs[f"tokens_{j}"]},
                   {"tokenize": tok, "job": j, "jobs": jobs, "threads": 1})
    return inputs


# benchmark -> builder of the files its data_inputs names (made by its own rules in the workflow)
DATA_INPUTS = {"tinystories": _tinystories_inputs, "fineweb": _fineweb_inputs}


def _build_benchmark(name: str, tmp: Path) -> dict:
    cfg_all, all_runs = smoke()
    bench = cfg_all["benchmarks"][name]
    task = bench["tasks"][0]
    runs = [r for r in all_runs.values() if r.benchmark == name and r.task == task]
    run = next((r for r in runs if r.method == "gpt"), runs[0])
    data_dir, run_dir = tmp / "data" / task, tmp / "runs" / run.run_id
    inputs = DATA_INPUTS[name](tmp, bench) if name in DATA_INPUTS else None
    make_data(name, task, data_config(name, bench), data_dir, workers=1, inputs=inputs)
    cfg = copy.deepcopy(run.config)
    cfg["train"].update(steps=2, eval_every=2, ckpt_every=2, log_every=1)
    cfg["runtime"].update(accelerator="cpu", devices=1, progress=False)
    model = train(cfg, data_dir, run_dir)
    eval_json = run_dir / benchmarks.get(name).eval_outputs["eval"].path
    record = evaluate(cfg, model, data_dir, bench["eval"], eval_json, device="cpu")
    return {"name": name, "bench": bench, "task": task, "run": run, "cfg": cfg, "tmp": tmp,
            "data_dir": data_dir, "run_dir": run_dir, "model": model, "eval": eval_json, "record": record}


@pytest.mark.parametrize("name", BENCHMARKS)
def test_data_stage_writes_what_the_spec_declares_and_the_plan_assumed(build, name):
    built = build(name)
    spec = benchmarks.get(built["name"])
    for key, out in spec.data_outputs.items():
        path = built["data_dir"] / out.path
        assert (path.is_dir() and any(path.iterdir())) if out.directory else path.is_file(), key
    meta = json.loads((built["data_dir"] / spec.data_outputs["meta"].path).read_text())
    planned = spec.model_fields(built["bench"], built["task"])  # what the DAG was planned with
    assert meta["vocab_size"] == planned["vocab_size"] and meta["eos_id"] == planned["eos_id"]
    assert meta["seq_len"] <= planned["block_size"]
    assert planned == {k: built["run"].config["model"][k] for k in planned}
    train_ds, val_ds = load_train_data(built["name"], built["data_dir"])
    assert len(train_ds) > 0 and len(val_ds) > 0
    rows = train_ds.batch(list(range(min(len(train_ds), 256))))  # the Dataset protocol only
    assert int(rows.tokens.max()) < meta["vocab_size"] and int(rows.tokens.min()) >= 0
    assert rows.loss_mask.any()


@pytest.mark.parametrize("name", BENCHMARKS)
def test_train_and_eval_stages_write_the_declared_files(build, name):
    built = build(name)
    assert built["model"] == built["run_dir"] / "model.pt" and built["model"].is_file()
    assert yaml.safe_load((built["run_dir"] / "config.yaml").read_text())["run_id"] == built["run"].run_id
    for key, out in benchmarks.get(built["name"]).eval_outputs.items():
        assert (built["run_dir"] / out.path).exists(), key
    record = json.loads(built["eval"].read_text())
    assert record == json.loads(json.dumps(built["record"]))
    run = built["run"]
    assert record["run"] == {"run_id": run.run_id, "benchmark": run.benchmark, "task": run.task,
                             "seed": run.seed, "method": run.method, "horizon": run.horizon}
    assert record["metrics"] and all(not isinstance(v, dict) for v in record["metrics"].values())
    assert record["params"]["training"] >= record["params"]["inference"] > 0


# --- report targets ---------------------------------------------------------------------------
def _manhattan_oracle(ctx) -> Path:
    out = ctx["tmp"] / "oracle" / ctx["task"] / "eval.json"
    if not out.exists():
        call_stage("manhattan", "oracle:evaluate_oracle", {"meta": ctx["data_dir"] / "meta.json"},
                   {"eval": out, "samples": out.parent / "samples.parquet"},
                   {"benchmark": "manhattan", "stage": "oracle:evaluate_oracle",
                    "eval": ctx["bench"]["eval"], "seed": ctx["bench"]["seeds"][0]})
    return out


def _manhattan_table1(ctx, inputs, outputs, params):
    inputs["oracle"] = [_manhattan_oracle(ctx)]
    return inputs, outputs, params


def _manhattan_fig3(ctx, inputs, outputs, params):
    """fig3 as rules/manhattan.smk wires it: reconstructions of the true world model and of
    the run (manhattan_reconstruct), then the maps of every label and view."""
    bench = ctx["bench"]
    oracle = _manhattan_oracle(ctx)
    data = {"graph": ctx["data_dir"] / "graph.graphml", "meta": ctx["data_dir"] / "meta.json"}
    sources = {f"true_{ctx['task']}": oracle.parent, ctx["run"].run_id: ctx["run_dir"]}
    maps = {}
    for label, folder in sources.items():
        recon = ctx["tmp"] / "recon" / label / "reconstruction.json"
        counts = call_stage("manhattan", "reconstruction:reconstruct_samples",
                            {"samples": folder / "samples.parquet", **data}, {"recon": recon},
                            {"cfg": bench["eval"]["reconstruction"], "seed": bench["seeds"][0]})
        assert recon.is_file() and counts
        maps[label] = str(recon)
    opts = bench["maps"]
    outputs = {"csv": ctx["tmp"] / "fig3" / "fig3.csv", "md": ctx["tmp"] / "fig3" / "fig3.md"}
    exts = ["html", "png"] if opts["png"] else ["html"]
    for label in maps:
        for view in opts["views"]:
            for ext in exts:
                outputs[f"{label}_{view}_{ext}"] = ctx["tmp"] / "fig3" / f"{label}_{view}.{ext}"
    if opts["png"]:
        outputs["panel"] = ctx["tmp"] / "fig3" / "panel.png"
    inputs = {"graph": data["graph"], "recons": list(maps.values())}
    return inputs, outputs, {**params, "maps": maps, "opts": opts}


# (benchmark, target) -> builder of the extra inputs/outputs/params its rule passes
def _tinystories_probes(ctx) -> list[Path]:
    """The probe stage on the built GPT run, plus copies of its record relabelled as the other
    curves of the figures (a baseline, a horizon method, and one NextLat run per ablation)."""
    out = ctx["tmp"] / "probes"
    gpt = out / "gpt.json"
    if not gpt.exists():
        probe(ctx["cfg"], ctx["model"], ctx["data_dir"], dict(ctx["bench"]["probe"], steps=2), gpt,
              out / "gpt.csv", device="cpu")
    base = json.loads(gpt.read_text())
    variants = {"bst": {"name": "bst"}, "mtp": {"name": "mtp", "horizon": 2},
                "nextlat": {"name": "nextlat", "horizon": 2},
                "terms": {"name": "nextlat", "horizon": 2, "terms": "kl"},
                "token": {"name": "nextlat", "horizon": 2, "token_term": "ce"},
                "sg": {"name": "nextlat", "horizon": 2, "stop_grad": "none"}}
    paths = [gpt]
    for label, method in variants.items():
        rec = copy.deepcopy(base)
        rec["run"].update(run_id=f"ts_{label}_s0", method=method["name"], horizon=method.get("horizon"))
        rec["method"] = method
        rec["probes"]["ce"] = [c + 0.1 for c in rec["probes"]["ce"]]
        paths.append(out / f"{label}.json")
        paths[-1].write_text(json.dumps(rec))
    return paths


def _tinystories_figure(ctx, inputs, outputs, params):
    folder = Path(next(iter(outputs.values()))).parent if outputs else ctx["tmp"] / "report"
    outputs = {k: folder / f"{params['stage'].split(':')[1]}.{k}" for k in ("png", "pdf", "csv", "md")}
    return {"probes": _tinystories_probes(ctx)}, outputs, params


def _tinystories_stories(ctx, inputs, outputs, params):
    stories = ctx["run_dir"] / "stories.json"
    return ({"evals": [ctx["eval"]], "stories": [stories], "stats": ctx["tmp"] / "corpus" / "stats.json",
             "meta": ctx["data_dir"] / "meta.json"}, outputs, params)


def _fineweb_val_loss(built, inputs, outputs, params):
    """The figure reads each run's metrics.csv from beside its model (the rule's `models`)."""
    return {**inputs, "models": [built["model"]]}, outputs, params


def _fineweb_speculative(built, inputs, outputs, params):
    """The prompts stage, then the speculative stage on the smoke matrix's NextLat run (trained
    two steps on the built data), as the fineweb_prompts and speculative rules run them."""
    tmp = built["tmp"] / "speculative"
    record, prompts_json = tmp / "speculative.json", tmp / "prompts.json"
    if not record.exists():
        spec = built["bench"]["speculative"]
        call_stage("fineweb", "prompts:make_prompts", {}, {"prompts": prompts_json}, {"prompts": spec["prompts"]})
        run = next(r for r in smoke()[1].values() if r.benchmark == "fineweb" and r.method == "nextlat")
        cfg = copy.deepcopy(run.config)
        cfg["train"].update(steps=2, eval_every=2, ckpt_every=2, log_every=1)
        cfg["runtime"].update(accelerator="cpu", devices=1, progress=False)
        model = train(cfg, built["data_dir"], tmp / run.run_id)
        speculative(cfg, model, prompts_json, built["data_dir"], spec["decoding"], record, device="cpu")
    return {"records": [record], "prompts": prompts_json}, outputs, params


def _fineweb_throughput(built, inputs, outputs, params):
    """The throughput stage on the smoke config's model and methods, as the throughput rule runs it."""
    record = built["tmp"] / "throughput.json"
    if not record.exists():
        run = next(r for r in smoke()[1].values() if r.benchmark == "fineweb")
        settings = dict(built["bench"]["throughput"], rounds=1, warmup=0)
        throughput(run.config["model"], settings, 1, {"accelerator": "cpu"}, record, threads=1)
    return {"record": record}, outputs, params


REPORT_IO = {("manhattan", "table1"): _manhattan_table1, ("manhattan", "fig3"): _manhattan_fig3,
             ("fineweb", "fig_val_loss"): _fineweb_val_loss, ("fineweb", "table4"): _fineweb_throughput,
             **{("fineweb", t): _fineweb_speculative for t in ("table3", "table7", "fig_draft_length")},
             **{("tinystories", f): _tinystories_figure for f in ("fig8", "fig16", "fig12", "fig13", "fig14")},
             ("tinystories", "stories"): _tinystories_stories}
REPORTS = [pytest.param(n, t, id=f"{n}-{t}") for n in BENCHMARKS for t in benchmarks.get(n).reports]


@pytest.mark.parametrize("name,target", REPORTS)
def test_every_report_target_builds_from_the_stage_outputs(build, name, target):
    built = build(name)
    folder = built["tmp"] / "report" / target
    outputs = {key: folder / f"{key}.{ext}" for key, ext in smk_outputs(name, target).items()}
    inputs = {"evals": [built["eval"]]}
    params = {"benchmark": name, "stage": smk_stage(name, target)}
    if (name, target) in REPORT_IO:
        inputs, outputs, params = REPORT_IO[(name, target)](built, inputs, outputs, params)
    assert outputs, (f"report target {name}:{target} has computed outputs; add a builder for it "
                     f"to REPORT_IO in tests/test_contracts.py")
    call_stage(name, smk_stage(name, target), inputs, outputs, params)
    for key, path in outputs.items():
        assert Path(path).is_file() and Path(path).stat().st_size > 0, f"{target}: {key} not written"


@pytest.mark.parametrize("name", BENCHMARKS)
def test_declared_extra_stages_exist_and_have_rules(name):
    spec = benchmarks.get(name)
    rules_text = (ROOT / "rules" / f"{name}.smk").read_text()
    for stage in spec.extra_stages:
        assert len(inspect.signature(spec.stage(stage)).parameters) == 3, stage
        assert f'stage="{stage}"' in rules_text, f"no rule of rules/{name}.smk runs {stage}"
