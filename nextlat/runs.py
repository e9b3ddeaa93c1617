"""The run matrix: benchmark x task x method x horizon x grid x seed -> resolved runs.

Every run gets a stable id (e.g. ``g5x5_nextlat-d3_s1234``) and a fully resolved config
(model, method, train, runtime) that the workflow passes to training through ``params:``
and that the run directory keeps as ``config.yaml``.
"""
from __future__ import annotations

import ast
import copy
import itertools
import operator
import re
from dataclasses import dataclass, field

from . import benchmarks
from .config import ConfigError, deep_merge, method_settings, method_tagged_problem, sub_schema, validate


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    benchmark: str
    task: str
    method: str
    horizon: int | None
    seed: int
    config: dict = field(compare=False, hash=False)

    @property
    def variant(self) -> str:
        """The run's point of its benchmark's ``sweep`` (e.g. ``"w128-b4k"``); "" without a sweep."""
        return self.config.get("variant", "")

    @property
    def labels(self) -> dict:
        return {"run_id": self.run_id, "benchmark": self.benchmark, "task": self.task,
                "method": self.method, "horizon": self.horizon, "seed": self.seed}


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def eval_horizon(expr, variables: dict[str, int]) -> int:
    """An int, or a small arithmetic expression of task variables such as ``"l-2"``."""
    if isinstance(expr, int):
        return expr

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in variables:
            return variables[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        raise ConfigError(f"horizon {expr!r}: only + - * of integers and {sorted(variables)} allowed")

    value = ev(ast.parse(str(expr), mode="eval"))
    if value < 1:
        raise ConfigError(f"horizon {expr!r} evaluates to {value} for {variables}; it must be >= 1")
    return value


def _method_variants(entry: dict, variables: dict[str, int]):
    """Yield (horizon, grid_suffix, method_config) for one ``methods`` entry."""
    entry = dict(entry)
    entry.pop("tasks", None)  # which tasks the entry runs on (expand_benchmark)
    grid = entry.pop("grid", {}) or {}
    horizons = entry.pop("horizon", None)
    horizons = horizons if isinstance(horizons, list) else [horizons]
    keys = sorted(grid)
    for h in horizons:
        h = None if h is None else eval_horizon(h, variables)
        for values in itertools.product(*(grid[k] for k in keys)):
            method = dict(entry, **dict(zip(keys, values)))
            if h is not None:
                method["horizon"] = h
            # numbers glue on (-lambda_kl0.1), words join with "_" (-stop_grad_none)
            suffix = "".join(f"-{k}_{v}" if isinstance(v, str) else f"-{k}{v}" for k, v in zip(keys, values))
            yield h, suffix, method


def sweep_points(sweep: dict, name: str) -> list[tuple[str, dict, dict]]:
    """(variant, {axis: value name}, override) for each point of a benchmark's ``sweep``: the
    product of its axes, in the order written; one point, ``("", {}, {})``, without a sweep.

    An axis maps value names to override sets ({model: ..., train: ..., method: {<method>:
    ...}}) merged into every run, so one grid holds the budget equal for every method. Value
    names form the variant (``w128-b4k``), which joins the run id, so they must be unique.
    """
    if not sweep:
        return [("", {}, {})]
    axes = list(sweep)
    for axis in axes:
        odd = [n for n in sweep[axis] if not isinstance(n, str)]
        if odd:  # YAML reads 1000: or yes: as a number or a bool; the names make run ids
            raise ConfigError(f"benchmarks.{name}.sweep.{axis}: value names must be words, got {odd!r} "
                              f"(quote them, or name them e.g. steps1k)")
        seedlike = [n for n in sweep[axis] if re.fullmatch(r"s\d+", n)]
        if seedlike:  # run ids end in _s<seed>: rw_gpt_s1000_s0 reads as two seeds
            raise ConfigError(f"benchmarks.{name}.sweep.{axis}: value names {seedlike} read as seeds in run "
                              f"ids; name the point for what it sets (e.g. steps1k)")
    names = [n for a in axes for n in sweep[a]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"benchmarks.{name}.sweep: value name(s) {dupes} appear twice; the names "
                          f"make the run ids, so every value of every axis needs its own")
    points = []
    for values in itertools.product(*(list(sweep[a]) for a in axes)):
        override: dict = {}
        for axis, value in zip(axes, values):
            override = deep_merge(override, sweep[axis][value] or {})
        points.append(("-".join(values), dict(zip(axes, values)), override))
    return points


def make_run_id(setting: str, variant: str, seed: int) -> str:
    """``<task>_<method tag>[_<variant>]_s<seed>``: the setting, its sweep point, its seed."""
    return setting + (f"_{variant}" if variant else "") + f"_s{seed}"


def setting_of(run_id: str, variant: str, seed: int) -> str:
    """The inverse of :func:`make_run_id`: the run id without its sweep point and seed."""
    return run_id.removesuffix(f"_s{seed}").removesuffix(f"_{variant}" if variant else "")


def _at_point(run_cfg: dict, variant: str, axes: dict, override: dict, where: str, gridded=()) -> dict:
    """``run_cfg`` at one sweep point: model and train merged in, then the run's method's own
    entry of ``override['method']``; the point is recorded as ``variant`` and ``sweep``.
    ``gridded``: the method keys the run's methods entry grids over (a sweep may not set them)."""
    if not variant:
        return run_cfg
    method = run_cfg["method"]
    cfg = deep_merge(run_cfg, {k: v for k, v in override.items() if k in ("model", "train")})
    mine = (override.get("method") or {}).get(method["name"]) or {}
    fixed = sorted({"name", "horizon", *gridded} & set(mine))
    if fixed:
        raise ConfigError(f"{where}.method.{method['name']} sets {fixed}: the methods entry sets those "
                          f"(name, horizon, its grid), and a sweep would silently overwrite them")
    cfg["method"] = dict(method, **mine)
    validate(dict(cfg["method"]), sub_schema("method"), where=f"{where}.method.{method['name']}")
    cfg["variant"], cfg["sweep"] = variant, dict(axes)
    return cfg


def expand_benchmark(cfg: dict, name: str) -> list[RunSpec]:
    bench = cfg["benchmarks"][name]
    adapter = benchmarks.get(name)
    adapter.check(bench)
    runs: list[RunSpec] = []
    for i, entry in enumerate(bench["methods"]):
        unknown = sorted(set(entry.get("tasks") or []) - set(bench["tasks"]))
        if unknown:
            raise ConfigError(f"benchmarks.{name}.methods[{i}].tasks names {unknown}, which are not among "
                              f"benchmarks.{name}.tasks {bench['tasks']}")
    points = sweep_points(bench.get("sweep") or {}, name)
    _check_sweep(bench, name)
    for task in bench["tasks"]:
        variables = adapter.task_vars(task)
        model = dict(bench["model"], **adapter.model_fields(bench, task))
        for entry in bench["methods"]:
            if task not in entry.get("tasks", bench["tasks"]):
                continue
            for h, suffix, method in _method_variants(entry, variables):
                for variant, axes, override in points:
                    for seed in bench["seeds"]:
                        tag = method["name"] + (f"-d{h}" if h is not None else "") + suffix
                        run_id = make_run_id(f"{task}_{tag}", variant, seed)
                        run_cfg = {"run_id": run_id, "benchmark": name, "task": task, "seed": seed,
                                   "model": dict(model), "method": method,
                                   "train": dict(bench["train"]), "runtime": dict(cfg["runtime"])}
                        run_cfg = _at_point(run_cfg, variant, axes, override,
                                            f"benchmarks.{name}.sweep.{'/'.join(axes.values())}", entry.get("grid") or {})
                        runs.append(RunSpec(run_id, name, task, method["name"], h, seed, run_cfg))
    seeds = bench["seeds"]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"benchmarks.{name}.seeds lists a seed twice: {seeds}")
    runs = _apply_overrides(runs, bench.get("run_overrides") or {}, name)
    _check_settings(runs, name, adapter, bench)
    for run in runs:
        _check_training(run, adapter, bench, cfg["runtime"])
    return runs


