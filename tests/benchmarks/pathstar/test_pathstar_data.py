"""Path-Star data: graph structure, token format, lengths, splits and the on-disk dataset."""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from nextlat.benchmarks.pathstar import data as ps


def check_structure(g: ps.PathStarGraph, degree: int, length: int, n_nodes: int) -> None:
    """Rebuild one decoded graph with plain Python and check it is a G(degree, length)."""
    assert len(g.edges) == degree * (length - 1)
    assert len(set(g.edges)) == len(g.edges)
    nodes = {u for e in g.edges for u in e}
    assert len(nodes) == 1 + degree * (length - 1)  # all labels distinct
    assert all(0 <= u < n_nodes for u in nodes)
    children: dict[int, list[int]] = {}
    indeg = {u: 0 for u in nodes}
    for u, v in g.edges:
        children.setdefault(u, []).append(v)
        indeg[v] += 1
    assert [u for u in nodes if indeg[u] == 0] == [g.source]
    assert all(indeg[u] == 1 for u in nodes if u != g.source)
    assert len(children[g.source]) == degree
    leaves = []
    for first in children[g.source]:  # each arm is a chain of l-1 nodes ending in a leaf
        arm = [first]
        while arm[-1] in children:
            assert len(children[arm[-1]]) == 1
            arm.append(children[arm[-1]][0])
        assert len(arm) == length - 1
        leaves.append(arm[-1])
    assert g.goal in leaves
    assert len(g.path) == length and g.path[0] == g.source and g.path[-1] == g.goal
    edge_set = set(g.edges)
    assert all((a, b) in edge_set for a, b in zip(g.path, g.path[1:]))


def canonical(g: ps.PathStarGraph):
    return frozenset(g.edges), g.source, g.goal


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("g3x4")
    meta = ps.write_dataset(out, degree=3, length=4, n_nodes=20, n_train=300, n_test=100, seed=7)
    return out, meta


# --- names and sizes ---------------------------------------------------------------------
def test_task_names_round_trip():
    assert ps.parse_task("g2x10") == (2, 10)
    assert ps.parse_task("g5x5") == (5, 5)
    assert ps.task_name(7, 7) == "g7x7"
    assert ps.parse_task(ps.task_name(3, 12)) == (3, 12)
    for bad in ("g5", "5x5", "g5x5x", "G5x5", "g5x1"):
        with pytest.raises(ValueError):
            ps.parse_task(bad)


@pytest.mark.parametrize("d,l,prompt,total", [(2, 10, 57, 68), (5, 5, 63, 69), (7, 7, 129, 137)])
def test_lengths_match_doc(d, l, prompt, total):
    assert ps.prompt_len(d, l) == prompt
    assert ps.seq_len(d, l) == total
    tok = ps.PathStarTokenizer(100)
    g = ps.sample_graphs(4, d, l, 100, np.random.default_rng(0))
    rows = tok.encode_rows(g.edges, g.source, g.goal, g.path)
    assert rows.shape == (4, total)
    assert (rows[:, prompt - 1] == tok.eq).all() and (rows[:, -1] == tok.eos).all()
    assert rows.max() < tok.vocab_size


def test_vocab_ids():
    tok = ps.PathStarTokenizer(100)
    assert (tok.sep, tok.eq, tok.slash, tok.pad, tok.eos) == (100, 101, 102, 103, 104)
    assert tok.vocab_size == ps.vocab_size(100) == 106
    assert ps.eos_id(100) == 104


# --- generation --------------------------------------------------------------------------
@pytest.mark.parametrize("d,l,n_nodes", [(2, 10, 100), (5, 5, 100), (7, 7, 100), (3, 2, 4), (1, 3, 3)])
def test_generated_graphs_have_pathstar_structure(d, l, n_nodes):
    tok = ps.PathStarTokenizer(n_nodes)
    g = ps.sample_graphs(200, d, l, n_nodes, np.random.default_rng(1))
    for row in tok.encode_rows(g.edges, g.source, g.goal, g.path):
        check_structure(tok.decode(row), d, l, n_nodes)


