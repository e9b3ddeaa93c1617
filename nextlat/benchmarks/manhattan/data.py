"""Manhattan taxi traversals (Table 1, Figure 3): tokenizer, trips, random walks, dataset.

A traversal is a document ``SRC DEST d1 ... dk end`` (Vafa et al. 2024's format): the pickup
and dropoff intersections (one token per node id), the compass moves, and ``end``.

Tokenizer (as the original ``SimpleTokenizer``): every word sorted in *reverse string
order* and numbered from 1, ``<pad>`` = 0. That gives ``end`` = 1, W=2, SW=3, SE=4, S=5,
NW=6, NE=7, N=8, E=9 and then the node ids. Here the words come from the street graph,
not from the training sentences, so every intersection has a token. The vocabulary is
padded to ``max_nodes + N_SPECIAL`` so the workflow can size the model before the graph
exists (the original study's Manhattan graph has 4,579 nodes).

Training packs documents into fixed-length rows, ``end`` acting as the separator that
*starts* each document (models.layout): ``end SRC DEST d.. end SRC DEST d.. end ...``.
Generation is therefore prompted with ``end SRC DEST``.
"""
from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path

import numpy as np

from ...data import store
from ...data.parallel import run_shards
from ...data.store import META_FILE
from .streets import DIRECTIONS, NO_EDGE, StreetGraph, haversine_miles

log = logging.getLogger(__name__)

END = "end"
PAD = "<pad>"
N_SPECIAL = 2 + len(DIRECTIONS)  # pad, end and the eight directions


def vocab_size(max_nodes: int) -> int:
    """Model vocabulary for graphs of at most ``max_nodes`` intersections."""
    return max_nodes + N_SPECIAL


def eos_id() -> int:
    return 1  # 'end' sorts first in reverse string order (lowercase > uppercase > digits)


class ManhattanTokenizer:
    """Word <-> token id for one street graph; also maps tokens to graph indices."""

    pad = 0

    def __init__(self, graph: StreetGraph, vocab_size: int | None = None):
        words = [str(int(u)) for u in graph.node_ids] + list(DIRECTIONS) + [END]
        self.words = [PAD] + sorted(words, reverse=True)
        self.id_of = {w: i for i, w in enumerate(self.words)}
        self.vocab_size = vocab_size or len(self.words)
        if self.vocab_size < len(self.words):
            raise ValueError(f"the street graph needs {len(self.words)} tokens but the vocabulary has "
                             f"{self.vocab_size}; raise manhattan.graph.max_nodes to >= {graph.n_nodes}")
        self.eos = self.id_of[END]
        assert self.eos == eos_id()
        self.dir_token = np.array([self.id_of[d] for d in DIRECTIONS], dtype=np.int64)  # dir index -> token
        self.node_token = np.array([self.id_of[str(int(u))] for u in graph.node_ids], dtype=np.int64)
        self.token_dir = np.full(self.vocab_size, -1, dtype=np.int64)  # token -> dir index or -1
        self.token_dir[self.dir_token] = np.arange(len(DIRECTIONS))
        self.token_node = np.full(self.vocab_size, -1, dtype=np.int64)  # token -> node index or -1
        self.token_node[self.node_token] = np.arange(graph.n_nodes)

    def encode(self, src: int, dst: int, dirs) -> list[int]:
        """One document from node *indices* and direction indices: SRC DEST d.. end."""
        return [int(self.node_token[src]), int(self.node_token[dst]),
                *self.dir_token[np.asarray(dirs, dtype=np.int64)].tolist(), self.eos]

    def encode_text(self, line: str) -> list[int]:
        """``"42429002 42432736 NE NW end"`` -> token ids (unknown words raise)."""
        try:
            return [self.id_of[w] for w in line.split()]
        except KeyError as err:
            raise ValueError(f"unknown word {err.args[0]!r} in traversal {line!r}") from None

    def decode_text(self, tokens) -> str:
        return " ".join(self.words[t] if 0 <= t < len(self.words) else f"<{t}>" for t in tokens)


