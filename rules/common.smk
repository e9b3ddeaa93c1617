# Configuration, the benchmark registry, the run matrix and helpers shared by all rule files.
# Nothing here names a benchmark: each one is a slice (nextlat/benchmarks/<name>/) and a
# rules file (rules/<name>.smk) found through the registry.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

sys.path.insert(0, workflow.basedir)  # import `nextlat` from this checkout

from nextlat import benchmarks as registry
from nextlat import config as nlconfig
from nextlat.codedeps import module_files, objective_module
from nextlat.runs import expand_runs
from nextlat.stages.data import data_config
from nextlat.stages.train import code_modules

# The schema is composed from the shared file and each slice's schema.yaml, so it is checked
# with the library's validator (the same jsonschema, defaults filled in) rather than
# snakemake.utils.validate, which only reads one schema file.
try:
    CFG = nlconfig.validate(nlconfig.merge_scale(config))
    RUNS = expand_runs(CFG)
except nlconfig.ConfigError as err:
    raise WorkflowError(f"config.yaml: {err}") from None
OUT = f"{CFG['results']}/{CFG['scale']}"
RUNTIME = CFG["runtime"]
USES_GPU = RUNTIME["request_gpus"] or RUNTIME["accelerator"] in ("gpu", "cuda")
ALL_TARGETS = []  # each rules/<name>.smk appends its report targets; `all` builds them


def enabled(name):
    return name in CFG["benchmarks"] and CFG["benchmarks"][name].get("enabled", True)


ENABLED = [name for name in registry.names() if enabled(name)]
SPECS = {name: registry.get(name) for name in ENABLED}


def job_resources(devices, runtime_min):
    """Scheduler resources of a model job (training: all its devices; evaluation: one).

    Read by Snakemake locally (`--resources gpu=N` caps concurrent GPU jobs) and by the
    SLURM executor (gpu -> --gpus, tasks -> --ntasks, mem_mb, runtime). A job with several
    ranks gets `mpi`, so the SLURM job step runs our own `srun --ntasks` (see
    nextlat.stages.train.launch_command) instead of wrapping the job in `srun -n1`.
    """
    res = {"mem_mb": RUNTIME["mem_mb"], "runtime": runtime_min}
    if USES_GPU:
        res["gpu"] = devices
        if RUNTIME["gpu_partition"]:  # a rule's own resource, so it holds for every benchmark's rules
            res["slurm_partition"] = RUNTIME["gpu_partition"]
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
    benchmark="|".join(ENABLED) or "none",
    task=r"[a-z0-9]+",
    run=r"[A-Za-z0-9_.\-]+",


# --- code inputs: what a stage imports ------------------------------------------------------
SHARED_SCHEMA = str(Path(workflow.basedir) / "nextlat/schemas/config.schema.yaml")


def code(*modules):
    """The library files the given modules import (nextlat.codedeps), listed as inputs so
    that editing one reruns exactly the rules whose stage runs it. A stage that validates a
    config block through nextlat.config also depends on the shared schema and on the schema of
    each benchmark slice it imports (not on other benchmarks' schemas)."""
    files = list(module_files(*modules))
    if any(f.endswith("nextlat/config.py") for f in files):
        files.append(SHARED_SCHEMA)
        files += [str(registry.schema_file(n)) for n in registry.names()
                  if any(f"/nextlat/benchmarks/{n}/" in f for f in files)]
    return files


def slice_module(benchmark, module):
    return SPECS[benchmark].module_name(module)


def run_of(wildcards):
    return RUNS[wildcards.run]


# --- paths -----------------------------------------------------------------------------------
def bench_cfg(name):
    return CFG["benchmarks"][name]


def data_dir(benchmark, task):
    return f"{OUT}/{benchmark}/data/{task}"


def run_dir(benchmark, run_id):
    return f"{OUT}/{benchmark}/runs/{run_id}"


def _outputs(spec_outputs, folder):
    return {key: directory(f"{folder}/{o.path}") if o.directory else f"{folder}/{o.path}"
            for key, o in spec_outputs.items()}


def data_outputs(benchmark, task="{task}"):
    """The files of one dataset, as the benchmark's spec declares them."""
    return _outputs(SPECS[benchmark].data_outputs, data_dir(benchmark, task))


def data_inputs(benchmark, task):
    """Files the benchmark's own rules make before its data stage (its spec's data_inputs)."""
    return {k: f"{OUT}/{benchmark}/{v}" for k, v in SPECS[benchmark].data_inputs(bench_cfg(benchmark), task).items()}


def data_files(benchmark, task):
    """Plain paths of a dataset's files (inputs of later stages)."""
    return {k: f"{data_dir(benchmark, task)}/{o.path}" for k, o in SPECS[benchmark].data_outputs.items()}


def run_data(wildcards):
    """The generated dataset a run trains and is evaluated on."""
    run = run_of(wildcards)
    return data_files(run.benchmark, run.task)


def eval_file(benchmark, run_id):
    return f"{run_dir(benchmark, run_id)}/{SPECS[benchmark].eval_outputs['eval'].path}"


def evals_of(benchmark):
    return [eval_file(benchmark, r.run_id) for r in RUNS.values() if r.benchmark == benchmark]


def run_cfg(wildcards):
    """What defines a run (goes through params:, so a change reruns it). `runtime` is left
    out on purpose: devices, precision or threads never retrain anything (use
    --forcerun to retrain after such a change); scripts read it from the config instead."""
    return {k: v for k, v in run_of(wildcards).config.items() if k != "runtime"}
