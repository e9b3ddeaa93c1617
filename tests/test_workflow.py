"""End to end: the Snakemake workflow at smoke scale, and its rerun semantics.

Runs on a temporary copy of the checkout so that results and .snakemake metadata never
touch the working tree.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from _workflow import copy_workflow

SNAKEMAKE = Path(sys.executable).with_name("snakemake")
FIG = "results/smoke/figures/fig6_pathstar.png"

pytestmark = pytest.mark.slow


def snakemake(cwd, *args, check=True, config=()):
    cmd = [str(SNAKEMAKE), "--cores", "2", *args, "--config", "scale=smoke", *config]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc.stdout + proc.stderr


def planned(output: str) -> dict[str, list[str]]:
    """rule name -> list of the `wildcards:` lines of jobs a dry run would execute."""
    jobs: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        m = re.match(r"(?:local)?rule (\w+):", block.strip())
        if m:
            wc = re.search(r"wildcards: (.*)", block)
            jobs.setdefault(m.group(1), []).append(wc.group(1) if wc else "")
    return jobs


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    dst = copy_workflow(tmp_path_factory.mktemp("wf") / "repo")
    snakemake(dst, "all")
    return dst


def test_smoke_run_builds_figure_and_table(workdir):
    for rel in (FIG, "results/smoke/figures/fig6_pathstar.pdf", "results/smoke/tables/fig6_pathstar.csv",
                "results/smoke/tables/fig6_pathstar.md", "results/smoke/tables/fig4_countdown.md",
                "results/smoke/figures/fig5_countdown_validity.png", "results/smoke/tables/table3.md",
                "results/smoke/tables/table7.csv", "results/smoke/figures/draft_length_fineweb.png"):
        assert (workdir / rel).stat().st_size > 0, rel
    run_dir = workdir / "results/smoke/pathstar/runs/g2x4_nextlat-d2_s0"
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert cfg["method"] == {"name": "nextlat", "lambda_next_h": 1.0, "lambda_kl": 1.0, "dyn_hidden": 32,
                             "horizon": 2}
    assert (run_dir / "metrics.csv").exists()
    assert list((workdir / "results/smoke/logs/train/pathstar").glob("*.log"))


def test_second_run_does_nothing(workdir):
    out = snakemake(workdir, "-n", "all")
    assert "Nothing to be done" in out, out[-2000:]


def test_changing_one_runs_hyperparameter_reruns_only_that_run(workdir):
    cfg_path = workdir / "config.yaml"
    original = cfg_path.read_text()
    cfg = yaml.safe_load(original)
    cfg["scales"]["smoke"]["benchmarks"]["pathstar"]["run_overrides"] = {"g2x4_gpt_s0": {"train": {"lr": 3e-3}}}
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        out = snakemake(workdir, "-n", "fig6")
    finally:
        cfg_path.write_text(original)
    jobs = planned(out)
    assert sorted(jobs) == ["fig6", "pathstar_eval", "train"], out[-3000:]
    assert jobs["train"] == ["benchmark=pathstar, run=g2x4_gpt_s0"]
    assert jobs["pathstar_eval"] == ["run=g2x4_gpt_s0"]
    assert "Params have changed" in out


def planned_after_edit(workdir, rel: str, target: str = "fig6") -> dict[str, list[str]]:
    """The dry-run plan after appending a comment to one library file. The file is then
    restored, modification time included, so later checks see an up-to-date workflow.
    The `all` job itself (no outputs) is left out of the plan."""
    path = workdir / rel
    original, stat = path.read_text(), path.stat()
    path.write_text(original + "\n# an edit\n")
    try:
        jobs = planned(snakemake(workdir, "-n", target))
    finally:
        path.write_text(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    jobs.pop("all", None)
    return jobs


def test_editing_plot_code_reruns_only_the_figure(workdir):
    # the claims read Path-Star's values through report.claim_frame, so they are redone too
    jobs = planned_after_edit(workdir, "nextlat/benchmarks/pathstar/report.py", "all")
    assert sorted(jobs) == ["benchmark_claims", "claims", "fig6"]
    assert jobs["benchmark_claims"] == ["benchmark=pathstar"]


def test_bad_config_key_stops_before_planning(workdir):
    out = snakemake(workdir, "-n", check=False, config=["runtime={'devicez': 2}"])
    assert "devicez" in out


def test_second_workflow_copy_reuses_cached_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("SNAKEMAKE_OUTPUT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    target = "results/smoke/pathstar/data/g2x4/meta.json"
    manhattan = "results/smoke/manhattan/data/rw"  # split folders of parquet parts are cached too
    copies = []
    for name in ("a", "b"):
        copies.append(snakemake(copy_workflow(tmp_path / name), target, f"{manhattan}/meta.json", "--cache"))
    assert (tmp_path / "b" / manhattan / "meta.json").is_symlink()
    assert list((tmp_path / "b" / manhattan / "train").glob("part-*.parquet"))
    assert "Moving output file" in copies[0] and "to cache" in copies[0]
    assert "Moving output file" not in copies[1]  # the second copy only links
    linked = tmp_path / "b" / target
    assert linked.is_symlink() and linked.resolve().parent == (tmp_path / "cache").resolve()


def test_editing_objective_code_retrains_only_that_method(workdir):
    jobs = planned_after_edit(workdir, "nextlat/objectives/nextlat.py")
    assert sorted(jobs) == ["fig6", "pathstar_eval", "train"]
    assert jobs["train"] == ["benchmark=pathstar, run=g2x4_nextlat-d2_s0"]


def test_report_has_every_figure_and_table(workdir):
    out = workdir / "report.html"
    snakemake(workdir, "--report", str(out))
    html = out.read_text()
    assert "fig6_pathstar.png" in html and "fig6_pathstar.csv" in html
    assert "Path-Star (Figure 6): solve rate" in html  # the caption
    assert "table1_manhattan.csv" in html and "Manhattan world models (Table 1)" in html


def test_runtime_settings_retrain_nothing(workdir):
    (workdir / "runtime.yaml").write_text(yaml.safe_dump({"runtime": {"num_threads": 2, "compile": True}}))
    out = snakemake(workdir, "-n", "fig6", "--configfile", "runtime.yaml")
    assert "Nothing to be done" in out, out[-2000:]


MH_TABLE = "results/smoke/tables/table1_manhattan.csv"


def test_manhattan_table1_has_every_method_and_the_true_world_model(workdir):
    import pandas as pd

    table = pd.read_csv(workdir / MH_TABLE).set_index("method")
    assert list(table.index) == ["gpt", "mtp d=2", "jtp d=2", "nextlat d=2", "true world model"]
    true = table.loc["true world model"]
    # the oracle reads the true graph: it must be perfect on every metric it has
    assert true["next_token_mean"] == 100 and true["valid_mean"] == 100 and true["detour_mean"] == 100
    assert true["compression_mean"] == 1.0
    assert table.loc["nextlat d=2", "paper_valid"] == 98.7
    md = (workdir / MH_TABLE.replace(".csv", ".md")).read_text()
    assert "true world model" in md and "paper_valid" in md


def test_manhattan_fig3_maps_are_self_contained(workdir):
    import json

    maps = sorted((workdir / "results/smoke/figures/fig3_manhattan").glob("*.html"))
    labels = {p.stem.rsplit("_", 1)[0] for p in maps}
    assert labels == {"true_rw", "rw_gpt_s0", "rw_mtp-d2_s0", "rw_jtp-d2_s0", "rw_nextlat-d2_s0"}
    for path in maps:
        html = path.read_text()
        # renders offline: no script or stylesheet is fetched (Leaflet is inlined)
        assert not re.search(r"<script[^>]*\bsrc=", html) and not re.search(r"<link[^>]*\bhref=", html), path
        assert "L.polyline" in html or "polyline" in html.lower()
    oracle = json.loads((workdir / "results/smoke/manhattan/oracle/rw/reconstruction.json").read_text())
    assert oracle["counts"]["n_new_edges"] == 0  # true traversals need no street the city lacks


def test_editing_map_code_redraws_only_fig3(workdir):
    assert sorted(planned_after_edit(workdir, "nextlat/benchmarks/manhattan/maps.py", "fig3")) == ["fig3"]


def test_editing_map_code_leaves_table1_alone(workdir):
    assert sorted(planned_after_edit(workdir, "nextlat/benchmarks/manhattan/maps.py", "all")) == ["fig3"]


def test_graph_without_coordinates_skips_maps_and_says_why(workdir):
    for name in ("neighbors.pkl", "turns.pkl"):
        (workdir / name).write_bytes(b"")  # a dry run never reads them
    override = {"scales": {"smoke": {"benchmarks": {"manhattan": {"graph": {
        "source": "pickle", "pickle": {"neighbors": "neighbors.pkl", "turns": "turns.pkl"}}}}}}}
    (workdir / "pickle.yaml").write_text(yaml.safe_dump(override))
    out = snakemake(workdir, "-n", "all", "--configfile", "pickle.yaml", check=False)
    assert "density needs node coordinates" in out  # smoke inherits pickups: density; refused at once
    override["scales"]["smoke"]["benchmarks"]["manhattan"]["data"] = {"pickups": "uniform"}
    (workdir / "pickle.yaml").write_text(yaml.safe_dump(override))
    out = snakemake(workdir, "-n", "all", "--configfile", "pickle.yaml")
    assert "fig3 skipped" in out and "no node coordinates" in out
    assert "table1" in planned(out)  # the metrics still work without coordinates
    out = snakemake(workdir, "-n", "fig3", "--configfile", "pickle.yaml", check=False)
    assert "fig3 cannot be built" in out and "no node coordinates" in out


# --- what an edit to an objective reruns, across every benchmark (`all`) ----------------------
def plan_for_methods(workdir, methods: set[str]) -> dict[str, list[str]]:
    """The jobs that must rerun when the code of ``methods`` changes: their runs' train and
    eval jobs, the Manhattan map reconstructions of those runs (first seed), the report
    targets of every benchmark that has such a run (they read all its evals), its claims and
    the gathered claims table."""
    from nextlat import benchmarks
    from nextlat.config import load
    from nextlat.decoding.drafters import SELF_DRAFTING
    from nextlat.runs import expand_runs

    cfg = load(workdir / "config.yaml", "smoke")
    runs = [r for r in expand_runs(cfg).values() if r.method in methods]
    jobs = {"train": sorted(f"benchmark={r.benchmark}, run={r.run_id}" for r in runs)}
    for name in sorted({r.benchmark for r in runs}):
        jobs[f"{name}_eval"] = sorted(f"run={r.run_id}" for r in runs if r.benchmark == name)
        for target in benchmarks.get(name).reports:
            jobs[target] = [""]
    probed = [r for r in runs if benchmarks.get(r.benchmark).probes]  # the generic probe rule
    if probed:
        jobs["probe"] = sorted(f"benchmark={r.benchmark}, run={r.run_id}" for r in probed)
    # the generic speculative rule: runs that draft for themselves, of benchmarks with `speculative:` on
    drafting = [r for r in runs if r.method in SELF_DRAFTING
                and cfg["benchmarks"][r.benchmark].get("speculative", {}).get("enabled", False)]
    if drafting:
        jobs["speculative"] = sorted(f"benchmark={r.benchmark}, run={r.run_id}" for r in drafting)
    # the generic throughput rule times every method its block lists (table4 reads its record)
    timed = [name for name, b in cfg["benchmarks"].items() if b.get("throughput", {}).get("enabled", False)
             and methods & {m["name"] for m in b["throughput"]["methods"]}]
    if timed:
        jobs["throughput"] = [f"benchmark={name}" for name in timed]
        jobs.setdefault("table4", [""])
    # the claims of every benchmark with such a run, and the gathered table
    jobs["benchmark_claims"] = sorted(f"benchmark={name}" for name in {r.benchmark for r in runs})
    jobs["claims"] = [""]
    first_seed = cfg["benchmarks"]["manhattan"]["seeds"][0]
    recon = sorted(f"kind=runs, name={r.run_id}" for r in runs if r.benchmark == "manhattan" and r.seed == first_seed)
    if recon:
        jobs["manhattan_reconstruct"] = recon
    return jobs


def sorted_plan(jobs: dict[str, list[str]]) -> dict[str, list[str]]:
    return {rule: sorted(wcs) for rule, wcs in sorted(jobs.items())}


def test_editing_mtp_reruns_exactly_the_mtp_runs_and_their_reports(workdir):
    jobs = sorted_plan(planned_after_edit(workdir, "nextlat/objectives/mtp.py", "all"))
    want = plan_for_methods(workdir, {"mtp"})
    assert len(want["train"]) == 5 and "manhattan_reconstruct" in want and "probe" in want  # one run per benchmark with MTP
    assert jobs == sorted_plan(want)


def test_editing_gpt_reruns_gpt_and_nextlat_which_subclasses_it(workdir):
    jobs = sorted_plan(planned_after_edit(workdir, "nextlat/objectives/gpt.py", "all"))
    want = plan_for_methods(workdir, {"gpt", "nextlat"})
    trained = {re.search(r"run=[^_]+_([a-z]+)", w).group(1) for w in jobs.get("train", [])}
    assert trained == {"gpt", "nextlat"}  # run ids are <task>_<method>[-d<h>]_s<seed>
    assert jobs == sorted_plan(want)


def test_new_probe_settings_rerun_the_probes_and_their_figures_only(workdir):
    (workdir / "probe.yaml").write_text(yaml.safe_dump(
        {"scales": {"smoke": {"benchmarks": {"tinystories": {"probe": {"steps": 7}}}}}}))
    try:
        jobs = planned(snakemake(workdir, "-n", "all", "--configfile", "probe.yaml"))
    finally:
        (workdir / "probe.yaml").unlink()
    from nextlat.config import load
    from nextlat.runs import expand_runs

    jobs.pop("all", None)
    assert sorted(jobs) == ["benchmark_claims", "claims", "fig12", "fig13", "fig14", "fig16", "fig8", "probe"]
    assert jobs["benchmark_claims"] == ["benchmark=tinystories"]
    assert len(jobs["probe"]) == len([r for r in expand_runs(load(workdir / "config.yaml", "smoke")).values()
                                      if r.benchmark == "tinystories"])


def test_tinystories_outputs_say_what_they_hold(workdir):
    out = workdir / "results/smoke"
    fig8 = (out / "tables/fig8_tinystories.md").read_text()
    assert "k=1" in fig8 and "nextlat" in fig8 and "Paper:" in fig8
    rec = json.loads((out / "tinystories/runs/ts_nextlat-d2_s0/probes.json").read_text())
    assert rec["run"]["method"] == "nextlat" and len(rec["probes"]["ce"]) == 4
    stories = (out / "tables/stories_tinystories.md").read_text()
    assert "synthetic" in stories and "ts_bst_s0" in stories and "dropped" in stories
    log = (out / "logs/probe/tinystories/ts_gpt_s0.log").read_text()
    assert "probing ts_gpt_s0" in log and "wrote" in log


def test_workflow_is_up_to_date_after_every_edit_check(workdir):
    """Every check above restored the files it touched (content and modification time)."""
    out = snakemake(workdir, "-n", "all")
    assert "Nothing to be done" in out, out[-3000:]


def test_every_stage_logs_what_it_read_and_wrote(workdir):
    logs = workdir / "results/smoke/logs"
    data_log = (logs / "data/pathstar/g2x4.log").read_text()
    assert "generating pathstar/g2x4" in data_log and "wrote" in data_log and "meta.json" in data_log
    eval_log = (logs / "eval/manhattan/rw_gpt_s0.log").read_text()
    assert "evaluating" in eval_log and "valid trajectories: done" in eval_log and "wrote" in eval_log
    assert "reading" in (logs / "fig6.log").read_text()
    spec_log = (logs / "speculative/fineweb/fw_nextlat-d2_s0.log").read_text()
    assert "speculative decoding of fw_nextlat-d2_s0" in spec_log and "wrote" in spec_log
    assert "Greedy check" in (workdir / "results/smoke/tables/table3.md").read_text()
    tp_log = (logs / "throughput/fineweb.log").read_text()
    assert "throughput of 11 methods" in tp_log and "wrote" in tp_log
    assert "FlopCounterMode" in (workdir / "results/smoke/tables/table4.md").read_text()
    for rule in ("train", "eval", "probe", "speculative", "throughput"):  # per-job wall time and memory
        tsv = next((workdir / "results/smoke/benchmarks" / rule).rglob("*.tsv"))
        assert tsv.read_text().startswith("s\th:m:s\tmax_rss"), tsv


def test_changed_data_retrains_from_scratch_and_says_why(tmp_path):
    """Issue: a new data seed regenerated the data, but training 'resumed at step 20/20' from
    the old last.ckpt and model.pt kept its weights. Now the checkpoint's identity covers the
    data, so training restarts and the log says why."""
    repo = copy_workflow(tmp_path / "repo")
    target = "results/smoke/pathstar/runs/g2x4_gpt_s0/model.pt"
    snakemake(repo, target)
    before = (repo / target).read_bytes()
    (repo / "seed.yaml").write_text(yaml.safe_dump(
        {"scales": {"smoke": {"benchmarks": {"pathstar": {"data": {"seed": 7}}}}}}))
    snakemake(repo, target, "--configfile", "seed.yaml")
    assert (repo / target).read_bytes() != before
    log = (repo / "results/smoke/logs/train/pathstar/g2x4_gpt_s0.log").read_text()
    assert "different train data" in log and "Restarting training from step 0" in log
    assert "resumed" not in log
