"""What a scale costs before it runs: training FLOPs counted on each run's real step, and the
time they take on a CPU (calibrated on a scale already built) and on one GPU.

For every run of the scale (nextlat.runs.expand_runs), one training step of its objective at
its model size is counted with torch's FlopCounterMode (nextlat.training.flops.step_flops, one
row of the run's length; a step is linear in its rows) and multiplied by rows x steps. Times:

- **CPU**: FLOPs / the effective rate each benchmark reached in a build that exists (its train
  jobs' CPU seconds from their `benchmark:` files, which include the in-training validation,
  checkpoints and start-up, against the same count for its runs): `--calibrate
  results/default`. Small models run far below a core's peak, so the rate is measured, not
  assumed. The hours are the makespan of `--cores` jobs side by side, longest run first.
- **GPU**: per step the larger of the FLOPs at `--gpu-tflops` and a floor of `--gpu-step-ms`
  (a small model's step is bound by kernel launches and Python, not arithmetic). Defaults are
  measured on an H200 (bench/README.md): 341 TFLOP/s for the 1.3B model in bf16, and 25 ms per
  step of a 4 x 256 model through the Fabric trainer (bench/gpu_check.py: 200 steps in 5 s,
  start-up included). One job at a time (`--resources gpu=1`).

Evaluation jobs, probes, data and speculative decoding are not counted, so add the default
scale's measured share (README) for a whole build.

    .venv/bin/python bench/scale_cost.py --scale workstation --calibrate results/default
    .venv/bin/python bench/scale_cost.py --scale default --calibrate results/default --cores 2
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from nextlat import benchmarks  # noqa: E402
from nextlat import config as nlconfig  # noqa: E402
from nextlat.objectives.base import build_objective  # noqa: E402
from nextlat.models.transformer import ModelConfig  # noqa: E402
from nextlat.runs import expand_runs  # noqa: E402
from nextlat.training.flops import step_flops  # noqa: E402
from nextlat.training.throughput import random_batch  # noqa: E402


def row_flops(run, bench_cfg: dict, cache: dict) -> int:
    """FLOPs of one training row of ``run`` (forward + backward, recomputation excluded)."""
    model, method = run.config["model"], run.config["method"]
    seq_len = benchmarks.get(run.benchmark).row_len(bench_cfg, run.task, model["block_size"]) - 1
    key = (repr(sorted(model.items())), repr(sorted(method.items())), seq_len)
    if key not in cache:
        cfg = ModelConfig.from_dict(model)
        torch.manual_seed(0)
        objective = build_objective(cfg, method)
        counted = step_flops(objective, random_batch(cfg, 1, seq_len, "cpu"))
        cache[key] = counted["total"] - counted["recomputed"]
    return cache[key]


def built_runs(results: Path, cfg: dict) -> pd.DataFrame:
    """The runs a built scale trained, as they were configured (each run folder's resolved
    config.yaml) with the CPU seconds of their train job (its `benchmark:` file)."""
    cache: dict = {}
    rows = []
    for tsv in sorted((results / "benchmarks" / "train").glob("*/*.tsv")):
        run_cfg = results / tsv.parent.name / "runs" / tsv.stem / "config.yaml"
        if not run_cfg.exists():
            continue
        conf = yaml.safe_load(run_cfg.read_text())
        run = SimpleNamespace(benchmark=conf["benchmark"], task=conf["task"], run_id=conf["run_id"], config=conf)
        bench_cfg = cfg["benchmarks"].get(run.benchmark, {})
        rows.append(_row(run, row_flops(run, bench_cfg, cache)) | {"cpu_s": float(pd.read_csv(tsv, sep="\t")["cpu_time"].iloc[-1])})
    return pd.DataFrame(rows)


def _row(run, per_row: int) -> dict:
    train = run.config["train"]
    rows, steps = int(train["batch_size"]), int(train["steps"])
    return {"benchmark": run.benchmark, "run_id": run.run_id, "steps": steps, "rows": rows,
            "step_gflop": per_row * rows / 1e9, "pflop": per_row * rows * steps / 1e15}


def frame(cfg: dict) -> pd.DataFrame:
    cache: dict = {}
    return pd.DataFrame([_row(run, row_flops(run, cfg["benchmarks"][run.benchmark], cache))
                         for run in expand_runs(cfg).values()])


def makespan(seconds, cores: int) -> float:
    """Wall seconds of jobs on ``cores`` workers, longest first onto the least loaded (LPT)."""
    loads = [0.0] * cores
    for t in sorted(seconds, reverse=True):
        loads[loads.index(min(loads))] += t
    return max(loads)


def main(argv=None) -> pd.DataFrame:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", default="workstation")
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--calibrate", type=Path, help="a built scale's results folder (results/<scale>)")
    p.add_argument("--calibrate-scale", help="its scale (default: the folder's name)")
    p.add_argument("--cores", type=int, default=16, help="CPU jobs side by side")
    p.add_argument("--gpu-tflops", type=float, default=341.0)
    p.add_argument("--gpu-step-ms", type=float, default=25.0)
    p.add_argument("--csv", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    df = frame(nlconfig.load(args.config, args.scale))
    df["gpu_s"] = df["steps"] * (df["step_gflop"] / (args.gpu_tflops * 1e3)).clip(lower=args.gpu_step_ms / 1e3)

    if args.calibrate:
        built = built_runs(args.calibrate, nlconfig.load(args.config, args.calibrate_scale or args.calibrate.name))
        if built.empty:
            raise SystemExit(f"{args.calibrate}: no benchmark files of its train jobs (build the scale first)")
        rate = built.groupby("benchmark")["pflop"].sum() * 1e6 / built.groupby("benchmark")["cpu_s"].sum()
        print(f"calibration ({args.calibrate}, {len(built)} runs; GFLOP/s per core): "
              + ", ".join(f"{b} {r:.1f} GFLOP/s" for b, r in rate.items()))
        df["cpu_core_s"] = df["pflop"] * 1e6 / df["benchmark"].map(rate)  # NaN: not calibrated

    per = df.groupby("benchmark", sort=False).agg(runs=("run_id", "count"), steps=("steps", "sum"),
                                                    pflop=("pflop", "sum"), gpu_h=("gpu_s", "sum"))
    per["gpu_h"] /= 3600
    if "cpu_core_s" in df:
        per["cpu_h"] = df.groupby("benchmark", sort=False)["cpu_core_s"].apply(
            lambda t: float("nan") if t.isna().any() else makespan(t, args.cores) / 3600)
    per.loc["total"] = per.sum(numeric_only=True, min_count=1)
    if "cpu_h" in per:  # every run on the same cores; no total while a benchmark is not calibrated
        per.loc["total", "cpu_h"] = (float("nan") if df["cpu_core_s"].isna().any()
                                     else makespan(df["cpu_core_s"], args.cores) / 3600)
    pd.set_option("display.width", 160)
    print(f"scale {args.scale}: training only; GPU: one job at a time, max({args.gpu_tflops:g} TFLOP/s, "
          f"{args.gpu_step_ms:g} ms/step); CPU: makespan of {args.cores} jobs side by side at the calibrated rates")
    print(per.round(3).to_string())
    if args.csv:
        df.to_csv(args.csv, index=False)
    return per


if __name__ == "__main__":
    main()