def _check_sweep(bench: dict, name: str) -> None:
    """Each sweep value's parts against their schemas (model and train blocks; the method
    settings of the methods this benchmark runs), before any run is built from them."""
    methods = {entry["name"] for entry in bench["methods"]}
    for axis, values in (bench.get("sweep") or {}).items():
        for value, override in values.items():
            where = f"benchmarks.{name}.sweep.{axis}.{value}"
            for part in ("model", "train"):
                if part in (override or {}):
                    validate(copy.deepcopy(override[part]), _partial(part), where=f"{where}.{part}")
            unknown = sorted(set((override or {}).get("method") or {}) - methods)
            if unknown:
                raise ConfigError(f"{where}.method names {unknown}, which benchmarks.{name}.methods "
                                  f"does not run (it runs {sorted(methods)})")


def _partial(part: str) -> dict:
    """The schema of a model or train block with nothing required: a sweep sets some keys."""
    schema = sub_schema(part)
    block = copy.deepcopy(schema["$defs"][part])
    block.pop("required", None)
    return {"$schema": schema["$schema"], "$defs": schema["$defs"], **block}


def _check_training(run: RunSpec, adapter, bench: dict, runtime: dict) -> None:
    """What would otherwise fail only once training starts, after the data was generated:
    the model's shape, the batch against the devices and the data, the schedule."""
    from .models.transformer import ModelConfig
    from .training.batching import per_device_batch
    from .training.schedules import lr_lambda

    where = f"benchmarks.{run.benchmark}" + (f".run_overrides.{run.run_id}"
                                            if run.run_id in (bench.get("run_overrides") or {}) else "")
    model, train = run.config["model"], run.config["train"]
    try:
        ModelConfig.from_dict(model)
    except ValueError as err:
        raise ConfigError(f"{where}.model (run {run.run_id}): {err}") from None
    try:  # the trainer's own checks (messages start with the key: "train.batch_size=...")
        per_device_batch(train, int(runtime.get("devices", 1)))
        lr_lambda(train.get("schedule"), int(train["steps"]))
    except ValueError as err:
        raise ConfigError(f"{where}.{err}") from None
    bs = int(train["batch_size"])
    for split in ("train", "test"):
        rows = adapter.max_rows(bench, run.task, split)
        if rows is not None and bs > rows:
            raise ConfigError(f"{where}.train.batch_size={bs} exceeds the {split} split of run {run.run_id}, "
                              f"which has {'at most ' if adapter.rows_are_bound else ''}{rows} rows")


