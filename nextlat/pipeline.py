"""One function per pipeline stage; Snakemake scripts and the ``nextlat`` CLI both call these.

Keeping the stages here (rather than in ``workflow_scripts/``) means every step the
workflow runs is importable and testable without Snakemake.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from . import benchmarks
from .data import store

log = logging.getLogger(__name__)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --- data --------------------------------------------------------------------------------
def make_data(benchmark: str, task: str, data_cfg: dict, out_dir: str | Path, workers: int | None = None) -> None:
    """Generate a dataset; ``workers`` (processes) never changes what is generated.

    ``data_cfg`` is ``data_config(benchmark, bench_cfg)``: usually the benchmark's ``data``
    block (Manhattan adds its ``graph``).
    """
    benchmarks.get(benchmark).make_data(task, data_cfg, Path(out_dir), workers)


def data_config(benchmark: str, bench_cfg: dict) -> dict:
    """The part of a benchmark's config that defines its generated data."""
    return benchmarks.get(benchmark).data_config(bench_cfg)


def load_train_data(benchmark: str, data_dir: str | Path):
    """(train, val) TokenDatasets for a benchmark's generated data."""
    return benchmarks.get(benchmark).load_train(Path(data_dir))


def check_data_matches(run_cfg: dict, data_dir: str | Path) -> None:
    """Refuse to train when the data on disk disagrees with the run's model config."""
    meta = store.load_meta(data_dir, run_cfg["benchmark"])
    model = run_cfg["model"]
    for key, want in (("vocab_size", model["vocab_size"]), ("eos_id", model["eos_id"])):
        if key in meta and meta[key] != want:
            raise ValueError(f"dataset {data_dir} has {key}={meta[key]} but run "
                             f"{run_cfg['run_id']} expects {want}; regenerate the data")
    if meta.get("seq_len", 0) > model["block_size"]:
        raise ValueError(f"dataset rows of {meta['seq_len']} tokens exceed model.block_size="
                         f"{model['block_size']} for run {run_cfg['run_id']}")


# --- training ----------------------------------------------------------------------------
RANK_ENV = "NEXTLAT_RANK_PROCESS"  # set in processes that are already one rank of a run


def launch_command(cfg_file: Path, data_dir: Path, out_dir: Path, on_stale: str, devices: int) -> list[str]:
    """How to start the ranks of a multi-device run.

    Inside a SLURM allocation every rank is a task of ``srun`` (Fabric reads its rank from
    SLURM); elsewhere one process starts and Fabric's launcher spawns the other ranks.
    """
    cmd = [sys.executable, "-m", "nextlat.cli", "train-config", str(cfg_file), "--data", str(data_dir),
           "--out", str(out_dir), "--on-stale", on_stale]
    if os.environ.get("SLURM_JOB_ID") and shutil.which("srun"):
        # one node; Lightning's SLURM environment requires --ntasks-per-node, not --ntasks
        cmd = ["srun", "--nodes=1", f"--ntasks-per-node={devices}", "--kill-on-bad-exit=1", *cmd]
    return cmd


def train(run_cfg: dict, data_dir: str | Path, out_dir: str | Path, on_stale: str = "error",
          stop_after: int | None = None) -> Path | None:
    """Train one run; writes ``config.yaml`` (fully resolved) and ``model.pt`` in out_dir.

    Multi-device runs (``runtime.devices > 1``) are started as separate rank processes.
    Returns the final model's path (None if ``stop_after`` stopped the run early).
    """
    out_dir, data_dir = Path(out_dir), Path(data_dir)
    check_data_matches(run_cfg, data_dir)
    devices = int(run_cfg.get("runtime", {}).get("devices", 1))
    if devices > 1 and not os.environ.get(RANK_ENV):
        cfg_file = out_dir / "config.yaml"
        _atomic_write_text(cfg_file, yaml.safe_dump(run_cfg, sort_keys=False))
        cmd = launch_command(cfg_file, data_dir, out_dir, on_stale, devices)
        log.info("launching %d ranks: %s", devices, " ".join(cmd))
        # Ranks import the same `nextlat` as this process (a workflow copy, not whatever is installed).
        root = str(Path(__file__).resolve().parents[1])
        pythonpath = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
        sys.stdout.flush(), sys.stderr.flush()
        subprocess.run(cmd, check=True, env={**os.environ, RANK_ENV: "1", "PYTHONPATH": pythonpath},
                       stdout=sys.stdout, stderr=sys.stderr)  # ranks log where we log
        final = out_dir / "model.pt"
        return final if final.exists() else None

    from .training.trainer import train_run

    if not os.environ.get(RANK_ENV):
        _atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(run_cfg, sort_keys=False))
    train_data, val_data = load_train_data(run_cfg["benchmark"], data_dir)
    return train_run(run_cfg, train_data, val_data, out_dir, on_stale=on_stale, stop_after=stop_after)


