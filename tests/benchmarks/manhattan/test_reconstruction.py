"""Map reconstruction from traversals (nextlat.benchmarks.manhattan.reconstruction)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nextlat.benchmarks.manhattan.data import ManhattanTokenizer
from nextlat.benchmarks.manhattan.streets import DIR_INDEX, NO_EDGE, StreetGraph, haversine_miles
from nextlat.benchmarks.manhattan.reconstruction import (Reconstruction, reconstruct, reconstruct_samples,
                                                         sequences_from_tokens)

N, NE, E, SE, S, SW, W, NW = range(8)
SPACING_DEG = 0.0009  # about 100 m of latitude


def grid_graph(rows: int, cols: int, coords: bool = True, name: str = "grid") -> StreetGraph:
    """Two-way N/E/S/W street grid; node ``r * cols + c`` sits ``r`` blocks north, ``c`` east.

    Node ids are not the indices (1000 + 7 * index) so id/index mix-ups show.
    """
    ids = 1000 + 7 * np.arange(rows * cols)
    edges = []
    for r in range(rows):
        for c in range(cols):
            u = ids[r * cols + c]
            for d, (dr, dc) in {"N": (1, 0), "S": (-1, 0), "E": (0, 1), "W": (0, -1)}.items():
                if 0 <= r + dr < rows and 0 <= c + dc < cols:
                    edges.append((u, d, ids[(r + dr) * cols + c + dc]))
    r, c = np.divmod(np.arange(rows * cols), cols)
    lat = 40.75 + SPACING_DEG * r
    lon = -73.98 + SPACING_DEG / np.cos(np.radians(40.75)) * c
    return StreetGraph.from_edges(ids, edges, lat if coords else None, lon if coords else None, name)


def edge_set(rows) -> set:
    return {tuple(map(int, row)) for row in rows}


def random_walk(graph: StreetGraph, rng, n_moves: int) -> tuple[int, int, list[int], list[tuple]]:
    """A legal walk; returns (src, dst, dirs, edges)."""
    node = src = int(rng.integers(graph.n_nodes))
    dirs, edges = [], []
    for _ in range(n_moves):
        k = int(rng.choice(np.nonzero(graph.succ[node] != NO_EDGE)[0]))
        nxt = int(graph.succ[node, k])
        dirs.append(k)
        edges.append((node, k, nxt))
        node = nxt
    return src, node, dirs, edges


def test_oracle_walks_add_no_edges_and_mark_exactly_the_traversed_ones():
    g = grid_graph(6, 8)
    rng = np.random.default_rng(1)
    seqs, traversed = [], set()
    for _ in range(30):
        src, dst, dirs, edges = random_walk(g, rng, int(rng.integers(1, 15)))
        seqs.append((src, dst, dirs))
        traversed |= set(edges)
    # shortest paths too: east then north across the grid
    seqs.append((0, 5 * 8 + 7, [E] * 7 + [N] * 5))
    traversed |= {(c, E, c + 1) for c in range(7)} | {(r * 8 + 7, N, (r + 1) * 8 + 7) for r in range(5)}
    rec = reconstruct(g, seqs)
    assert len(rec.new) == 0
    assert edge_set(rec.used) == traversed
    assert rec.counts == {"n_generated": len(seqs), "n_ill_formed": 0, "n_used": len(seqs), "n_failed": 0,
                          "n_new_edges": 0, "true_used": len(traversed),
                          "true_unused": g.n_edges - len(traversed), "empty": False,
                          "atomic": True, "candidate_order": "nearest"}
    assert rec.note is None
    assert edge_set(rec.unused(g)) == edge_set(np.stack(g.edges(), 1)) - traversed


def test_wrong_turn_mid_sequence_adds_one_new_edge_to_the_right_node():
    g = grid_graph(4, 4)
    # (0,0) -E-> (0,1), then a diagonal the grid lacks, then N must land on (2,2)
    rec = reconstruct(g, [(0, 2 * 4 + 2, [E, NE, N])])
    assert edge_set(rec.new) == {(1, NE, 1 * 4 + 2)}
    assert edge_set(rec.used) == {(0, E, 1), (1 * 4 + 2, N, 2 * 4 + 2)}
    assert rec.counts["n_failed"] == 0 and rec.counts["n_new_edges"] == 1


def test_wrong_last_move_jumps_to_destination():
    g = grid_graph(4, 4)
    rec = reconstruct(g, [(0, 1 * 4 + 3, [E, E, NE])])
    assert edge_set(rec.new) == {(2, NE, 1 * 4 + 3)}
    assert edge_set(rec.used) == {(0, E, 1), (1, E, 2)}


def test_walk_ending_elsewhere_is_stuck_before_its_last_move():
    g = grid_graph(4, 4)
    # E, E, N is legal but ends at (1,2), not (1,3): the last move becomes a new edge
    rec = reconstruct(g, [(0, 1 * 4 + 3, [E, E, N])])
    assert edge_set(rec.new) == {(2, N, 1 * 4 + 3)}
    assert edge_set(rec.used) == {(0, E, 1), (1, E, 2)}


def test_new_edges_are_followed_by_later_sequences():
    g = grid_graph(4, 4)
    seqs = [(0, 1 * 4 + 3, [E, E, NE]), (0, 1 * 4 + 3, [E, E, NE])]
    rec = reconstruct(g, seqs)
    assert rec.counts["n_new_edges"] == 1 and rec.counts["n_failed"] == 0


def test_ties_between_continuations_go_to_the_nearest_start():
    g = grid_graph(4, 4)
    # No NE streets exist. From (1,1) every start with an east neighbour continues one move
    # (E, then stuck at NE), so the nearest start wins: (1,1) itself, a self-loop. From
    # (1,2) the last E must reach (3,3), so the second new edge goes to (3,2).
    rec = reconstruct(g, [(5, 15, [NE, E, NE, E])])
    assert edge_set(rec.new) == {(5, NE, 5), (6, NE, 14)}
    assert edge_set(rec.used) == {(5, E, 6), (14, E, 15)}


def test_far_destination_fails_and_commits_nothing():
    g = grid_graph(3, 12)  # 1.1 km wide, more than 0.5 miles
    far = 11
    assert haversine_miles(g.lat[0], g.lon[0], g.lat[far], g.lon[far]) > 0.5
    rec = reconstruct(g, [(0, far, [N, N])])
    assert {k: rec.counts[k] for k in ("n_used", "n_failed", "true_used", "true_unused", "n_new_edges")} == {
        "n_used": 1, "n_failed": 1, "true_used": 0, "true_unused": g.n_edges, "n_new_edges": 0}
    assert rec.note == "every sequence failed (1)" and not rec.empty
    # the original keeps the edges a failed sequence used before failing
    partial = reconstruct(g, [(0, far, [N, N])], atomic=False)
    assert partial.counts["n_failed"] == 1 and edge_set(partial.used) == {(0, N, 12)}
    assert len(partial.new) == 0


def identity_seed(n: int) -> int:
    """A seed whose shuffle replays ``n`` sequences in the order given."""
    return next(s for s in range(1000) if (np.random.default_rng(s).permutation(n) == np.arange(n)).all())


def test_failed_sequence_leaves_edges_behind_only_when_not_atomic():
    g = grid_graph(3, 12)  # 1.1 km wide, more than 0.5 miles
    # 1st: there is no NE street at 0, so a new edge (the self-loop 0 NE 0, the nearest start
    # of "E N") and the true street 0 E 1 get it going, but its last move cannot jump to the
    # far destination 11: it fails. 2nd: N from 0, which a degree budget of 2 allows only if
    # the 1st left nothing at node 0.
    seqs = [(0, 11, [NE, E, N]), (0, 12, [N])]
    seed = identity_seed(2)
    ours = reconstruct(g, seqs, degree=2, seed=seed)
    original = reconstruct(g, seqs, degree=2, seed=seed, atomic=False)
    assert (ours.counts["n_failed"], ours.counts["n_new_edges"], ours.counts["true_used"]) == (1, 0, 1)
    assert edge_set(ours.used) == {(0, N, 12)} and len(ours.new) == 0
    assert (original.counts["n_failed"], original.counts["n_new_edges"], original.counts["true_used"]) == (2, 1, 1)
    assert edge_set(original.new) == {(0, NE, 0)} and edge_set(original.used) == {(0, E, 1)}
    assert original.note == "every sequence failed (2)"
    assert (ours.counts["atomic"], original.counts["atomic"]) == (True, False)
    assert (ours.params["atomic"], original.params["atomic"]) == (True, False)


def test_node_order_starts_continuations_at_the_lowest_id():
    g = grid_graph(4, 4)
    # As in test_ties_between_continuations_go_to_the_nearest_start, every start with an east
    # neighbour continues "E NE E" by one move; in node order the first, node 0, wins, not
    # node 5 itself. From 1 the last E must reach 15: only 14 does.
    seq = (5, 15, [NE, E, NE, E])
    rec = reconstruct(g, [seq], candidate_order="node")
    assert edge_set(rec.new) == {(5, NE, 0), (1, NE, 14)}
    assert edge_set(rec.used) == {(0, E, 1), (14, E, 15)}
    # The counts differ too: "NE E" from 5 to 6 follows the nearest-first map (5 NE 5, 5 E 6),
    # but in node order NE leads to 0 and E on to 1, and both slots are taken: it fails.
    seqs, seed = [seq, (5, 6, [NE, E])], identity_seed(2)
    nearest = reconstruct(g, seqs, seed=seed)
    node = reconstruct(g, seqs, seed=seed, candidate_order="node")
    assert (nearest.counts["n_failed"], node.counts["n_failed"]) == (0, 1)
    assert (nearest.counts["candidate_order"], node.counts["candidate_order"]) == ("nearest", "node")
    with pytest.raises(ValueError, match="candidate_order"):
        reconstruct(g, [seq], candidate_order="random")


def test_no_usable_sequence_gives_a_marked_empty_map():
    g = grid_graph(3, 3)
    rec = reconstruct(g, [], n_ill_formed=5, atomic=False, candidate_order="node")
    assert rec.counts == {"n_generated": 5, "n_ill_formed": 5, "n_used": 0, "n_failed": 0, "n_new_edges": 0,
                          "true_used": 0, "true_unused": g.n_edges, "empty": True,
                          "atomic": False, "candidate_order": "node"}
    assert rec.empty and rec.note == "no usable sequences: 5 generated, 5 ill-formed"
    # n_sequences caps the sequences replayed, not the ones counted as generated
    capped = reconstruct(g, [(0, 1, [E]), (0, 2, [E, E])], n_sequences=1, n_ill_formed=1)
    assert [capped.counts[k] for k in ("n_generated", "n_ill_formed", "n_used", "empty")] == [3, 1, 1, False]


def test_jump_distance_is_configurable():
    g = grid_graph(4, 4)
    seq = [(0, 1 * 4 + 3, [E, E, NE])]  # needs a ~140 m jump
    assert reconstruct(g, seq, distance_miles=0.05).counts["n_failed"] == 1
    assert reconstruct(g, seq, distance_miles=0.1).counts["n_failed"] == 0


def test_degree_budget_blocks_a_third_street():
    g = grid_graph(3, 3)
    center = 4
    seqs = [(center, 7, [N]), (center, 5, [E]), (center, 1, [S])]
    rec = reconstruct(g, seqs, degree=2, seed=0, n_sequences=3)
    assert rec.counts["n_failed"] == 1
    assert (rec.used[:, 0] == center).sum() == 2


def reconstructed_map(g: StreetGraph, rec: Reconstruction) -> StreetGraph:
    """The used true edges plus the new ones, as a street graph."""
    succ = np.full_like(g.succ, NO_EDGE)
    for src, k, dst in np.concatenate([rec.used, rec.new]).tolist():
        succ[src, k] = dst
    return StreetGraph(g.node_ids, succ, g.lat, g.lon)


def _drives(g: StreetGraph, src: int, dst: int, dirs) -> bool:
    path = g.follow(src, dirs)
    return path is not None and path[-1] == dst


def _out_degree(rec: Reconstruction, n: int) -> np.ndarray:
    return np.bincount(np.concatenate([rec.used[:, 0], rec.new[:, 0]]), minlength=n)


def test_noisy_sequences_keep_the_invariants():
    g = grid_graph(5, 5)
    rng = np.random.default_rng(0)
    seqs = [(int(rng.integers(25)), int(rng.integers(25)), rng.integers(0, 8, rng.integers(1, 9)).tolist())
            for _ in range(200)]
    for degree in (2, 3, 8):
        rec = reconstruct(g, seqs, degree=degree, distance_miles=0.15)
        assert _out_degree(rec, g.n_nodes).max() <= degree
        assert 0 < rec.counts["n_failed"] < len(seqs) and rec.counts["n_new_edges"] > 0
        # one used edge per (node, direction), new ones included
        both = np.concatenate([rec.used[:, :2], rec.new[:, :2]])
        assert len(np.unique(both, axis=0)) == len(both)
        u, v = rec.new[:, 0], rec.new[:, 2]
        assert (haversine_miles(g.lat[u], g.lon[u], g.lat[v], g.lon[v]) <= 0.15).all()
        # every sequence that succeeded can be driven on the reconstructed map
        drivable = sum(_drives(reconstructed_map(g, rec), *seq) for seq in seqs)
        assert drivable >= len(seqs) - rec.counts["n_failed"]


def test_shuffle_and_subset_follow_the_seed():
    g = grid_graph(4, 4)
    seqs = [(0, 1 * 4 + 3, [E, E, NE]), (0, 3, [E, E, E]), (4, 7, [E, E, E]), (8, 11, [E, E, E])]
    a = reconstruct(g, seqs, n_sequences=2, seed=3)
    b = reconstruct(g, seqs, n_sequences=2, seed=3)
    assert a.counts["n_used"] == 2 and edge_set(a.used) == edge_set(b.used)
    subsets = {frozenset(edge_set(reconstruct(g, seqs, n_sequences=2, seed=s).used)) for s in range(8)}
    assert len(subsets) > 1


def test_graph_without_coordinates_is_refused():
    with pytest.raises(ValueError, match="no node coordinates"):
        reconstruct(grid_graph(3, 3, coords=False), [(0, 1, [E])])


def test_bad_sequences_are_refused():
    g = grid_graph(3, 3)
    with pytest.raises(ValueError, match="no directions"):
        reconstruct(g, [(0, 1, [])])
    with pytest.raises(ValueError, match="outside"):
        reconstruct(g, [(0, 1, [8])])


def test_json_round_trip_uses_node_ids():
    g = grid_graph(4, 4, name="tiny")
    rec = reconstruct(g, [(0, 2 * 4 + 2, [E, NE, N]), (0, 3, [E, E, E])])
    data = json.loads(rec.to_json())
    assert data["graph"] == "tiny"
    assert [1000 + 7 * 1, "NE", 1000 + 7 * 6] in data["new_edges"]
    assert data["counts"]["n_generated"] == 2 and data["params"]["candidate_order"] == "nearest"
    back = Reconstruction.from_json(rec.to_json(), g)
    assert np.array_equal(back.used, rec.used) and np.array_equal(back.new, rec.new)
    assert back.counts == rec.counts and back.params == rec.params and back.graph_name == "tiny"
    streetless = StreetGraph(g.node_ids, np.full_like(g.succ, NO_EDGE), g.lat, g.lon)
    with pytest.raises(ValueError, match="lacks"):
        Reconstruction.from_json(rec.to_json(), streetless)


def test_save_and_load(tmp_path):
    g = grid_graph(3, 3)
    rec = reconstruct(g, [(0, 2, [E, E])], n_ill_formed=2, atomic=False, candidate_order="node")
    rec.save(tmp_path / "r" / "reconstruction.json")
    back = Reconstruction.load(tmp_path / "r" / "reconstruction.json", g)
    assert edge_set(back.used) == {(0, E, 1), (1, E, 2)}
    assert back.counts == rec.counts and back.params == rec.params
    assert (back.counts["n_generated"], back.counts["n_ill_formed"], back.counts["n_used"]) == (3, 2, 1)
    assert (back.counts["atomic"], back.counts["candidate_order"]) == (False, "node") and not back.empty
    empty = reconstruct(g, [], n_ill_formed=3)
    empty.save(tmp_path / "e.json")
    back = Reconstruction.load(tmp_path / "e.json", g)
    assert back.empty and back.note == empty.note


def test_sequences_from_tokens_keeps_only_clean_traversals():
    g = grid_graph(3, 3)
    tok = ManhattanTokenizer(g)
    d = {k: int(tok.dir_token[DIR_INDEX[k]]) for k in ("N", "E", "SW")}
    node, end = int(tok.node_token[4]), tok.eos
    gens = [
        [d["N"], d["E"], end, d["SW"], 0],  # kept; tokens after `end` ignored
        [d["SW"], end, end, end, end],  # kept
        [d["N"], d["E"], d["N"], d["E"], d["N"]],  # never ends
        [end, d["N"], end, 0, 0],  # no directions
        [d["N"], node, end, 0, 0],  # a node token in the moves
        [d["N"], 0, end, 0, 0],  # padding in the moves
    ]
    out = sequences_from_tokens(tok, np.arange(6), np.arange(6) + 1, np.array(gens))
    assert out == [(0, 1, [N, E]), (1, 2, [SW])]


def _stage_dataset(tmp_path, g: StreetGraph, generations: list[str]) -> dict:
    """The files reconstruct_samples reads: graph.graphml and meta.json of a dataset, and a
    samples.parquet of the given generations, as words (pairs: node i to i + 1)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    g.save(data_dir / "graph.graphml")
    tok = ManhattanTokenizer(g)
    (data_dir / "meta.json").write_text(json.dumps({"vocab_size": tok.vocab_size}))
    n = len(generations)
    pq.write_table(pa.table({"src": np.arange(n), "dst": np.arange(n) + 1,
                             "tokens": pa.array([tok.encode_text(w) for w in generations], type=pa.list_(pa.int32()))}),
                   tmp_path / "samples.parquet")
    return {"samples": tmp_path / "samples.parquet", "meta": data_dir / "meta.json"}


