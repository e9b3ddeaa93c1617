"""``nextlat``: run any pipeline stage without Snakemake.

    nextlat check --scale smoke                # validate config.yaml at a scale
    nextlat benchmarks --scale smoke           # the registered benchmarks and their tasks
    nextlat runs --scale smoke                 # list the run matrix (<task>_<method>_s<seed>)
    nextlat data BENCHMARK TASK --scale smoke  # generate one dataset
    nextlat train RUN_ID --scale smoke         # train one run (resumes if interrupted)
    nextlat eval RUN_ID --scale smoke          # evaluate its final model
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import yaml

from . import benchmarks
from . import config as nlconfig
from .runs import expand_runs


def _parse_value(text: str):
    """YAML scalars/lists, plus floats YAML 1.1 leaves as strings (``3e-3``)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _load(args) -> dict:
    overrides = {}
    for item in args.set or []:
        key, _, value = item.partition("=")
        node = overrides
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = _parse_value(value)
    if "scale" in overrides:
        raise nlconfig.ConfigError("--set scale=... is not a config override; use --scale NAME")
    return nlconfig.load(args.config, args.scale, overrides)


def _paths(cfg: dict, run) -> tuple[Path, Path]:
    out = Path(cfg["results"]) / cfg["scale"] / run.benchmark
    return out / "data" / run.task, out / "runs" / run.run_id


def _run(cfg: dict, run_id: str):
    runs = expand_runs(cfg)
    if run_id not in runs:
        raise SystemExit(f"unknown run {run_id!r}; `nextlat runs` lists them (e.g. {next(iter(runs))})")
    return runs[run_id]


def cmd_check(args):
    cfg = _load(args)
    runs = expand_runs(cfg)
    print(f"config OK at scale {cfg['scale']!r}: {len(runs)} runs")


def cmd_benchmarks(args):
    from . import benchmarks

    cfg = _load(args)
    for name in benchmarks.names():
        bench = cfg["benchmarks"].get(name)
        state = "not configured" if bench is None else (
            "enabled" if bench.get("enabled", True) else "disabled")
        tasks = ", ".join(bench["tasks"]) if bench else ""
        print(f"{name:12s} {state:14s} tasks: {tasks}")


def cmd_runs(args):
    for run in expand_runs(_load(args)).values():
        print(run.run_id)


def cmd_data(args):
    from .stages.data import data_config, make_data

    cfg = _load(args)
    if args.benchmark not in cfg["benchmarks"]:
        raise nlconfig.ConfigError(f"unknown benchmark {args.benchmark!r}; configured: {sorted(cfg['benchmarks'])}")
    if args.task not in cfg["benchmarks"][args.benchmark]["tasks"]:
        raise nlconfig.ConfigError(f"benchmarks.{args.benchmark}.tasks at scale {cfg['scale']!r} has no task "
                                   f"{args.task!r}; it has {cfg['benchmarks'][args.benchmark]['tasks']}")
    out = Path(args.out or Path(cfg["results"]) / cfg["scale"] / args.benchmark / "data" / args.task)
    needs = benchmarks.get(args.benchmark).data_inputs(cfg["benchmarks"][args.benchmark], args.task)
    if needs:  # made by the benchmark's own rules (a corpus, a tokenizer): Snakemake builds the chain
        raise nlconfig.ConfigError(
            f"the {args.benchmark} data stage reads files its own rules make first ({', '.join(needs.values())}); "
            f"build it with: snakemake {out}/meta.json --cores 2 --config scale={cfg['scale']}")
    make_data(args.benchmark, args.task, data_config(args.benchmark, cfg["benchmarks"][args.benchmark]), out)
    print(out)


def cmd_train(args):
    from .stages.train import train

    cfg = _load(args)
    run = _run(cfg, args.run)
    data_dir, run_dir = _paths(cfg, run)
    path = train(run.config, data_dir, Path(args.out or run_dir), on_stale=args.on_stale,
                 stop_after=args.stop_after)
    _report_training(path, args, run_dir)


def _report_training(path, args, run_dir) -> None:
    if path is None:  # stop_after stopped it early: the checkpoint is kept for resuming
        print(f"stopped after {args.stop_after} step(s); {Path(args.out or run_dir)}/checkpoints/last.ckpt "
              "is kept, run the same command again to resume")
    else:
        print(path)


def cmd_train_config(args):
    """Train from a resolved run config file (a run's config.yaml); also the rank entry point."""
    from .stages.train import train

    run_cfg = yaml.safe_load(Path(args.run_config).read_text())
    path = train(run_cfg, Path(args.data), Path(args.out), on_stale=args.on_stale, stop_after=args.stop_after)
    _report_training(path, args, Path(args.out))


def cmd_eval(args):
    from .stages.evaluate import evaluate

    cfg = _load(args)
    run = _run(cfg, args.run)
    data_dir, run_dir = _paths(cfg, run)
    model = Path(args.model or run_dir / "model.pt")
    record = evaluate(run.config, model, data_dir, cfg["benchmarks"][run.benchmark]["eval"],
                      Path(args.out or run_dir / "eval.json"), device=args.device)
    print(json.dumps({k: v for k, v in record["metrics"].items() if not isinstance(v, list)}, indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nextlat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default="config.yaml")
    common.add_argument("--scale", default=None, help="smoke | default | paper (default: config's)")
    common.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config value, e.g. --set benchmarks.<name>.train.lr=1e-3")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("check", parents=[common], help="validate the config").set_defaults(func=cmd_check)
    sub.add_parser("runs", parents=[common], help="list run ids").set_defaults(func=cmd_runs)
    sub.add_parser("benchmarks", parents=[common], help="list benchmarks and tasks").set_defaults(func=cmd_benchmarks)

    p = sub.add_parser("data", parents=[common], help="generate a dataset")
    p.add_argument("benchmark")
    p.add_argument("task")
    p.add_argument("--out")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("train", parents=[common], help="train one run")
    p.add_argument("run")
    p.add_argument("--out")
    p.add_argument("--on-stale", choices=["error", "restart"], default="error",
                   help="what to do with a checkpoint written under a different config")
    p.add_argument("--stop-after", type=int, default=None, help="stop after this many steps (resumable)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("train-config", help="train from a resolved run config (a run's config.yaml)")
    p.add_argument("run_config")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--on-stale", choices=["error", "restart"], default="error")
    p.add_argument("--stop-after", type=int, default=None)
    p.set_defaults(func=cmd_train_config)

    p = sub.add_parser("eval", parents=[common], help="evaluate a trained run")
    p.add_argument("run")
    p.add_argument("--model")
    p.add_argument("--out")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except _expected_errors() as err:  # a message, not a traceback (NEXTLAT_DEBUG=1 shows it)
        if os.environ.get("NEXTLAT_DEBUG"):
            raise
        print(f"nextlat: error: {err.args[0] if isinstance(err, KeyError) and err.args else err}", file=sys.stderr)
        return 2
    return 0


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that describe a problem with the user's config, files or runs."""
    from .stages.process import RunLockedError
    from .training.checkpoint import CheckpointError

    return (nlconfig.ConfigError, FileNotFoundError, PermissionError, IsADirectoryError, CheckpointError,
            RunLockedError, KeyError, ValueError)


if __name__ == "__main__":
    sys.exit(main())