# =====================================================================================
# Trips: (pickup, dropoff) pairs of node *indices*
# =====================================================================================
# Taxi-like demand surface for ``pickups="density"`` (our choice; the real trip table is not
# public with the paper): two Gaussian hotspots over a uniform floor, distances in miles.
# Midtown is the busier one. Both pickups and dropoffs are drawn from it.
HOTSPOTS = (  # (lat, lon, weight, sigma in miles)
    (40.754, -73.984, 1.0, 0.75),  # Midtown
    (40.707, -74.011, 0.6, 0.5),   # Financial District
)
DEMAND_FLOOR = 0.1  # keeps every intersection reachable as a trip end
PICKUPS = ("uniform", "density")
_SNAP_CHUNK = 1 << 22  # (points x nodes) distances per chunk when snapping coordinates


def demand_weights(graph: StreetGraph) -> np.ndarray:
    """Unnormalised pickup/dropoff weight of every node under the :data:`HOTSPOTS` surface."""
    if not graph.has_coords:
        raise ValueError(f"pickups='density' needs node coordinates, but street graph "
                         f"{graph.name or '(unnamed)'} has none; use pickups='uniform'")
    w = np.full(graph.n_nodes, DEMAND_FLOOR)
    for lat, lon, weight, sigma in HOTSPOTS:
        d = haversine_miles(graph.lat, graph.lon, lat, lon)
        w += weight * np.exp(-0.5 * (d / sigma) ** 2)
    return w


