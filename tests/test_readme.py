"""Every command in README.md runs as written, in the order shown, on a fresh copy.

Commands at the smoke scale run for real; those that would train at a larger scale or
submit to a cluster are planned with ``-n`` (a dry run), which still checks the config,
the profile and the DAG. ``make`` lines are what CI itself runs, so they are skipped here.
"""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from _workflow import ROOT, copy_workflow

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                lines.append(line)
    return lines


def as_run(line: str) -> list[str] | None:
    args = shlex.split(line)
    if args[0] == "make":
        return None
    assert args[0].startswith(".venv/bin/"), f"README command without the venv path: {line}"
    args[0] = str(BIN / Path(args[0]).name)
    if Path(args[0]).name == "snakemake" and "scale=smoke" not in args:
        args.append("-n")  # would train at the default or paper scale: plan only
    return args


def test_readme_lists_cli_and_workflow_commands():
    names = {Path(shlex.split(c)[0]).name for c in readme_commands()}
    assert {"make", "snakemake", "nextlat"} <= names


def test_readme_commands_run_in_order(tmp_path):
    repo = copy_workflow(tmp_path / "repo")
    for line in readme_commands():
        args = as_run(line)
        if args is None:
            continue
        proc = subprocess.run(args, cwd=repo, capture_output=True, text=True)
        assert proc.returncode == 0, f"README command failed: {line}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert (repo / "results/smoke/report.html").stat().st_size > 0
    assert (repo / "results/smoke/pathstar/runs/g2x4_nextlat-d2_s0/eval.json").exists()
