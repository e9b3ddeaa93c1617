"""What every benchmark declares: the small base class of a benchmark slice.

A benchmark is one folder, ``nextlat/benchmarks/<name>/``:

* ``__init__.py``  a :class:`Benchmark` subclass, decorated with ``@register`` (this file's
  base): its name, which files its data and evaluation stages write, threads and memory,
  its report targets, and the plan-time answers (a task's horizon variables, the model
  fields fixed by the data) that let Snakemake plan the whole DAG before data exists;
* ``data.py``      ``make_data(task, data_cfg, out_dir, workers)`` (and ``load_train`` if the
  stored layout is not the default ``train.parquet``/``test.parquet``);
* ``evaluate.py``  ``evaluate(objective, data_dir, eval_cfg, seed, device, out_dir) -> dict``;
* ``report.py``    one function per report target (``fig6(inputs, outputs, params)``); a figure
  with heavy code of its own may live in its own module (e.g. a ``maps.py`` for a map figure), so
  that editing it redraws that figure only (the rule names the module in ``params.stage``);
* ``paper.py``     the paper's numbers and its claims (``CLAIMS``, checked by ``snakemake claims``);
* ``schema.yaml``  its block of the config schema.

The spec never imports its own ``evaluate``/``report`` modules: stages are reached through
:meth:`Benchmark.stage` by module name, so the code a stage depends on (see
:mod:`nextlat.codedeps`) is exactly what it imports, and editing a figure never retrains.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar


@dataclass(frozen=True)
class Output:
    """A file (or, with ``directory``, a folder) a stage writes, relative to its folder."""

    path: str
    directory: bool = False


DEFAULT_DATA_OUTPUTS = {"train": Output("train.parquet"), "test": Output("test.parquet"),
                        "meta": Output("meta.json")}
DEFAULT_EVAL_OUTPUTS = {"eval": Output("eval.json")}


@dataclass(frozen=True)
class Resources:
    threads: int = 1
    mem_mb: int = 2000
    runtime_min: int = 30


class Benchmark:
    """Base of every benchmark spec. Subclasses set the class attributes and override the
    plan-time hooks they need; stage code lives in the slice's modules."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    # Files of one dataset folder (results/<scale>/<name>/data/<task>/) and of one run's
    # evaluation (results/<scale>/<name>/runs/<run>/); keys become the rules' output names.
    data_outputs: ClassVar[dict[str, Output]] = DEFAULT_DATA_OUTPUTS
    eval_outputs: ClassVar[dict[str, Output]] = DEFAULT_EVAL_OUTPUTS
    data_resources: ClassVar[Resources] = Resources()
    # Whether rows are tagged: inputs with a separate target sequence (see data.batch.Batch).
    tagged_rows: ClassVar[bool] = False
    # Whether every run gets linear probes (the generic `probe` rule; a `probe:` config block).
    probes: ClassVar[bool] = False
    # Report targets (rule names of rules/<name>.smk) that `all` builds.
    reports: ClassVar[tuple[str, ...]] = ()
    # The stage ("module:function") that builds the values its claims (paper.CLAIMS) read from
    # the claims rule's inputs (evals, probes, speculative records); None: the eval records.
    claim_frame: ClassVar[str | None] = None
    # The metrics (columns of the claim frame) a study compares across a sweep's points
    # (nextlat.stages.study); empty: every numeric metric.
    study_metrics: ClassVar[tuple[str, ...]] = ()
    # The benchmark's own stages beyond data/train/eval ("module:function", called by the
    # rules of rules/<name>.smk through nextlat.stages.call).
    extra_stages: ClassVar[tuple[str, ...]] = ()

    # --- plan time (no generated file is read) -----------------------------------------
    def task_vars(self, task: str) -> dict[str, int]:
        """Variables a horizon expression may use for this task (e.g. a graph's degree and arm length)."""
        return {}

    def model_fields(self, bench_cfg: dict, task: str) -> dict:
        """Model fields fixed by the data: ``vocab_size``, ``eos_id``, ``block_size``."""
        raise NotImplementedError

    def row_len(self, bench_cfg: dict, task: str, block_size: int) -> int:
        """Tokens of a training row in next-token form (its positions + 1), against which a
        method's horizon is checked at plan time: ``model.block_size`` by default. A slice
        whose model accepts longer rows than it trains on (one that scores past its training
        length) returns the training length."""
        return block_size

    def data_job(self, bench_cfg: dict) -> Resources:
        """Threads, memory and time of the data jobs (default: ``data_resources``; a slice whose
        data grows by orders of magnitude between scales reads them from its config)."""
        return self.data_resources

    def data_config(self, bench_cfg: dict) -> dict:
        """The part of the benchmark's config that defines its generated data."""
        return bench_cfg["data"]

    def data_sources(self, bench_cfg: dict) -> list[str]:
        """Local files the data is generated from (replacing one regenerates the data)."""
        return []

    def data_inputs(self, bench_cfg: dict, task: str) -> dict[str, str]:
        """Files the benchmark's own rules make before its data stage (say, a corpus and a
        tokenizer shared by every task), relative to its results folder
        (``results/<scale>/<name>/``). The data stage receives them as ``inputs``."""
        return {}

    def check(self, bench_cfg: dict) -> None:
        """Refuse impossible settings before any job runs (raise ConfigError)."""

    # Whether max_rows is an upper bound (rows known only after generation) or exact.
    rows_are_bound: ClassVar[bool] = False

    def max_rows(self, bench_cfg: dict, task: str, split: str) -> int | None:
        """Training rows (sequences) a split will hold, so that a batch larger than the data is
        refused at check time. Default: ``data.n_train`` / ``data.n_test``; None if unknown."""
        return bench_cfg.get("data", {}).get(f"n_{split}")

    # --- stages ------------------------------------------------------------------------
    @property
    def package(self) -> str:
        return type(self).__module__

    def module_name(self, module: str) -> str:
        return f"{self.package}.{module}"

    def stage(self, spec: str) -> Callable:
        """The function ``"module:function"`` of this slice, imported on demand."""
        module, _, func = spec.partition(":")
        return getattr(importlib.import_module(self.module_name(module)), func)

    def make_data(self, task: str, data_cfg: dict, out_dir: Path, workers: int | None = None,
                  inputs: dict[str, str] | None = None) -> Any:
        extra = {"inputs": inputs} if inputs else {}  # only slices that declare data_inputs take them
        return self.stage("data:make_data")(task, data_cfg, Path(out_dir), workers, **extra)

    # Module whose code defines the training data (load_train below reads through it).
    train_data_module: ClassVar[str] = "data"

    def load_train(self, data_dir: Path) -> tuple:
        """(train, validation) datasets. Default: the shared store's train/test parquet files
        (the held-out test split serves as validation loss only; reported results always come
        from the final weights, never from a validation-selected checkpoint)."""
        module = importlib.import_module(self.module_name(self.train_data_module))
        if hasattr(module, "load_train"):
            return module.load_train(Path(data_dir))
        from ..data import store

        return (store.load_split(data_dir, "train", self.title or self.name),
                store.load_split(data_dir, "test", self.title or self.name))

    def evaluate(self, objective, data_dir: Path, eval_cfg: dict, seed: int, device, out_dir: Path) -> dict:
        return self.stage("evaluate:evaluate")(objective, Path(data_dir), eval_cfg, seed, device, out_dir)