def test_goal_arm_and_edge_order_are_random():
    # Arm 0 is built as the goal arm; after shuffling, neither the edge list order nor the order of
    # the source's children may give it away (a "take the first listed child" rule must be at chance).
    d, l = 3, 4
    g = ps.sample_graphs(3000, d, l, 100, np.random.default_rng(2))
    first_is_goal_edge = (g.edges[:, 0, 0] == g.source) & (g.edges[:, 0, 1] == g.path[:, 1])
    assert abs(first_is_goal_edge.mean() - 1 / (d * (l - 1))) < 0.03
    first_child_is_goal = []
    for edges, s, p in zip(g.edges.tolist(), g.source.tolist(), g.path.tolist()):
        first_child_is_goal.append(next(v for u, v in edges if u == s) == p[1])
    assert abs(np.mean(first_child_is_goal) - 1 / d) < 0.04
    assert len(np.unique(g.source)) > 90  # sources are not tied to a label


def test_sampling_is_seeded():
    a = ps.sample_graphs(50, 5, 5, 100, np.random.default_rng(3))
    b = ps.sample_graphs(50, 5, 5, 100, np.random.default_rng(3))
    c = ps.sample_graphs(50, 5, 5, 100, np.random.default_rng(4))
    assert np.array_equal(a.edges, b.edges) and np.array_equal(a.path, b.path)
    assert not np.array_equal(a.edges, c.edges)


def test_too_few_nodes_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="n_nodes"):
        ps.write_dataset(tmp_path, degree=5, length=5, n_nodes=20, n_train=10, n_test=10, seed=0)
    with pytest.raises(ValueError, match="degree"):
        ps.sample_graphs(1, 0, 5, 100, np.random.default_rng(0))
    assert not (tmp_path / "meta.json").exists()


# --- tokenizer round trip -----------------------------------------------------------------
def test_text_token_round_trip():
    tok = ps.PathStarTokenizer(100)
    line = "49,97|53,5|49,60|97,53|5,33|60,7|7,8|8,1/49,33=49,97,53,5,33"
    row, p_len = tok.encode_text(line)
    assert p_len == 3 * 8 + 3 == row.index(tok.eq) + 1
    assert row[:6] == [49, 97, tok.sep, 53, 5, tok.sep]
    assert row[p_len - 4: p_len] == [tok.slash, 49, 33, tok.eq]
    assert row[p_len:] == [49, 97, 53, 5, 33, tok.eos]
    assert tok.to_text(row) == line
    # prompt only (what the model is given at test time)
    prompt, _ = tok.encode_text(line.split("=")[0] + "=")
    assert prompt == row[:p_len]
    assert tok.decode(prompt).path == []


def test_generated_rows_round_trip_through_text():
    tok = ps.PathStarTokenizer(100)
    g = ps.sample_graphs(20, 2, 10, 100, np.random.default_rng(5))
    for row in tok.encode_rows(g.edges, g.source, g.goal, g.path).tolist():
        text = tok.to_text(row)
        assert tok.encode_text(text) == (row, ps.prompt_len(2, 10))
        assert tok.encode(**vars(tok.decode(row)))[0] == row


def test_decode_rejects_garbage():
    tok = ps.PathStarTokenizer(10)
    with pytest.raises(ValueError):
        tok.decode([1, 2, 3])
    with pytest.raises(ValueError):
        tok.encode_text("1,2|3/1,3=1")


# --- dataset on disk -----------------------------------------------------------------------
def test_meta_and_splits(small_dataset):
    out, meta = small_dataset
    on_disk = json.loads((out / "meta.json").read_text())
    assert on_disk == meta
    assert {k: on_disk[k] for k in ("vocab_size", "eos_id", "seq_len", "prompt_len", "degree", "length",
                                    "n_nodes", "n_train", "n_test", "seed")} == {
        "vocab_size": 26, "eos_id": 24, "seq_len": 4 + 3 * 9 + 3 + 1, "prompt_len": 30, "degree": 3,
        "length": 4, "n_nodes": 20, "n_train": 300, "n_test": 100, "seed": 7}
    assert not list(out.glob("*.tmp"))
    assert ps.load_meta(out) == meta
    train, test = ps.load_split(out, "train"), ps.load_split(out, "test")
    assert train.tokens.shape == (300, meta["seq_len"]) and test.tokens.shape == (100, meta["seq_len"])
    # loss covers exactly the path and EOS
    assert train.loss_mask.sum(1).eq(5).all()
    assert train.loss_mask[:, 30:].all() and not train.loss_mask[:, :30].any()
    assert pq.read_table(out / "test.parquet").column("degree").to_pylist() == [3] * 100