# --- evaluation --------------------------------------------------------------------------
def evaluate(run_cfg: dict, model_path: str | Path, data_dir: str | Path, eval_cfg: dict,
             out_json: str | Path, device: str | None = None) -> dict:
    """Score a trained model on its benchmark's held-out data and write a JSON record."""
    import torch

    from .training.checkpoint import load_model

    runtime = run_cfg.get("runtime", {})
    if runtime.get("num_threads"):
        torch.set_num_threads(runtime["num_threads"])
    if device is None:
        wants_gpu = runtime.get("accelerator", "auto") in ("auto", "gpu", "cuda")
        device = "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"
    model = load_model(model_path, expected_cfg=run_cfg, device=device)
    metrics = benchmarks.get(run_cfg["benchmark"]).evaluate(model, Path(data_dir), eval_cfg, run_cfg["seed"],
                                                            device, out_dir=Path(out_json).parent)
    record = {"run": {k: run_cfg.get(k) for k in ("run_id", "benchmark", "task", "seed")}
              | {"method": run_cfg["method"]["name"], "horizon": run_cfg["method"].get("horizon")},
              "metrics": metrics, "params": model.param_counts()}
    _atomic_write_text(Path(out_json), json.dumps(record, indent=2))
    return record


# --- figures and tables ------------------------------------------------------------------
def load_records(paths) -> list[dict]:
    return [json.loads(Path(p).read_text()) for p in paths]


def pathstar_figure(eval_jsons, png: str | Path, pdf: str | Path, csv: str | Path, md: str | Path) -> None:
    from .plots.pathstar import plot_pathstar
    from .tables import pathstar_table, write_table

    records = load_records(eval_jsons)
    plot_pathstar(records, png, pdf)
    write_table(pathstar_table(records), csv, md)


def countdown_table(eval_jsons, csv: str | Path, md: str | Path) -> None:
    from .tables import countdown_table as table, write_table

    write_table(table(load_records(eval_jsons)), csv, md, digits=1)


def countdown_figure(eval_jsons, png: str | Path, pdf: str | Path) -> None:
    from .plots.countdown import plot_countdown_validity

    plot_countdown_validity(load_records(eval_jsons), png, pdf)


# --- Manhattan (Table 1, Figure 3) -------------------------------------------------------
def manhattan_oracle_eval(data_dir: str | Path, eval_cfg: dict, seed: int, out_json: str | Path) -> dict:
    """Evaluate the true world model (an oracle reading the true graph) like any run."""
    from .data import manhattan
    from .evaluation.manhattan import evaluate_manhattan
    from .evaluation.manhattan_oracle import OracleModel

    data_dir = Path(data_dir)
    graph = manhattan.load_graph(data_dir)
    tok = manhattan.load_tokenizer(data_dir, graph)
    oracle = OracleModel(graph, tok, tok.vocab_size)
    metrics = evaluate_manhattan(oracle, data_dir, eval_cfg, seed, "cpu", out_dir=Path(out_json).parent)
    record = {"run": {"run_id": "oracle", "benchmark": "manhattan", "method": "true world model",
                      "horizon": None, "seed": seed}, "metrics": metrics}
    _atomic_write_text(Path(out_json), json.dumps(record, indent=2))
    return record


def reconstruct_samples(samples: str | Path, data_dir: str | Path, recon_cfg: dict, seed: int,
                        out_json: str | Path) -> dict:
    """Rebuild the street map implied by a model's generated traversals (Vafa et al.)."""
    import pyarrow.parquet as pq

    from .data import manhattan
    from .evaluation.reconstruction import reconstruct, sequences_from_tokens

    graph = manhattan.load_graph(data_dir)
    tok = manhattan.load_tokenizer(data_dir, graph)
    table = pq.read_table(samples).to_pydict()
    seqs = sequences_from_tokens(tok, table["src"], table["dst"], table["tokens"])
    recon = reconstruct(graph, seqs, degree=recon_cfg["degree"], distance_miles=recon_cfg["distance_miles"],
                        n_sequences=recon_cfg["n_sequences"], seed=seed)
    recon.save(out_json)
    log.info("reconstruction from %s: %s", samples, recon.counts)
    return recon.counts


def manhattan_table(eval_jsons, oracle_jsons, csv: str | Path, md: str | Path) -> None:
    from .tables import manhattan_table as table, write_table

    write_table(table(load_records(eval_jsons), load_records(oracle_jsons)), csv, md, digits=2)


def manhattan_maps(recons: dict, graph_path: str | Path, opts: dict, outputs: dict) -> None:
    """Figure 3: a folium map (HTML, optionally a PNG screenshot) per reconstruction and view,
    a table of reconstruction counts, and a panel of the far views.

    ``recons`` maps a label (run id, or ``true_<task>``) to its reconstruction JSON;
    ``outputs`` holds the paths named as in rules/manhattan.smk (``<label>_<view>_<ext>``).
    """
    import pandas as pd

    from .data.streets import StreetGraph
    from .evaluation.reconstruction import Reconstruction
    from .plots.maps import map_panel, write_maps
    from .tables import write_table

    graph = StreetGraph.load(graph_path)
    rows, pngs = [], {}
    for label, path in recons.items():
        recon = Reconstruction.load(path, graph)
        rows.append({"map": label, **recon.counts})
        html = {view: outputs[f"{label}_{view}_html"] for view in opts["views"]}
        files = write_maps(graph, recon, html, views=opts["views"], png=opts["png"],
                           show_unused=opts["show_unused"], title=f"{label}")
        if opts["png"]:
            pngs[label] = files[opts["views"][0]]["png"]
    write_table(pd.DataFrame(rows), outputs["csv"], outputs["md"], drop=())
    if opts["png"]:
        map_panel(pngs, outputs["panel"])
