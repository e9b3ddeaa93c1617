"""Manhattan world models (paper Table 1, Figure 3): traversals of a street graph.

Files: ``data.py`` (trips, walks, tokenizer, dataset), ``streets/`` (graph sources),
``evaluate.py`` (the five world-model metrics), ``oracle.py`` (the true world model),
``reconstruction.py`` and ``maps.py`` (Vafa et al.'s map reconstruction, folium maps),
``report.py`` (``table1``, ``fig3``), ``paper.py``, ``schema.yaml``.
"""
from __future__ import annotations

from ...config import ConfigError
from .. import register
from ..base import Benchmark, Output, Resources


@register
class Manhattan(Benchmark):
    name = "manhattan"
    title = "Manhattan"
    reports = ("table1", "fig3")
    study_metrics = ("next_token_valid", "valid_trajectories", "compression", "effective_rank", "detour_robustness")
    extra_stages = ("oracle:evaluate_oracle", "reconstruction:reconstruct_samples")
    data_outputs = {"train": Output("train", directory=True), "test": Output("test", directory=True),
                    "graph": Output("graph.graphml"), "pairs": Output("pairs.parquet"),
                    "eval_pairs": Output("eval_pairs.parquet"), "meta": Output("meta.json")}
    eval_outputs = {"eval": Output("eval.json"), "samples": Output("samples.parquet")}
    data_resources = Resources(threads=2, mem_mb=4000, runtime_min=120)

    def model_fields(self, bench_cfg: dict, task: str) -> dict:
        from . import data

        return {"vocab_size": data.vocab_size(data.max_nodes(bench_cfg["graph"])), "eos_id": data.eos_id(),
                "block_size": bench_cfg["data"]["pack_len"]}

    def data_config(self, bench_cfg: dict) -> dict:
        return {"graph": bench_cfg["graph"], **bench_cfg["data"]}

    def data_sources(self, bench_cfg: dict) -> list[str]:
        g, data = bench_cfg["graph"], bench_cfg["data"]
        files = [g["osm"].get("xml")] if g["source"] == "osm" else []
        if g["source"] == "pickle":
            files += [g["pickle"].get(k) for k in ("neighbors", "turns", "coords")]
        return [f for f in files + [data.get("trips_file")] if f]

    rows_are_bound = True

    def max_rows(self, bench_cfg: dict, task: str, split: str) -> int | None:
        # Walks are packed into rows of pack_len tokens; a walk has at most max_moves + 3 tokens.
        data = bench_cfg["data"]
        return (int(data[f"n_{split}"]) * (int(data["max_moves"]) + 3) + 1) // int(data["pack_len"])

    def check(self, bench_cfg: dict) -> None:
        from pathlib import Path

        from .data import has_coords

        g = bench_cfg["graph"]
        if g["source"] == "pickle" and not g["pickle"].get("neighbors"):
            raise ConfigError("benchmarks.manhattan.graph.pickle.neighbors: the pickle source needs the "
                              "original's node_and_direction_to_neighbor.pkl")
        named = {"graph.osm.xml": g["osm"].get("xml") if g["source"] == "osm" else None,
                 "data.trips_file": bench_cfg["data"].get("trips_file")}
        if g["source"] == "pickle":
            named.update({f"graph.pickle.{k}": g["pickle"].get(k) for k in ("neighbors", "turns", "coords")})
        for key, path in named.items():
            if path and not Path(path).exists():
                raise ConfigError(f"benchmarks.manhattan.{key}: file {path} does not exist")
        data = bench_cfg["data"]
        if not has_coords(bench_cfg["graph"]) and data["pickups"] == "density" and not data["trips_file"]:
            # caught at plan time rather than in the data job: the demand surface needs coordinates
            raise ConfigError(
                "benchmarks.manhattan.data.pickups: density needs node coordinates, which this street "
                "graph lacks (pickle source without graph.pickle.coords); use pickups: uniform or a trips_file")