def test_saved_graphs_are_valid_and_test_is_held_out(small_dataset):
    out, meta = small_dataset
    tok = ps.PathStarTokenizer(meta["n_nodes"])
    graphs = {}
    for split in ("train", "test"):
        graphs[split] = [tok.decode(r) for r in ps.load_split(out, split).tokens.tolist()]
        for g in graphs[split]:
            check_structure(g, 3, 4, 20)
    test_keys = [canonical(g) for g in graphs["test"]]
    assert len(set(test_keys)) == len(test_keys)
    assert not set(test_keys) & {canonical(g) for g in graphs["train"]}


def test_held_out_when_collisions_are_frequent(tmp_path):
    # G(2,2) on 5 labels has only 5*4*3 = 60 distinct graphs: a 100-graph train set covers most,
    # so the test set can only be built by redrawing.
    assert ps.count_graphs(2, 2, 5) == 60
    ps.write_dataset(tmp_path, degree=2, length=2, n_nodes=5, n_train=100, n_test=5, seed=0)
    tok = ps.PathStarTokenizer(5)
    train = {canonical(tok.decode(r)) for r in ps.load_split(tmp_path, "train").tokens.tolist()}
    test = [canonical(tok.decode(r)) for r in ps.load_split(tmp_path, "test").tokens.tolist()]
    assert len(train) > 40
    assert len(set(test)) == 5 and not set(test) & train


def test_impossible_test_set_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="held-out"):
        ps.write_dataset(tmp_path, degree=2, length=2, n_nodes=3, n_train=50, n_test=5, seed=0)
    assert not (tmp_path / "meta.json").exists()


def test_count_graphs_matches_enumeration():
    seen = set()
    g = ps.sample_graphs(5000, 3, 2, 5, np.random.default_rng(0))
    seen.update(ps.canonical_keys(g, 5))
    assert len(seen) == ps.count_graphs(3, 2, 5) == 5 * 4 * 3 * 2 // 2


def test_dataset_is_deterministic(tmp_path):
    kw = dict(degree=2, length=5, n_nodes=30, n_train=50, n_test=20)
    ps.write_dataset(tmp_path / "a", seed=1, **kw)
    ps.write_dataset(tmp_path / "b", seed=1, **kw)
    ps.write_dataset(tmp_path / "c", seed=2, **kw)
    for split in ("train", "test"):
        a, b, c = (ps.load_split(tmp_path / x, split).tokens for x in "abc")
        assert a.equal(b)
        assert not a.equal(c)


def test_meta_is_written_last(tmp_path, monkeypatch):
    ps.write_dataset(tmp_path, degree=2, length=3, n_nodes=10, n_train=10, n_test=5, seed=0)
    assert (tmp_path / "meta.json").exists()

    def broken(path, *a, **k):
        if path.name == "test.parquet":
            raise OSError("disk full")
        return write(path, *a, **k)

    write = ps.write_token_table
    monkeypatch.setattr(ps, "write_token_table", broken)
    with pytest.raises(OSError):
        ps.write_dataset(tmp_path, degree=2, length=3, n_nodes=10, n_train=10, n_test=5, seed=1)
    # the stale meta of the first run is gone, so the half-rewritten dataset is not taken as complete
    assert not (tmp_path / "meta.json").exists()
    with pytest.raises(FileNotFoundError, match="meta.json"):
        ps.load_split(tmp_path, "train")


def test_load_errors_name_the_missing_file(tmp_path, small_dataset):
    with pytest.raises(FileNotFoundError, match="meta.json"):
        ps.load_meta(tmp_path)
    out, meta = small_dataset
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(FileNotFoundError, match="test.parquet"):
        ps.load_split(tmp_path, "test")
    with pytest.raises(ValueError, match="split"):
        ps.load_split(out, "valid")
