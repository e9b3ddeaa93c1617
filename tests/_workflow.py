"""Helpers for tests that run Snakemake on a throwaway copy of the workflow."""
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL_STATE = (".venv", ".git", "results", ".snakemake", "__pycache__", "*.egg-info")


def copy_workflow(dst: Path) -> Path:
    """Copy the checkout without local state (venv, results, Snakemake metadata)."""
    shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns(*LOCAL_STATE))
    return dst
