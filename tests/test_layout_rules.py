"""The layout rule of the refactor: a benchmark is a slice, nothing shared names one.

* No benchmark name (or alias) appears in shared code: every ``.py`` under ``nextlat/``
  outside ``nextlat/benchmarks/<name>/``, the shared schema, the Snakefile, the shared rule
  files and ``workflow_scripts/``.
* ``snakemake -n all`` plans every benchmark's data, train, eval and report jobs at every scale.
* Adding a benchmark is adding a folder, a rules file and a config block: a toy benchmark
  dropped into a copy of the workflow (nothing else edited) is planned -- and, slow, built --
  end to end by the generic rules.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from nextlat import benchmarks
from nextlat import config as nlconfig
from nextlat.runs import expand_runs

from _workflow import copy_workflow

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
NAMES = benchmarks.names()
SHARED_RULES = ("common", "data", "eval", "train", "probe", "stages", "speculative", "throughput", "claims", "study")


# --- a. nothing shared names a benchmark ------------------------------------------------------
def benchmark_terms() -> list[str]:
    """Each registered name and its title's spellings (Path-Star: path-star, path_star, ...)."""
    terms = {"path-star", "path_star", "pathstar", "countdown", "manhattan"}
    for name in NAMES:
        for word in (name, benchmarks.get(name).title or name):
            word = word.lower()
            terms |= {word, word.replace("-", ""), word.replace("-", "_"), word.replace("-", " "),
                      word.replace("_", "-"), word.replace("_", "")}
    return sorted(t for t in terms if t)


def shared_code_files() -> list[Path]:
    slices = [ROOT / "nextlat" / "benchmarks" / name for name in NAMES]
    py = [p for p in sorted((ROOT / "nextlat").rglob("*.py"))
          if "__pycache__" not in p.parts and not any(s in p.parents for s in slices)]
    rules = [p for p in sorted((ROOT / "rules").glob("*.smk")) if p.stem not in NAMES]
    return py + [ROOT / "Snakefile"] + rules + sorted((ROOT / "workflow_scripts").glob("*.py"))


def mentions(files: list[Path]) -> list[str]:
    pattern = re.compile("|".join(re.escape(t) for t in benchmark_terms()), re.I)
    found = []
    for path in files:
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    return found


def test_the_scan_covers_the_shared_code():
    files = {str(p.relative_to(ROOT)) for p in shared_code_files()}
    assert {"nextlat/config.py", "nextlat/benchmarks/base.py", "nextlat/benchmarks/__init__.py",
            "nextlat/objectives/bst.py", "Snakefile", "rules/common.smk", "rules/stages.smk",
            "workflow_scripts/stage.py"} <= files
    assert not any(f.startswith(f"nextlat/benchmarks/{n}/") or f == f"rules/{n}.smk" for n in NAMES for f in files)
    assert {"pathstar", "path-star", "path_star", "countdown", "manhattan"} <= set(benchmark_terms())


def test_no_benchmark_name_in_shared_code():
    found = mentions(shared_code_files())
    assert not found, "benchmark names in shared code:\n" + "\n".join(found)


def test_no_benchmark_name_in_the_shared_config_schema():
    found = mentions(sorted((ROOT / "nextlat" / "schemas").glob("*.yaml")))
    assert not found, "benchmark names in the shared schema:\n" + "\n".join(found)


def test_every_rules_file_is_shared_or_a_registered_benchmarks():
    stray = [p.name for p in (ROOT / "rules").glob("*.smk") if p.stem not in NAMES + list(SHARED_RULES)]
    assert not stray, f"rules files of no registered benchmark: {stray}"
    assert all((ROOT / "rules" / f"{n}.smk").is_file() for n in NAMES)