def _apply_overrides(runs: list[RunSpec], overrides: dict, bench: str) -> list[RunSpec]:
    ids = [r.run_id for r in runs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ConfigError(f"benchmarks.{bench}.methods produce duplicate run ids: {dupes}")
    unknown = sorted(set(overrides) - set(ids))
    if unknown:
        raise ConfigError(f"benchmarks.{bench}.run_overrides names unknown run(s) {unknown}; "
                          f"runs are e.g. {ids[:3]}")
    out = []
    for run in runs:
        if run.run_id in overrides:
            cfg = deep_merge(run.config, overrides[run.run_id])
            for part in ("model", "train"):
                try:
                    validate({k: v for k, v in cfg[part].items()
                              if k not in ("vocab_size", "eos_id", "block_size")}, sub_schema(part))
                except ConfigError as err:
                    raise ConfigError(f"benchmarks.{bench}.run_overrides.{run.run_id}.{part}: {err}") from None
            if "method" in overrides[run.run_id]:  # the merged method, against its method's own keys
                validate(dict(cfg["method"]), sub_schema("method"),
                         where=f"benchmarks.{bench}.run_overrides.{run.run_id}.method")
            run = RunSpec(run.run_id, run.benchmark, run.task, run.method, run.horizon, run.seed, cfg)
        out.append(run)
    return out


def _check_settings(runs: list[RunSpec], name: str, adapter, bench: dict) -> None:
    """Build each run's method settings (the objective's own checks, e.g. BST's gaps) and
    refuse settings no training position of the run's rows can use (a horizon beyond
    ``model.block_size``): such a run would train silently without the method's terms.
    On a benchmark with tagged rows, refuse a method that cannot train on them."""
    settings = method_settings()
    for run in runs:
        method = run.config["method"]
        try:  # the schema has refused unknown keys already
            values = settings[method["name"]](**{k: v for k, v in method.items() if k != "name"})
            problem = values.row_problem(adapter.row_len(bench, run.task, run.config["model"]["block_size"]))
        except (TypeError, ValueError) as err:
            problem = str(err)
        if adapter.tagged_rows and not problem:
            problem = method_tagged_problem(method["name"])
            problem = problem and f"{problem}; this benchmark's rows are tagged (input/target pairs)"
        if problem:
            raise ConfigError(f"benchmarks.{name}: run {run.run_id} ({method['name']}): {problem}")


def expand_runs(cfg: dict, benchmark: str | None = None) -> dict[str, RunSpec]:
    """All runs of the enabled benchmarks (or of one), keyed by run id."""
    names = [benchmark] if benchmark else [b for b, c in cfg["benchmarks"].items() if c.get("enabled", True)]
    return {r.run_id: r for name in names for r in expand_benchmark(cfg, name)}