def test_stage_with_only_ill_formed_generations_writes_a_marked_empty_map(tmp_path):
    g = grid_graph(3, 3)
    node_4 = str(g.node_ids[4])
    # never ends; no moves before `end`; a node in the moves
    inputs = _stage_dataset(tmp_path, g, ["E E E E", "end E", f"E {node_4} end"])
    cfg = {"n_sequences": 10, "degree": 8, "distance_miles": 0.5, "atomic": False, "candidate_order": "node"}
    counts = reconstruct_samples(inputs, {"recon": tmp_path / "recon.json"}, {"cfg": cfg, "seed": 0})
    assert (counts["n_generated"], counts["n_ill_formed"], counts["n_used"], counts["empty"]) == (3, 3, 0, True)
    back = Reconstruction.load(tmp_path / "recon.json", g)
    assert back.empty and back.note == "no usable sequences: 3 generated, 3 ill-formed"
    assert back.params["atomic"] is False and back.params["candidate_order"] == "node"


def test_stage_counts_generated_ill_formed_and_used_sequences(tmp_path):
    g = grid_graph(3, 3)
    inputs = _stage_dataset(tmp_path, g, ["E end", "end E", "E end", "E end"])
    cfg = {"n_sequences": 2, "degree": 8, "distance_miles": 0.5}  # the mode defaults to ours
    counts = reconstruct_samples(inputs, {"recon": tmp_path / "recon.json"}, {"cfg": cfg, "seed": 0})
    assert {k: counts[k] for k in ("n_generated", "n_ill_formed", "n_used", "empty", "atomic", "candidate_order")} == {
        "n_generated": 4, "n_ill_formed": 1, "n_used": 2, "empty": False, "atomic": True,
        "candidate_order": "nearest"}