def sample_trips(graph: StreetGraph, n: int, rng: np.random.Generator, pickups: str = "uniform",
                 max_moves: int = 97, hops: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random trips ``(src, dst)`` (node indices) on the largest strongly connected component.

    Endpoints are drawn i.i.d. (uniformly, or from :func:`demand_weights`) and a pair is
    redrawn while ``src == dst`` or the dropoff is more than ``max_moves`` moves away.
    """
    if pickups not in PICKUPS:
        raise ValueError(f"pickups must be one of {PICKUPS}, got {pickups!r}")
    hops = graph.hop_distances() if hops is None else hops
    nodes = graph.largest_scc()
    if len(nodes) < 2:
        raise ValueError("the street graph's largest strongly connected component has a single node")
    p = None
    if pickups == "density":
        w = demand_weights(graph)[nodes]
        p = w / w.sum()
    src, dst = np.empty(0, np.int64), np.empty(0, np.int64)
    for _ in range(1000):  # rejection rounds; each draws twice what is still missing
        need = n - len(src)
        if need <= 0:
            break
        s, d = rng.choice(nodes, size=(2, 2 * need + 16), p=p)
        ok = (s != d) & (hops[s, d] <= max_moves)
        src = np.concatenate([src, s[ok][:need]])
        dst = np.concatenate([dst, d[ok][:need]])
    if len(src) < n:
        raise ValueError(f"could not draw {n} trips within max_moves={max_moves}: almost no node pair "
                         f"is that close; raise max_moves or use a smaller graph")
    return src, dst


def _read_table(path: Path):
    import pyarrow.csv
    import pyarrow.parquet as pq

    if not path.exists():
        raise FileNotFoundError(f"trips file {path} does not exist")
    if path.suffix in (".parquet", ".pq"):
        return pq.read_table(path)
    return pyarrow.csv.read_csv(path)


def snap_to_nodes(graph: StreetGraph, lat, lon) -> np.ndarray:
    """Index of the nearest node (great-circle distance) for every point, in chunks."""
    if not graph.has_coords:
        raise ValueError("snapping coordinates to intersections needs a street graph with coordinates")
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    out = np.empty(len(lat), dtype=np.int64)
    step = max(1, _SNAP_CHUNK // graph.n_nodes)
    for a in range(0, len(lat), step):
        d = haversine_miles(lat[a:a + step, None], lon[a:a + step, None], graph.lat, graph.lon)
        out[a:a + step] = d.argmin(axis=1)
    return out


def read_trips(path: str | Path, graph: StreetGraph, max_moves: int = 97,
               hops: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Real taxi trips from a CSV or parquet file -> ``(src, dst)`` node indices.

    Columns are either ``pickup, dropoff`` (node ids; an unknown id is an error) or
    ``pickup_lat, pickup_lon, dropoff_lat, dropoff_lon`` (snapped to the nearest node of
    the whole graph; rows with missing coordinates are dropped). Trips whose ends are the
    same node, or whose dropoff is unreachable within ``max_moves``, are dropped (logged).
    """
    path = Path(path)
    table = _read_table(path)
    cols = set(table.column_names)
    if {"pickup", "dropoff"} <= cols:
        ids = [table.column(c).to_numpy(zero_copy_only=False) for c in ("pickup", "dropoff")]
        ends = []
        for col in ids:
            known = np.isin(col, graph.node_ids)
            if not known.all():
                raise ValueError(f"{path}: {int((~known).sum())} trip end(s) name node ids that are not in "
                                 f"the street graph (e.g. {np.unique(col[~known])[:3].tolist()})")
            ends.append(graph.index_of(col))
        src, dst = ends
    elif {"pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon"} <= cols:
        xy = np.stack([table.column(c).to_numpy(zero_copy_only=False).astype(float)
                       for c in ("pickup_lat", "pickup_lon", "dropoff_lat", "dropoff_lon")], axis=1)
        ok = np.isfinite(xy).all(axis=1)
        if not ok.all():
            log.info("%s: dropped %d trips with missing coordinates", path, int((~ok).sum()))
        xy = xy[ok]
        src, dst = snap_to_nodes(graph, xy[:, 0], xy[:, 1]), snap_to_nodes(graph, xy[:, 2], xy[:, 3])
    else:
        raise ValueError(f"{path} has columns {sorted(cols)}; expected 'pickup,dropoff' (node ids) or "
                         f"'pickup_lat,pickup_lon,dropoff_lat,dropoff_lon'")
    hops = graph.hop_distances() if hops is None else hops
    keep = (src != dst) & (hops[src, dst] <= max_moves)
    if not keep.all():
        log.info("%s: dropped %d of %d trips (same node, or dropoff more than %d moves away)",
                 path, int((~keep).sum()), len(keep), max_moves)
    if not keep.any():
        raise ValueError(f"{path}: no usable trip (all are loops or unreachable within {max_moves} moves)")
    return src[keep], dst[keep]


def distinct_pairs(src, dst) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct ``(src, dst)`` pairs (sorted), the pair index of every trip, and trips per pair."""
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    base = int(dst.max()) + 1 if len(dst) else 1
    keys, inverse, counts = np.unique(src * base + dst, return_inverse=True, return_counts=True)
    return keys // base, keys % base, inverse.reshape(-1), counts


def split_pairs(src, dst, heldout_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask over trips: True = training trip.

    The split is over *distinct* pairs, so a held-out pair never occurs in training; a
    frequent pair keeps all its trips on its side. ``round(fraction * n_pairs)`` pairs are
    held out (at least one, and at least one pair is kept, when 0 < fraction < 1).
    """
    if not 0.0 <= heldout_fraction <= 1.0:
        raise ValueError(f"heldout_fraction must lie in [0, 1], got {heldout_fraction}")
    _, _, inverse, counts = distinct_pairs(src, dst)
    n_pairs = len(counts)
    n_held = int(round(heldout_fraction * n_pairs))
    if 0.0 < heldout_fraction < 1.0 and n_pairs >= 2:
        n_held = min(max(n_held, 1), n_pairs - 1)
    held = np.zeros(n_pairs, dtype=bool)
    held[rng.permutation(n_pairs)[:n_held]] = True
    return ~held[inverse]


# =====================================================================================
# Random traversals
# =====================================================================================
def random_walks(graph: StreetGraph, src, dst, max_moves: int, rng: np.random.Generator,
                 hops: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One random traversal per trip; returns ``(lengths (W,), dirs)`` with ``dirs`` the
    int8 direction indices of all walks concatenated (walk ``j`` has ``lengths[j]`` moves).

    How Vafa et al. generated their walks is not published (their data and code give
    only the sampled walks). Our
    reading: draw a length ``k`` uniform in ``[hops(s, d), max_moves]``; at step ``i`` move
    uniformly among the legal directions whose next node can still reach ``d`` within the
    walk's own budget (``hops[next, d] <= k - i - 1``); stop at ``d`` after ``k`` moves. So
    every walk is legal, ends at its dropoff after exactly ``k <= max_moves`` moves and may
    pass ``d`` earlier (not a "first arrival" walk). A walk that sits at ``d`` with no
    allowed move left stops early (only when ``d`` lies on no short enough cycle).

    Why ``k`` is the budget, not ``max_moves``: with the loose budget a walk past ``k``
    seldom meets ``d`` by chance before the budget forces it home, so on a Manhattan-sized
    grid almost every walk used all 97 moves (mean 99 tokens against the original's ~52).
    With ``k`` as the budget the mean is ~74 tokens (bench/manhattan_walks.py prints it).

    Vectorised over walks: one pass of numpy ops per step, on the walks still moving.
    """
    hops = graph.hop_distances() if hops is None else hops
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    W = len(src)
    shortest = hops[src, dst].astype(np.int64)
    if (shortest > max_moves).any():
        raise ValueError(f"{int((shortest > max_moves).sum())} trips have a dropoff more than "
                         f"max_moves={max_moves} moves away (or unreachable)")
    target = rng.integers(shortest, max_moves + 1)
    moves = np.full((W, max_moves), -1, dtype=np.int8)
    succ, n = graph.succ.astype(np.int64), graph.n_nodes
    hops_flat = hops.reshape(-1)  # np.take on flat indices beats 2-d fancy indexing by ~1/3
    # Compacted state of the walks still moving: walk index, position, dropoff, target length.
    walk, cur, end, k = np.arange(W), src.copy(), dst, target
    for i in range(max_moves):
        nxt = succ[cur]  # (A, 8)
        ok = nxt != NO_EDGE
        ok &= np.take(hops_flat, np.where(ok, nxt, 0) * n + end[:, None]) <= (k - i - 1)[:, None]
        count = ok.sum(axis=1)
        go = ~((cur == end) & ((i >= k) | (count == 0)))
        walk, cur, end, k, nxt, ok, count = (a[go] for a in (walk, cur, end, k, nxt, ok, count))
        if not len(walk):
            break
        # Uniform choice among the allowed directions: the r-th True of each row.
        r = (rng.random(len(walk)) * count).astype(np.int64)
        choice = (ok.cumsum(axis=1) > r[:, None]).argmax(axis=1)
        moves[walk, i] = choice
        cur = nxt[np.arange(len(walk)), choice]
    assert (cur == end).all(), "a walk ran out of budget away from its dropoff"
    made = moves >= 0
    return made.sum(axis=1), moves[made]


# =====================================================================================
# The dataset on disk
# =====================================================================================
PROMPT_LEN = 2  # SRC DEST
# Seed streams: everything is drawn from default_rng([seed, stream, ...]).
_TRIPS, _SPLIT, _EVAL = 0, 1, 2
_WALK_STREAM = {"train": 3, "test": 4}
_SPLITS = tuple(_WALK_STREAM)
_SHARED: dict = {}  # set in the parent before forking, read by the shard workers (copy-on-write)


def _data_config(data: dict) -> dict:
    """The ``data`` block checked against the config schema (benchmarks.manhattan.data), its
    defaults (the paper's) filled in: one place for keys, ranges and defaults."""
    from ...config import sub_schema, validate

    cfg = validate(copy.deepcopy(dict(data)), sub_schema("manhattan/properties/data"))
    cfg.pop("workers", None)  # never changes what is generated
    return cfg


def documents(tok: ManhattanTokenizer, src, dst, lengths, dirs) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :meth:`ManhattanTokenizer.encode` of many walks -> (offsets (W+1,), int32 tokens)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths + 3, out=offsets[1:])
    starts, ends = offsets[:-1], offsets[1:] - 1
    values = np.empty(offsets[-1], dtype=np.int32)
    is_move = np.ones(offsets[-1], dtype=bool)
    for pos, tokens in ((starts, tok.node_token[src]), (starts + 1, tok.node_token[dst]), (ends, tok.eos)):
        values[pos] = tokens
        is_move[pos] = False
    values[is_move] = tok.dir_token[np.asarray(dirs, dtype=np.int64)]  # moves keep the walk order
    return offsets, values


def _write_shard(job: tuple[str, int, int]) -> tuple[int, int]:
    """Generate and write walk shard ``k`` of a split; returns (documents, tokens)."""
    import pyarrow as pa

    split, k, n = job
    s = _SHARED
    src, dst = s["trips"][split]
    rng = np.random.default_rng([s["seed"], _WALK_STREAM[split], k])
    pick = rng.integers(0, len(src), size=n)  # trips with replacement: frequent pairs get more walks
    lengths, dirs = random_walks(s["graph"], src[pick], dst[pick], s["max_moves"], rng, s["hops"])
    offsets, values = documents(s["tok"], src[pick], dst[pick], lengths, dirs)
    tokens = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values))
    table = pa.table({"tokens": tokens, "prompt_len": pa.array(np.full(n, PROMPT_LEN, dtype=np.int32))})
    store.write_parquet(s["out"] / split / f"part-{k:05d}.parquet", table)
    return n, len(values)


def _pairs_tables(graph: StreetGraph, src, dst, train, hops, cfg: dict):
    """``pairs.parquet`` (every distinct pair) and ``eval_pairs.parquet`` (held-out, near)."""
    import pyarrow as pa

    ps, pd, inverse, counts = distinct_pairs(src, dst)
    is_train = np.zeros(len(counts), dtype=bool)
    is_train[inverse[train]] = True
    h = hops[ps, pd].astype(np.int32)
    pairs = pa.table({"src": graph.node_ids[ps], "dst": graph.node_ids[pd],
                      "split": np.where(is_train, "train", "heldout"), "hops": h, "trips": counts})
    near = np.flatnonzero(~is_train & (h >= 1) & (h <= cfg["max_eval_hops"]))
    near = near[np.random.default_rng([cfg["seed"], _EVAL]).permutation(len(near))]
    eval_pairs = pa.table({"src": graph.node_ids[ps[near]], "dst": graph.node_ids[pd[near]], "hops": h[near]})
    return pairs, eval_pairs, int(is_train.sum())


def write_dataset(out_dir: str | Path, graph: StreetGraph, data: dict, vocab_size: int,
                  workers: int | None = None) -> dict:
    """Trips, their split, the walk documents and (last, atomically) ``meta.json``.

    Writes ``graph.graphml``, ``pairs.parquet``, ``eval_pairs.parquet``, ``train/`` and
    ``test/`` (``part-00000.parquet``...: columns ``tokens`` list<int32> and ``prompt_len``)
    and ``meta.json``. Train walks follow training trips, test walks held-out trips. Walk
    shard ``k`` of a split draws from ``default_rng([seed, stream, k])`` and is written by
    its own worker, so the files depend on ``data`` only, never on ``workers``
    (None = all cores, 1 = no process pool).
    """
    cfg = _data_config(data)
    tok = ManhattanTokenizer(graph, vocab_size)  # fails early when the vocabulary is too small
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / META_FILE).unlink(missing_ok=True)  # a dataset is complete only once meta.json is back
    for split in _SPLITS:  # stale part files of an earlier, larger run would be read back
        shutil.rmtree(out / split, ignore_errors=True)
        (out / split).mkdir()
    graph.save(out / "graph.graphml")

    hops = graph.hop_distances()  # once, before forking
    seed, max_moves = cfg["seed"], cfg["max_moves"]
    if cfg["trips_file"]:
        src, dst = read_trips(cfg["trips_file"], graph, max_moves, hops)
    else:
        src, dst = sample_trips(graph, int(cfg["n_trips"]), np.random.default_rng([seed, _TRIPS]),
                                cfg["pickups"], max_moves, hops)
    train = split_pairs(src, dst, cfg["heldout_fraction"], np.random.default_rng([seed, _SPLIT]))
    if train.all() or not train.any():
        raise ValueError(f"need at least two distinct trip pairs to hold some out; got {len(src)} trips")
    pairs, eval_pairs, n_train_pairs = _pairs_tables(graph, src, dst, train, hops, cfg)
    store.write_parquet(out / "pairs.parquet", pairs)
    store.write_parquet(out / "eval_pairs.parquet", eval_pairs)

    jobs = [(split, k, min(cfg["shard_size"], n - a))
            for split, n in (("train", int(cfg["n_train"])), ("test", int(cfg["n_test"])))
            for k, a in enumerate(range(0, n, cfg["shard_size"]))]
    _SHARED.update(graph=graph, hops=hops, tok=tok, out=out, seed=seed, max_moves=max_moves,
                   trips={"train": (src[train], dst[train]), "test": (src[~train], dst[~train])})
    try:
        # forked workers (run_shards) read _SHARED, the hop matrix included, without copying it
        stats = run_shards(_write_shard, jobs, workers or None)
    finally:
        _SHARED.clear()
    n_tokens = {split: sum(t for (sp, _, _), (_, t) in zip(jobs, stats) if sp == split) for split in _SPLITS}

    meta = {"benchmark": "manhattan", "vocab_size": tok.vocab_size, "eos_id": tok.eos,
            "seq_len": cfg["pack_len"], "prompt_len": PROMPT_LEN, "graph_name": graph.name,
            "n_nodes": graph.n_nodes, "n_edges": graph.n_edges, "has_coords": graph.has_coords,
            "n_trips": len(src), "n_train_trips": int(train.sum()), "n_heldout_trips": int((~train).sum()),
            "n_train": int(cfg["n_train"]), "n_test": int(cfg["n_test"]),
            "n_train_pairs": n_train_pairs, "n_heldout_pairs": pairs.num_rows - n_train_pairs,
            "n_eval_pairs": eval_pairs.num_rows, "max_moves": max_moves, "max_eval_hops": cfg["max_eval_hops"],
            "mean_doc_tokens": n_tokens["train"] / int(cfg["n_train"]),
            "n_train_tokens": n_tokens["train"], "n_test_tokens": n_tokens["test"],
            "pickups": cfg["pickups"], "trips_file": str(cfg["trips_file"]) if cfg["trips_file"] else None,
            "heldout_fraction": cfg["heldout_fraction"], "shard_size": cfg["shard_size"], "seed": seed}
    log.info("Manhattan dataset %s: %d train / %d test walks, %d train / %d held-out pairs, %.1f tokens/doc",
             out, meta["n_train"], meta["n_test"], meta["n_train_pairs"], meta["n_heldout_pairs"],
             meta["mean_doc_tokens"])
    return store.write_meta(out, meta)


