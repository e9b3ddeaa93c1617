"""The workflow through profiles/slurm on a real (throwaway, single-node) SLURM cluster.

The fixture installs SLURM if missing and starts it with accounting and two fake GPUs
(tests/slurm/cluster.sh), then stops every daemon it started. It runs where it may
change the machine: in CI (`CI` set) or with NEXTLAT_TEST_SLURM=1, as root with apt.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from _workflow import ROOT, copy_workflow

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")

pytestmark = pytest.mark.slow


def _skip_reason() -> str | None:
    if not (os.environ.get("CI") or os.environ.get("NEXTLAT_TEST_SLURM") == "1"):
        return "installs and starts a SLURM cluster: runs in CI or with NEXTLAT_TEST_SLURM=1"
    if os.geteuid() != 0:
        return "needs root to start slurmctld/slurmd/munge"
    if not shutil.which("apt-get") and not shutil.which("slurmctld"):
        return "SLURM is not installed and apt-get is not available to install it"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed (pip install '.[slurm]')"
    return None


@pytest.fixture(scope="module")
def cluster():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    subprocess.run(["bash", str(CLUSTER), "install"], check=True, timeout=600)
    try:
        subprocess.run(["bash", str(CLUSTER), "start"], check=True, timeout=300)
        yield
    finally:
        subprocess.run(["bash", str(CLUSTER), "stop"], timeout=120)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """A copy of the workflow with a test profile (partitions main/gpu, account testacc)."""
    dst = copy_workflow(tmp_path_factory.mktemp("slurm") / "repo")
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    profile["default-resources"].update(slurm_partition="main", slurm_account="testacc", mem_mb=1000, runtime=10)
    profile["slurm-init-seconds-before-status-checks"] = 2
    (dst / "profiles/test").mkdir()
    (dst / "profiles/test/config.yaml").write_text(yaml.safe_dump(profile))
    # One GPU training run with 2 ranks (DDP over gloo: the fake GPUs have no CUDA behind them).
    (dst / "slurm_test.yaml").write_text(yaml.safe_dump({"runtime": {
        "devices": 2, "strategy": "ddp", "accelerator": "auto", "request_gpus": True, "gpu_model": "fake",
        "gpu_partition": "gpu",
        "mem_mb": 1500, "runtime_min": 10}}))
    return dst


def run(workflow, *targets, configfiles=(), timeout=600):
    cmd = [str(SNAKEMAKE), *targets, "--profile", "profiles/test", "--configfile", "slurm_test.yaml",
           *configfiles, "--config", "scale=smoke"]
    return subprocess.run(cmd, cwd=workflow, capture_output=True, text=True, timeout=timeout)


def sacct_rows() -> list[dict]:
    out = subprocess.run(["sacct", "-X", "--parsable2", "--noheader", "--starttime", "now-1hour",
                          "--format=JobIDRaw,Partition,State,AllocTRES,Account,Comment"],
                         capture_output=True, text=True, check=True).stdout
    keys = ["id", "partition", "state", "tres", "account", "comment"]
    return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line.strip()]


def test_data_train_eval_through_slurm(cluster, workflow):
    target = "results/smoke/pathstar/runs/g2x4_gpt_s0/eval.json"
    proc = run(workflow, target)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-6000:]
    assert (workflow / target).exists()
    jobs = {r["comment"].split("_wildcards")[0]: r for r in sacct_rows() if r["comment"].startswith("rule_")}
    data, train, evaluate = jobs["rule_pathstar_data"], jobs["rule_train"], jobs["rule_pathstar_eval"]
    for job in (data, train, evaluate):
        assert job["state"] == "COMPLETED" and job["account"] == "testacc", job
    assert data["partition"] == "main" and "gres/gpu" not in data["tres"]
    assert train["partition"] == "gpu" and "gres/gpu=2" in train["tres"], train
    assert evaluate["partition"] == "gpu" and "gres/gpu=1" in evaluate["tres"], evaluate
    # both ranks trained, as tasks of one srun step: Fabric joined a 2-member process group
    log = (workflow / "results/smoke/logs/train/pathstar/g2x4_gpt_s0.log").read_text()
    assert "srun --nodes=1 --ntasks-per-node=2" in log
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1, MEMBER: 2/2" in log, log[-2000:]


def test_failing_rule_fails_the_workflow_loudly(cluster, workflow):
    # Config errors are refused before any job starts, so break the data instead: a truncated
    # training parquet (left by the test above) makes the training job raise on the cluster.
    train = workflow / "results/smoke/pathstar/data/g2x4/train.parquet"
    train.write_bytes(train.read_bytes()[:200])
    proc = run(workflow, "results/smoke/pathstar/runs/g2x4_nextlat-d2_s0/model.pt", timeout=400)
    assert proc.returncode != 0
    assert "FAILED" in proc.stdout + proc.stderr
