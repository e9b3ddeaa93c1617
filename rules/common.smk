# Configuration, the run matrix and helpers shared by all rule files.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)  # import `nextlat` from this checkout

from nextlat import config as nlconfig
from nextlat.benchmarks import manhattan_has_coords
from nextlat.pipeline import data_config
from nextlat.runs import expand_runs

CFG = nlconfig.merge_scale(config)
validate(CFG, schema="../nextlat/schemas/config.schema.yaml")  # fills schema defaults
RUNS = expand_runs(CFG)
OUT = f"{CFG['results']}/{CFG['scale']}"
RUNTIME = CFG["runtime"]
USES_GPU = RUNTIME["request_gpus"] or RUNTIME["accelerator"] in ("gpu", "cuda")


def job_resources(devices, runtime_min):
    """Scheduler resources of a model job (training: all its devices; evaluation: one).

    Read by Snakemake locally (`--resources gpu=N` caps concurrent GPU jobs) and by the
    SLURM executor (gpu -> --gpus, tasks -> --ntasks, mem_mb, runtime). A job with several
    ranks gets `mpi`, so the SLURM job step runs our own `srun --ntasks` (see
    nextlat.pipeline.launch_command) instead of wrapping the job in `srun -n1`.
    """
    res = {"mem_mb": RUNTIME["mem_mb"], "runtime": runtime_min}
    if USES_GPU:
        res["gpu"] = devices
        if RUNTIME["gpu_model"]:
            res["gpu_model"] = RUNTIME["gpu_model"]
        if RUNTIME["cpus_per_gpu"]:
            res["cpus_per_gpu"] = RUNTIME["cpus_per_gpu"]
    if devices > 1:
        res.update(tasks=devices, mpi="srun")
        if USES_GPU:  # the SLURM executor otherwise asks for `tasks` tasks per GPU
            res["tasks_per_gpu"] = 1
    return res


TRAIN_RESOURCES = job_resources(RUNTIME["devices"], RUNTIME["runtime_min"])
EVAL_RESOURCES = job_resources(1, 60)


wildcard_constraints:
    benchmark="|".join(CFG["benchmarks"]),
    task=r"[a-z0-9]+",
    run=r"[A-Za-z0-9_.\-]+",


def lib(*patterns):
    """Library files a rule's results depend on: listed as inputs so that editing them
    reruns exactly the rules that use them (Snakemake does not track imported modules)."""
    root = Path(workflow.basedir) / "nextlat"
    return sorted(str(p) for pat in patterns for p in root.glob(pat))


def model_code(wildcards):
    """Code that defines a run's model: the trunk, the interface and its own method."""
    method = RUNS[wildcards.run].method
    return lib("models/*.py", "objectives/__init__.py", "objectives/base.py", f"objectives/{method}.py")


def bench_cfg(name):
    return CFG["benchmarks"][name]


def evals_of(benchmark):
    return [f"{OUT}/{benchmark}/runs/{r.run_id}/eval.json" for r in RUNS.values() if r.benchmark == benchmark]


def run_cfg(wildcards):
    """What defines a run (goes through params:, so a change reruns it). `runtime` is left
    out on purpose: devices, precision or threads never retrain anything (use
    --forcerun to retrain after such a change); scripts read it from the config instead."""
    return {k: v for k, v in RUNS[wildcards.run].config.items() if k != "runtime"}


def data_dir(benchmark, task):
    return f"{OUT}/{benchmark}/data/{task}"


def data_files(benchmark, task):
    """A dataset's files; Manhattan's splits are folders of parquet shards."""
    d = data_dir(benchmark, task)
    if benchmark == "manhattan":
        return {"meta": f"{d}/meta.json", "train": f"{d}/train", "test": f"{d}/test",
                "graph": f"{d}/graph.graphml", "eval_pairs": f"{d}/eval_pairs.parquet"}
    return {"meta": f"{d}/meta.json", "train": f"{d}/train.parquet", "test": f"{d}/test.parquet"}


def run_data(wildcards):
    """The generated dataset a run trains and is evaluated on."""
    run = RUNS[wildcards.run]
    return data_files(run.benchmark, run.task)


# Benchmarks served by the generic data/eval rules; Manhattan has its own (rules/manhattan.smk)
# because its datasets and evaluations write extra files (graph, pairs, generated samples).
GENERIC = "|".join(b for b in CFG["benchmarks"] if b != "manhattan") or "none"


# Data generation that runs in parallel asks the scheduler for this many cores.
DATA_THREADS = {"countdown": 2, "manhattan": 2}


def enabled(name):
    return name in CFG["benchmarks"] and bench_cfg(name).get("enabled", True)


def all_targets():
    targets = []
    if enabled("pathstar"):
        targets += rules.fig6.output
    if enabled("countdown"):
        targets += rules.fig4.output + rules.fig5.output
    if enabled("manhattan"):
        targets += rules.table1.output
        if MANHATTAN_MAPS:
            targets += rules.fig3.output
        else:
            logger.warning(f"fig3 skipped: {NO_MAPS_REASON}")
    return targets