def test_importing_the_registry_stays_light():
    """Discovery imports each slice's __init__ only: no torch, no stage module."""
    code = ("import sys, json, nextlat.benchmarks; "
            "print(json.dumps(sorted(m for m in sys.modules if m == 'torch' or m.startswith('nextlat.'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "torch" not in loaded
    heavy = [m for m in loaded if m.startswith("nextlat.benchmarks.") and m.count(".") >= 3]
    assert not heavy, f"importing the registry imported stage modules: {heavy}"


def test_planning_the_run_matrix_does_not_import_the_trainer():
    """Snakemake plans the DAG (config, run matrix) at every invocation: keep it light. Torch
    is imported (the method settings live in the objective files, beside their classes), but
    not Lightning, the trainer or any stage's code."""
    code = ("import sys, json; from nextlat import config, runs; "
            "runs.expand_runs(config.load('config.yaml', 'smoke')); "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pandas', "
            "'matplotlib') or m in ('nextlat.training.trainer', 'nextlat.stages.evaluate'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


# --- b. the whole DAG plans at every scale ----------------------------------------------------
def snakemake(cwd: Path, *args: str, check: bool = True) -> str:
    cmd = [str(SNAKEMAKE), "--cores", "2", *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{out[-6000:]}")
    return out


def planned(output: str) -> dict[str, list[str]]:
    """rule -> the `wildcards:` line of each job of a dry run ("" when it has none)."""
    jobs: dict[str, list[str]] = {}
    rule = None
    for line in output.splitlines():
        m = re.match(r"(?:local)?rule (\w+):$", line)
        if m:
            rule = m.group(1)
            jobs.setdefault(rule, []).append("")
        elif rule and line.startswith("    wildcards: "):
            jobs[rule][-1] = line.split(": ", 1)[1]
        elif not line.startswith("    "):
            rule = None
    return jobs


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("layout") / "repo")


def check_plan(jobs: dict[str, list[str]], cfg: dict) -> None:
    runs = expand_runs(cfg)
    enabled = [n for n in NAMES if n in cfg["benchmarks"] and cfg["benchmarks"][n].get("enabled", True)]
    assert enabled
    assert sorted(jobs["train"]) == sorted(f"benchmark={r.benchmark}, run={r.run_id}" for r in runs.values())
    for name in enabled:
        bench = cfg["benchmarks"][name]
        assert sorted(jobs.get(f"{name}_data", [])) == sorted(f"task={t}" for t in bench["tasks"]), name
        want = sorted(f"run={r.run_id}" for r in runs.values() if r.benchmark == name)
        assert sorted(jobs.get(f"{name}_eval", [])) == want, name
        for target in benchmarks.get(name).reports:
            assert jobs.get(target) == [""], f"report target {target} of {name} is not planned"
    assert jobs.get("all") == [""]


@pytest.mark.parametrize("scale", [
    "smoke",
    pytest.param("default", marks=pytest.mark.slow),
    pytest.param("paper", marks=pytest.mark.slow),
])
def test_dry_run_plans_every_benchmarks_jobs(workflow_copy, scale):
    out = snakemake(workflow_copy, "-n", "all", "--config", f"scale={scale}")
    check_plan(planned(out), nlconfig.load(workflow_copy / "config.yaml", scale))


# --- c. a new benchmark is a folder, a rules file and a config block ---------------------------
TOY_FILES = {
    "nextlat/benchmarks/toy/__init__.py": '''
        """Toy: copy the prompt after a separator (a test-only benchmark)."""
        from __future__ import annotations

        from .. import register
        from ..base import Benchmark


        @register
        class Toy(Benchmark):
            name = "toy"
            title = "Toy"
            reports = ("toytable",)

            def model_fields(self, bench_cfg: dict, task: str) -> dict:
                from . import data

                n = bench_cfg["data"]["n_symbols"]
                return {"vocab_size": data.vocab_size(n), "eos_id": data.eos_id(n),
                        "block_size": data.seq_len(data.parse_task(task))}
        ''',
    "nextlat/benchmarks/toy/data.py": '''
        """Rows ``s_1..s_k SEP s_1..s_k EOS``; the copy and the EOS are supervised."""
        from __future__ import annotations

        import re
        from pathlib import Path

        import numpy as np

        from ...data import store


        def parse_task(task: str) -> int:
            m = re.fullmatch(r"copy([0-9]+)", task)
            if not m:
                raise ValueError(f"toy task {task!r} is not copy<k>")
            return int(m.group(1))


        def vocab_size(n_symbols: int) -> int:
            return n_symbols + 2  # symbols, SEP, EOS


        def eos_id(n_symbols: int) -> int:
            return n_symbols + 1


        def seq_len(k: int) -> int:
            return 2 * k + 2


        def make_data(task: str, data: dict, out_dir: Path, workers: int | None = None) -> dict:
            k, n = parse_task(task), data["n_symbols"]
            out = Path(out_dir)
            out.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng(data.get("seed", 0))
            for split in store.SPLITS:
                rows = data[f"n_{split}"]
                body = rng.integers(0, n, (rows, k))
                table = np.concatenate([body, np.full((rows, 1), n), body, np.full((rows, 1), n + 1)], axis=1)
                store.write_token_table(out / f"{split}.parquet", table.tolist(), [k + 1] * rows)
            return store.write_meta(out, {"task": task, "vocab_size": vocab_size(n), "eos_id": eos_id(n),
                                          "seq_len": seq_len(k), "prompt_len": k + 1})
        ''',
    "nextlat/benchmarks/toy/evaluate.py": '''
        """Teacher-forced accuracy of the copy."""
        from __future__ import annotations

        import torch

        from ...data import store


        @torch.no_grad()
        def evaluate(objective, data_dir, cfg: dict, seed: int, device, out_dir=None) -> dict:
            tokens = store.load_split(data_dir, "test", "Toy").tokens.to(device)
            p = store.load_meta(data_dir, "Toy")["prompt_len"]
            pred = objective.logits(tokens[:, :-1])[:, p - 1:].argmax(-1)
            return {"copy_acc": (pred == tokens[:, p:]).float().mean().item(), "n_test": tokens.size(0)}
        ''',
    "nextlat/benchmarks/toy/report.py": '''
        """The toy table: one row per run."""
        from __future__ import annotations

        import csv
        import json
        from pathlib import Path


        def toytable(inputs: dict, outputs: dict, params: dict) -> None:
            rows = []
            for path in inputs["evals"]:
                record = json.loads(Path(path).read_text())
                rows.append({"run_id": record["run"]["run_id"], "method": record["run"]["method"],
                             "copy_acc": record["metrics"]["copy_acc"]})
            out = Path(outputs["csv"])
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=["run_id", "method", "copy_acc"])
                writer.writeheader()
                writer.writerows(sorted(rows, key=lambda r: r["run_id"]))
        ''',
    "nextlat/benchmarks/toy/schema.yaml": '''
        type: object
        additionalProperties: false
        required: [data, tasks, model, train, methods, seeds, eval]
        properties:
          enabled: {type: boolean, default: true}
          data:
            type: object
            additionalProperties: false
            required: [n_symbols, n_train, n_test]
            properties:
              n_symbols: {type: integer, minimum: 2}
              n_train: {type: integer, minimum: 1}
              n_test: {type: integer, minimum: 1}
              seed: {type: integer, default: 0}
          tasks: {type: array, minItems: 1, items: {type: string, pattern: "^copy[0-9]+$"}}
          model: {$ref: "#/$defs/model"}
          train: {$ref: "#/$defs/train"}
          methods: {type: array, minItems: 1, items: {$ref: "#/$defs/method"}}
          seeds: {type: array, minItems: 1, items: {type: integer}}
          eval:
            type: object
            additionalProperties: false
            properties:
              batch_size: {type: integer, minimum: 1, default: 64}
          run_overrides: {$ref: "#/$defs/run_overrides"}
        ''',
    "rules/toy.smk": '''
        # Toy (tests only): the report target; data, training and evaluation are generic.


        use rule benchmark_report as toytable with:
            output:
                csv=f"{OUT}/tables/toy.csv",
            input:
                evals=lambda w: evals_of("toy"),
                code=code(slice_module("toy", "report")),
            params:
                benchmark="toy",
                stage="report:toytable",
            log:
                f"{OUT}/logs/toytable.log",


        ALL_TARGETS.extend(rules.toytable.output)
        ''',
}
TOY_CONFIG = '''
  toy:                       # test-only benchmark: copy the prompt
    data: {n_symbols: 6, n_train: 64, n_test: 16}
    tasks: [copy3]
    model: {n_layer: 1, n_head: 2, n_embd: 16}
    train: {steps: 6, batch_size: 8, lr: 1.0e-3, eval_every: 3, eval_batches: 1, log_every: 1, ckpt_every: 3}
    methods:
      - {name: gpt}
      - {name: nextlat, horizon: 1, lambda_next_h: 1.0, lambda_kl: 1.0, dyn_hidden: 16}
    seeds: [0]
    eval: {batch_size: 16}
'''
TOY_SMOKE = '''
      toy:
        train: {steps: 4, ckpt_every: 2}
'''


def add_toy(repo: Path) -> None:
    """Drop the toy slice, rules/toy.smk and its config blocks into a workflow copy."""
    for rel, text in TOY_FILES.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    cfg = (repo / "config.yaml").read_text()
    top = re.search(r"^benchmarks:\n", cfg, re.M)
    cfg = cfg[: top.end()] + TOY_CONFIG.lstrip("\n") + cfg[top.end():]
    smoke = re.search(r"^  smoke:.*\n(?:.*\n)*?    benchmarks:\n", cfg, re.M)
    cfg = cfg[: smoke.end()] + TOY_SMOKE.lstrip("\n") + cfg[smoke.end():]
    (repo / "config.yaml").write_text(cfg)
    raw = yaml.safe_load(cfg)
    assert "toy" in raw["benchmarks"] and "toy" in raw["scales"]["smoke"]["benchmarks"]


@pytest.fixture(scope="module")
def toy_repo(tmp_path_factory):
    repo = copy_workflow(tmp_path_factory.mktemp("toy") / "repo")
    before = {p.relative_to(repo) for p in repo.rglob("*") if p.is_file()}
    add_toy(repo)
    after = {p.relative_to(repo) for p in repo.rglob("*") if p.is_file()}
    assert after - before == {Path(p) for p in TOY_FILES}  # nothing but the slice and its rules
    return repo


TOY_RUNS = ["copy3_gpt_s0", "copy3_nextlat-d1_s0"]


def test_toy_benchmark_is_planned_by_the_generic_rules(toy_repo):
    jobs = planned(snakemake(toy_repo, "-n", "all", "--config", "scale=smoke"))
    assert jobs.get("toy_data") == ["task=copy3"]
    assert sorted(w for w in jobs["train"] if "benchmark=toy" in w) == [f"benchmark=toy, run={r}" for r in TOY_RUNS]
    assert sorted(jobs.get("toy_eval", [])) == [f"run={r}" for r in TOY_RUNS]
    assert jobs.get("toytable") == [""]
    for name in NAMES:  # the real benchmarks are still all there
        assert f"{name}_eval" in jobs and all(t in jobs for t in benchmarks.get(name).reports)


@pytest.mark.slow
def test_toy_benchmark_builds_end_to_end(toy_repo):
    snakemake(toy_repo, "toytable", "--config", "scale=smoke")
    table = (toy_repo / "results/smoke/tables/toy.csv").read_text().splitlines()
    assert table[0] == "run_id,method,copy_acc" and len(table) == 3
    rows = [line.split(",") for line in table[1:]]
    assert [r[0] for r in rows] == TOY_RUNS and [r[1] for r in rows] == ["gpt", "nextlat"]
    assert all(0.0 <= float(r[2]) <= 1.0 for r in rows)
    for run in TOY_RUNS:
        record = json.loads((toy_repo / f"results/smoke/toy/runs/{run}/eval.json").read_text())
        assert record["run"]["benchmark"] == "toy" and record["metrics"]["n_test"] == 16
        cfg = yaml.safe_load((toy_repo / f"results/smoke/toy/runs/{run}/config.yaml").read_text())
        assert cfg["train"]["steps"] == 4  # the smoke override merged into the toy block
    assert "Nothing to be done" in snakemake(toy_repo, "-n", "toytable", "--config", "scale=smoke")