# =====================================================================================
# Loading
# =====================================================================================
def load_meta(data_dir: str | Path) -> dict:
    return store.load_meta(data_dir, "Manhattan")


def load_graph(data_dir: str | Path) -> StreetGraph:
    """The street graph the dataset was generated on (node order: sorted ids)."""
    load_meta(data_dir)
    return StreetGraph.load(Path(data_dir) / "graph.graphml")


def load_tokenizer(data_dir: str | Path, graph: StreetGraph | None = None) -> ManhattanTokenizer:
    """Tokenizer of a generated dataset (vocabulary size from meta.json)."""
    meta = load_meta(data_dir)
    return ManhattanTokenizer(graph or load_graph(data_dir), meta["vocab_size"])


def load_documents(data_dir: str | Path, split: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All (or the first ``limit``) documents of a split: (flat int64 tokens, lengths)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if split not in _SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {_SPLITS}")
    meta = load_meta(data_dir)
    folder = Path(data_dir) / split
    # meta.json fixes the part files and their row counts: a missing or truncated part is an
    # error here, not a silently smaller split.
    n, size = int(meta[f"n_{split}"]), int(meta["shard_size"])
    expected = [f"part-{k:05d}.parquet" for k in range((n + size - 1) // size)]
    found = sorted(p.name for p in folder.glob("part-*.parquet"))
    if found != expected:
        missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        raise store.DataError(f"{folder} does not hold the {len(expected)} part files meta.json describes "
                              f"(missing: {missing[:5] or 'none'}, unexpected: {extra[:5] or 'none'}); "
                              f"{store.REGENERATE}")
    chunks, have = [], 0
    for k, name in enumerate(expected):  # in shard order; stop reading once `limit` documents are in
        col = store.read_parquet(folder / name, columns=["tokens"]).column("tokens")
        if len(col) != min(size, n - k * size):
            raise store.DataError(f"{folder / name} has {len(col)} documents, meta.json implies "
                                  f"{min(size, n - k * size)}; {store.REGENERATE}")
        chunks.extend(col.chunks)
        have += len(col)
        if limit is not None and have >= limit:
            break
    tokens = pa.chunked_array(chunks).combine_chunks()
    if limit is not None:
        tokens = tokens.slice(0, limit)
    lengths = pc.list_value_length(tokens).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = tokens.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    store.check_tokens(folder, flat, int(meta["vocab_size"]))
    return flat, lengths


def packed_split(data_dir: str | Path, split: str, pack_len: int | None = None, limit: int | None = None):
    """A split as packed rows: the stream ``end doc1 doc2 ...`` cut into ``pack_len`` tokens.

    Documents end with ``end``, so one leading ``end`` makes every document *start* after
    an ``end``, which is the layout's document boundary (models.layout). Rows are cut
    anywhere (a document may continue on the next row); the incomplete tail is dropped.
    Every token is supervised, as in the original training. ``limit`` reads only the
    first ``limit`` documents.
    """
    import torch

    from ...data.dataset import TokenDataset

    meta = load_meta(data_dir)
    pack_len = int(pack_len or meta["seq_len"])
    flat, _ = load_documents(data_dir, split, limit)
    stream = np.concatenate([[meta["eos_id"]], flat])
    n_rows = len(stream) // pack_len
    if n_rows == 0:
        raise ValueError(f"the {split} split of {data_dir} has {len(stream)} tokens, fewer than "
                         f"one packed row of {pack_len}")
    tokens = torch.from_numpy(stream[:n_rows * pack_len].reshape(n_rows, pack_len))
    return TokenDataset(tokens, torch.ones_like(tokens, dtype=torch.bool), packed=True)


def load_train(data_dir: str | Path):
    """(train, val) packed :class:`~nextlat.data.dataset.TokenDataset`; val = held-out pairs' walks."""
    return packed_split(data_dir, "train"), packed_split(data_dir, "test")


def load_eval_pairs(data_dir: str | Path, graph: StreetGraph | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluation pairs (held-out, 1..max_eval_hops moves apart) as (src, dst, hops) node indices
    of ``graph`` (default: :func:`load_graph`)."""
    import pyarrow.parquet as pq

    load_meta(data_dir)
    graph = graph or load_graph(data_dir)
    t = pq.read_table(Path(data_dir) / "eval_pairs.parquet")
    col = {c: t.column(c).to_numpy() for c in ("src", "dst", "hops")}
    return graph.index_of(col["src"]), graph.index_of(col["dst"]), col["hops"].astype(np.int64)


# =====================================================================================
# Plan-time sizes and the pipeline stage
# =====================================================================================
def max_nodes(graph_cfg: dict) -> int:
    """Node bound that sizes the vocabulary before the graph exists: exact for the
    synthetic city (avenues x streets), ``max_nodes`` for OpenStreetMap and the pickles."""
    if graph_cfg["source"] == "synthetic":
        from .streets import synthetic_n_nodes

        return synthetic_n_nodes(graph_cfg.get("synthetic", {}))
    return graph_cfg.get("max_nodes", 5000)


def has_coords(graph_cfg: dict) -> bool:
    """Whether the graph will carry coordinates (needed by reconstruction and maps)."""
    return graph_cfg["source"] != "pickle" or bool(graph_cfg.get("pickle", {}).get("coords"))


def make_data(task: str, data: dict, out_dir: Path, workers: int | None = None) -> dict:
    """The data stage: ``data`` is the benchmark's ``data`` block plus its ``graph``."""
    from .streets import load_street_graph

    data = dict(data)
    graph_cfg = data.pop("graph")
    graph = load_street_graph(graph_cfg)
    return write_dataset(out_dir, graph, data, vocab_size(max_nodes(graph_cfg)),
                         workers=data.get("workers") or workers)
