"""Manhattan stages chained through the pipeline's stage functions on a graph without coordinates (the
original study's pickles): data, the true world model's metrics and the clear refusal of
map reconstruction."""
import json
import pickle

import pyarrow.parquet as pq
import pytest

from nextlat.stages.call import call_stage
from nextlat.stages.data import make_data
from nextlat.benchmarks.manhattan.streets import DIRECTIONS

EVAL = {"batch_size": 64, "next_token": {"n_sequences": 20}, "valid": {"n_pairs": 20, "max_new_tokens": 15},
        "compression": {"n_trials": 3, "n_suffixes": 2, "max_len": 15}, "rank": {"n_rows": 2, "row_len": 16},
        "detour": {"n_trials": 10, "max_len": 15}}
RECON = {"n_sequences": 20, "degree": 8, "distance_miles": 0.5}


def oracle_eval(data_dir, out_json):
    """The workflow's manhattan_oracle stage, called as the rule calls it."""
    return call_stage("manhattan", "oracle:evaluate_oracle", {"meta": data_dir / "meta.json"},
                      {"eval": out_json, "samples": out_json.parent / "samples.parquet"}, {"eval": EVAL, "seed": 0})


@pytest.fixture(scope="module")
def pickle_dataset(tmp_path_factory):
    """A 3 x 3 two-way grid as the original's (node, direction) -> neighbor pickle."""
    tmp = tmp_path_factory.mktemp("mh")
    node = {(r, c): 100 + 3 * r + c for r in range(3) for c in range(3)}
    table = {}
    for (r, c), u in node.items():
        for d, (dr, dc) in (("N", (1, 0)), ("S", (-1, 0)), ("E", (0, 1)), ("W", (0, -1))):
            if (r + dr, c + dc) in node:
                table[(u, d)] = node[(r + dr, c + dc)]
    (tmp / "neighbors.pkl").write_bytes(pickle.dumps(table))
    data = {"graph": {"source": "pickle", "pickle": {"neighbors": str(tmp / "neighbors.pkl")}},
            "n_trips": 300, "pickups": "uniform", "n_train": 200, "n_test": 60, "max_moves": 10,
            "max_eval_hops": 6, "pack_len": 16, "shard_size": 100, "seed": 0}
    out = tmp / "data"
    make_data("manhattan", "rw", data, out, workers=1)
    return out, table


def test_pickle_graph_without_coordinates_scores_every_metric(pickle_dataset, tmp_path):
    data_dir, table = pickle_dataset
    meta = json.loads((data_dir / "meta.json").read_text())
    assert meta["n_edges"] == len(table) and meta["has_coords"] is False
    assert set(DIRECTIONS) >= {d for _, d in table}
    record = oracle_eval(data_dir, tmp_path / "oracle" / "eval.json")
    m = record["metrics"]
    assert m["next_token_valid"] == m["valid_trajectories"] == m["detour_robustness"] == 1.0
    assert m["compression"] == 1.0 and m["effective_rank"] is None  # the oracle has no latents
    samples = pq.read_table(tmp_path / "oracle" / "samples.parquet")
    assert samples.num_rows == EVAL["valid"]["n_pairs"]


def test_map_reconstruction_refuses_a_graph_without_coordinates(pickle_dataset, tmp_path):
    data_dir, _ = pickle_dataset
    oracle_eval(data_dir, tmp_path / "eval.json")
    with pytest.raises(ValueError, match="no node coordinates"):
        call_stage("manhattan", "reconstruction:reconstruct_samples",
                   {"samples": tmp_path / "samples.parquet", "meta": data_dir / "meta.json"},
                   {"recon": tmp_path / "recon.json"}, {"cfg": RECON, "seed": 0})
    assert not (tmp_path / "recon.json").exists()
