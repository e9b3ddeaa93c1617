"""Manhattan data: trips, the held-out split, random walks, the on-disk dataset and packing."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from nextlat.benchmarks.manhattan import data as mh
from nextlat.benchmarks.manhattan.streets import UNREACHABLE, StreetGraph, haversine_miles
from nextlat.models.layout import document_ids

ROWS, COLS = 8, 6  # streets (south -> north) x avenues (west -> east)
VOCAB = 64  # 51 nodes + pad, end and 8 directions = 61 words
CUL_DE_SAC, SINK, SOURCE = 9001, 9002, 9003
DATA = {"n_trips": 2000, "pickups": "density", "heldout_fraction": 0.2, "n_train": 900, "n_test": 250,
        "max_moves": 16, "max_eval_hops": 6, "pack_len": 64, "shard_size": 200, "seed": 3}


def node(r: int, c: int) -> int:
    return 7000 + r * COLS + c


def city(coords: bool = True) -> StreetGraph:
    """A small one-way grid spanning Manhattan's latitudes, with a diagonal, a cul-de-sac
    (in the SCC), a sink and a source (both outside it).

    Streets alternate E/W (the outer two are two-way); avenues alternate N/S (the outer two
    are two-way).
    """
    edges = []
    for r in range(ROWS):
        for c in range(COLS):
            if c + 1 < COLS:
                if r % 2 == 0 or r in (0, ROWS - 1):
                    edges.append((node(r, c), "E", node(r, c + 1)))
                if r % 2 == 1 or r in (0, ROWS - 1):
                    edges.append((node(r, c + 1), "W", node(r, c)))
            if r + 1 < ROWS:
                if c % 2 == 0 or c in (0, COLS - 1):
                    edges.append((node(r, c), "N", node(r + 1, c)))
                if c % 2 == 1 or c in (0, COLS - 1):
                    edges.append((node(r + 1, c), "S", node(r, c)))
    edges += [(node(0, 0), "NE", node(1, 1)),
              (node(ROWS - 1, COLS - 1), "E", CUL_DE_SAC), (CUL_DE_SAC, "W", node(ROWS - 1, COLS - 1)),
              (node(0, COLS - 1), "SE", SINK), (SOURCE, "N", node(0, 0))]
    ids = [node(r, c) for r in range(ROWS) for c in range(COLS)] + [CUL_DE_SAC, SINK, SOURCE]
    lat = [40.700 + 0.014 * r for r in range(ROWS) for c in range(COLS)] + [40.798, 40.690, 40.690]
    lon = [-74.020 + 0.012 * c for r in range(ROWS) for c in range(COLS)] + [-73.948, -73.950, -74.020]
    return StreetGraph.from_edges(ids, edges, lat if coords else None, lon if coords else None, name="toy")


@pytest.fixture(scope="module")
def graph():
    return city()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, graph):
    out = tmp_path_factory.mktemp("manhattan")
    meta = mh.write_dataset(out, graph, DATA, VOCAB, workers=1)
    return out, meta


def walk_paths(graph, src, lengths, dirs):
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return [graph.follow(s, dirs[a:b]) for s, a, b in zip(src, offsets[:-1], offsets[1:])]


def decode_pairs(out, split):
    """(SRC id, DEST id) of every document in a split, read back from the part files."""
    tok = mh.load_tokenizer(out)
    flat, lengths = mh.load_documents(out, split)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ids = [int(w) for w in tok.decode_text(np.stack([flat[starts], flat[starts + 1]], 1).ravel()).split()]
    return set(zip(ids[::2], ids[1::2])), len(lengths)


# --- the test city ---------------------------------------------------------------------------
def test_city_shape(graph):
    scc = set(graph.node_ids[graph.largest_scc()].tolist())
    assert len(scc) == ROWS * COLS + 1 and CUL_DE_SAC in scc and not {SINK, SOURCE} & scc
    hops = graph.hop_distances()
    assert hops[graph.index_of(node(0, 0)), graph.index_of(SOURCE)] == UNREACHABLE


# --- trips -----------------------------------------------------------------------------------
def test_sample_trips_on_the_scc_and_within_reach(graph):
    hops = graph.hop_distances()
    scc = graph.largest_scc()
    assert (hops[np.ix_(scc, scc)] > 8).any()  # the hop limit below really bites
    src, dst = mh.sample_trips(graph, 5000, np.random.default_rng(0), "uniform", max_moves=8)
    assert len(src) == len(dst) == 5000
    assert (src != dst).all() and np.isin(src, scc).all() and np.isin(dst, scc).all()
    assert (hops[src, dst] <= 8).all()
    assert len(np.unique(src)) == len(scc)  # every SCC node can be a pickup
    again = mh.sample_trips(graph, 5000, np.random.default_rng(0), "uniform", max_moves=8)
    assert all(np.array_equal(a, b) for a, b in zip((src, dst), again))


def test_density_pickups_concentrate_near_hotspots(graph):
    def mean_hotspot_miles(pickups):
        src, dst = mh.sample_trips(graph, 20000, np.random.default_rng(1), pickups, max_moves=30)
        ends = np.concatenate([src, dst])
        d = [haversine_miles(graph.lat[ends], graph.lon[ends], lat, lon) for lat, lon, _, _ in mh.HOTSPOTS]
        return np.minimum(*d).mean()

    uniform, density = mean_hotspot_miles("uniform"), mean_hotspot_miles("density")
    assert density < 0.8 * uniform
    with pytest.raises(ValueError, match="coordinates"):
        mh.sample_trips(city(coords=False), 10, np.random.default_rng(0), "density")
    with pytest.raises(ValueError, match="pickups"):
        mh.sample_trips(graph, 10, np.random.default_rng(0), "taxi")


def test_split_pairs_holds_out_whole_pairs():
    rng = np.random.default_rng(0)
    src, dst = rng.integers(0, 12, size=(2, 3000))
    train = mh.split_pairs(src, dst, 0.25, np.random.default_rng(5))
    train_pairs = set(zip(src[train].tolist(), dst[train].tolist()))
    held_pairs = set(zip(src[~train].tolist(), dst[~train].tolist()))
    assert not train_pairs & held_pairs
    assert len(held_pairs) == round(0.25 * len(train_pairs | held_pairs))
    assert np.array_equal(train, mh.split_pairs(src, dst, 0.25, np.random.default_rng(5)))


# --- read_trips ------------------------------------------------------------------------------
def test_read_trips_by_node_id(graph, tmp_path):
    far = (node(0, 0), node(ROWS - 1, COLS - 1))  # more than 8 moves apart
    rows = [(node(1, 1), node(2, 3)), (node(2, 2), node(2, 2)), (node(0, 0), SOURCE), far, (SOURCE, node(1, 0))]
    path = tmp_path / "trips.csv"
    path.write_text("pickup,dropoff\n" + "".join(f"{a},{b}\n" for a, b in rows))
    src, dst = mh.read_trips(path, graph, max_moves=8)
    assert graph.node_ids[src].tolist() == [node(1, 1), SOURCE]  # loop, unreachable and far dropped
    assert graph.node_ids[dst].tolist() == [node(2, 3), node(1, 0)]

    path.write_text("pickup,dropoff\n" + f"{node(1, 1)},{node(2, 3)}\n12,{node(1, 1)}\n{node(0, 0)},13\n")
    with pytest.raises(ValueError, match=r"trips\.csv: 1 trip end") as err:
        mh.read_trips(path, graph)
    assert "12" in str(err.value)
    path.write_text("from,to\n1,2\n")
    with pytest.raises(ValueError, match="pickup_lat"):
        mh.read_trips(path, graph)


def test_read_trips_snaps_coordinates(graph, tmp_path):
    pick = graph.index_of([node(3, 2), node(5, 4), node(1, 1)])
    drop = graph.index_of([node(6, 0), CUL_DE_SAC, node(1, 1)])  # the last trip snaps to a loop
    noise = np.random.default_rng(0).uniform(-2e-4, 2e-4, size=(4, 3))  # ~20 m off the corner
    table = pa.table({"pickup_lat": graph.lat[pick] + noise[0], "pickup_lon": graph.lon[pick] + noise[1],
                      "dropoff_lat": graph.lat[drop] + noise[2], "dropoff_lon": graph.lon[drop] + noise[3]})
    pq.write_table(table, tmp_path / "trips.parquet")
    src, dst = mh.read_trips(tmp_path / "trips.parquet", graph)
    assert src.tolist() == pick[:2].tolist() and dst.tolist() == drop[:2].tolist()


# --- random walks ----------------------------------------------------------------------------
def test_walks_are_legal_and_end_at_their_dropoff(graph):
    rng = np.random.default_rng(2)
    src, dst = mh.sample_trips(graph, 3000, rng, "uniform", max_moves=16)
    lengths, dirs = mh.random_walks(graph, src, dst, 16, rng)
    assert dirs.dtype == np.int8 and lengths.sum() == len(dirs)
    hops = graph.hop_distances()
    assert (lengths <= 16).all() and (lengths >= hops[src, dst]).all()
    paths = walk_paths(graph, src, lengths, dirs)
    assert all(p is not None and p[-1] == d for p, d in zip(paths, dst))  # legal, ends at the dropoff
    early = np.mean([d in p[:-1] for p, d in zip(paths, dst)])
    assert 0.02 < early < 0.9  # passing the dropoff early happens: not "stop at first arrival"
    assert len(np.unique(lengths)) > 5  # lengths vary with the drawn target length


def test_moves_are_uniform_among_allowed_directions(graph):
    start, goal = graph.index_of([node(0, 0), node(3, 3)])  # (0, 0) can go N, NE and E
    n = 6000
    lengths, dirs = mh.random_walks(graph, np.full(n, start), np.full(n, goal), 16, np.random.default_rng(0))
    first = dirs[np.concatenate([[0], np.cumsum(lengths)[:-1]])]
    # A walk makes exactly its drawn length k of moves; with slack to spare every legal
    # first move keeps the goal in reach, so the three must be equally likely.
    roomy = first[lengths >= 12]
    freq = np.bincount(roomy, minlength=8) / len(roomy)
    assert len(roomy) > 2000
    assert np.allclose(freq[[0, 1, 2]], 1 / 3, atol=0.035) and freq[3:].sum() == 0


def test_tight_budget_gives_shortest_paths(graph):
    hops = graph.hop_distances()
    src, dst = np.nonzero(hops == 7)
    lengths, dirs = mh.random_walks(graph, src, dst, 7, np.random.default_rng(0))
    assert (lengths == 7).all()
    for p, d in zip(walk_paths(graph, src, lengths, dirs), dst):
        assert [hops[v, d] for v in p] == list(range(7, -1, -1))  # every move gets one closer
    # One move of slack cannot be used on a bipartite grid: still shortest, and still home.
    lengths, dirs = mh.random_walks(graph, src, dst, 8, np.random.default_rng(0))
    assert all(p[-1] == d for p, d in zip(walk_paths(graph, src, lengths, dirs), dst))
    with pytest.raises(ValueError, match="max_moves"):
        mh.random_walks(graph, src, dst, 6, np.random.default_rng(0))


def test_vectorised_documents_match_encode(graph):
    tok = mh.ManhattanTokenizer(graph, 64)
    rng = np.random.default_rng(4)
    src, dst = mh.sample_trips(graph, 50, rng, max_moves=12)
    lengths, dirs = mh.random_walks(graph, src, dst, 12, rng)
    offsets, values = mh.documents(tok, src, dst, lengths, dirs)
    moves = np.split(dirs, np.cumsum(lengths)[:-1])
    assert [values[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])] == \
        [tok.encode(s, d, m) for s, d, m in zip(src, dst, moves)]


# --- the dataset on disk ---------------------------------------------------------------------
def test_meta_and_files(dataset, graph):
    out, meta = dataset
    assert json.loads((out / "meta.json").read_text()) == meta
    assert meta["benchmark"] == "manhattan" and meta["vocab_size"] == 64 and meta["eos_id"] == 1
    assert (meta["seq_len"], meta["n_nodes"], meta["n_edges"]) == (64, graph.n_nodes, graph.n_edges)
    assert meta["has_coords"] and meta["n_train"] == 900 and meta["n_test"] == 250
    assert len(list((out / "train").glob("part-*.parquet"))) == 5  # 900 walks in shards of 200
    flat, lengths = mh.load_documents(out, "train")
    assert len(lengths) == 900 and lengths.max() <= DATA["max_moves"] + 3
    assert meta["n_train_tokens"] == len(flat) and meta["mean_doc_tokens"] == pytest.approx(lengths.mean())
    part = pq.read_table(out / "train" / "part-00000.parquet")
    assert part.schema.field("tokens").type == pa.list_(pa.int32()) and set(part.column("prompt_len").to_pylist()) == {2}
    assert not list(out.rglob("*.tmp"))


def test_heldout_pairs_never_in_training(dataset):
    out, meta = dataset
    pairs = pq.read_table(out / "pairs.parquet").to_pydict()
    split = dict(zip(zip(pairs["src"], pairs["dst"]), pairs["split"]))
    held = {p for p, s in split.items() if s == "heldout"}
    assert (len(split) - len(held), len(held)) == (meta["n_train_pairs"], meta["n_heldout_pairs"])
    assert sum(pairs["trips"]) == meta["n_trips"]
    train_seen, n = decode_pairs(out, "train")
    test_seen, _ = decode_pairs(out, "test")
    assert n == 900 and train_seen and not train_seen & held and train_seen <= set(split)
    assert test_seen <= held
    ev = pq.read_table(out / "eval_pairs.parquet").to_pydict()
    assert len(ev["src"]) == meta["n_eval_pairs"] > 0
    assert set(zip(ev["src"], ev["dst"])) <= held
    assert all(1 <= h <= DATA["max_eval_hops"] for h in ev["hops"])
    assert sorted(zip(ev["src"], ev["dst"])) != list(zip(ev["src"], ev["dst"]))  # shuffled


def test_load_eval_pairs_gives_graph_indices(dataset):
    out, _ = dataset
    g = mh.load_graph(out)
    src, dst, hops = mh.load_eval_pairs(out, g)
    assert np.array_equal(hops, g.hop_distances()[src, dst])
    ev = pq.read_table(out / "eval_pairs.parquet")
    assert np.array_equal(g.node_ids[src], ev.column("src").to_numpy())


def test_workers_do_not_change_the_files(dataset, graph, tmp_path):
    out1, meta1 = dataset
    meta2 = mh.write_dataset(tmp_path, graph, DATA, VOCAB, workers=2)
    assert meta1 == meta2
    names = sorted(p.relative_to(out1) for p in out1.rglob("*.parquet"))
    assert names == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.parquet")) and len(names) > 6
    for name in names:
        assert pq.read_table(out1 / name).equals(pq.read_table(tmp_path / name)), name


def test_meta_json_is_written_last(graph, tmp_path, monkeypatch):
    mh.write_dataset(tmp_path, graph, {**DATA, "n_train": 500, "n_test": 50}, VOCAB, workers=1)
    meta = mh.write_dataset(tmp_path, graph, {**DATA, "n_train": 300, "n_test": 50}, VOCAB, workers=1)
    assert len(mh.load_documents(tmp_path, "train")[1]) == 300  # no stale part files of the first run
    stamp = (tmp_path / "meta.json").stat().st_mtime_ns
    assert all(p.stat().st_mtime_ns <= stamp for p in tmp_path.rglob("*.parquet"))
    assert meta["n_train"] == 300

    real = mh.random_walks

    def flaky(graph, src, dst, max_moves, rng, hops=None):
        if len(src) < DATA["shard_size"]:  # fail on the (short) last shard of a split
            raise RuntimeError("worker died")
        return real(graph, src, dst, max_moves, rng, hops)

    monkeypatch.setattr(mh, "random_walks", flaky)
    with pytest.raises(RuntimeError, match="worker died"):
        mh.write_dataset(tmp_path, graph, {**DATA, "n_train": 500}, VOCAB, workers=2)
    assert not (tmp_path / "meta.json").exists()
    with pytest.raises(FileNotFoundError, match="meta.json"):
        mh.load_train(tmp_path)


def test_bad_data_config(graph, tmp_path):
    with pytest.raises(ValueError, match="n_walks"):
        mh.write_dataset(tmp_path, graph, {**DATA, "n_walks": 3}, VOCAB)
    with pytest.raises(ValueError, match="max_nodes"):
        mh.write_dataset(tmp_path, graph, DATA, 20)


# --- loading and packing ---------------------------------------------------------------------
def test_packed_rows(dataset):
    out, meta = dataset
    flat, lengths = mh.load_documents(out, "train")
    ds = mh.packed_split(out, "train")
    L, eos = meta["seq_len"], meta["eos_id"]
    assert ds.packed and ds.seq_len == L and len(ds) == (len(flat) + 1) // L
    assert ds.loss_mask.all()
    stream = ds.tokens.reshape(-1).numpy()
    assert np.array_equal(stream, np.concatenate([[eos], flat])[:len(stream)])  # documents contiguous
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) + 1  # stream index of each SRC
    starts = starts[starts < len(stream)]
    assert (stream[starts - 1] == eos).all()  # every document is preceded by `end`
    assert np.count_nonzero(stream == eos) == len(starts) + (stream[-1] == eos and len(starts) < len(lengths))
    doc, pos = document_ids(ds.tokens, eos)
    is_eos = ds.tokens == eos
    assert torch.equal(doc[:, 1:] - doc[:, :-1], is_eos[:, 1:].long())  # boundaries exactly at `end`
    assert (pos[is_eos] == 0).all()
    assert mh.packed_split(out, "train", pack_len=32).seq_len == 32


def test_load_train_and_tokenizer_round_trip(dataset):
    out, meta = dataset
    train, val = mh.load_train(out)
    assert train.packed and val.packed and len(val) == (meta["n_test_tokens"] + 1) // meta["seq_len"]
    tok = mh.load_tokenizer(out)
    flat, lengths = mh.load_documents(out, "test", limit=3)
    assert len(lengths) == 3
    for doc in np.split(flat, np.cumsum(lengths)[:-1]):
        text = tok.decode_text(doc)
        words = text.split()
        assert words[-1] == "end" and all(w in ("N", "NE", "E", "SE", "S", "SW", "W", "NW") for w in words[2:-1])
        assert tok.encode_text(text) == doc.tolist()
    with pytest.raises(FileNotFoundError, match="meta.json"):
        mh.load_graph(out / "nowhere")
