"""Street-map reconstruction from model traversals (Vafa et al. 2024; NextLat Figure 3).

Re-implemented after ``mapping/reconstruction.py`` of Vafa et al.'s code
(keyonvafa/world-model-evaluation). Every true street starts *unused*. Each sampled traversal
``SRC DEST d1..dk end`` is replayed on the map; where it cannot be followed, a *new* edge
(one the real city lacks) is added so that it can, provided the jump stays within
``distance_miles``. A model with a faithful world model needs no new edges; the maps show
how much the map implied by its traversals departs from the real one.

Rules (the original's, unless noted):

* Following a direction at a node takes the node's *used* edge in that direction (a true
  edge already used, or a new edge). Without one, the unused true edge in that direction
  may be taken if the node's *used degree* (out-edges that are used or new) is below
  ``degree``. Otherwise the walk is stuck.
* A walk is cut back to its longest prefix whose end node could take a new edge in the
  next direction: degree budget left and no used edge in that direction. So new edges
  respect the degree budget too, exactly like the original's ``bfs_to_failure``. A walk
  that consumes every direction but ends away from DEST counts as stuck before the last.
* Stuck with one direction left: add a new edge to DEST if DEST is within
  ``distance_miles``, else the sequence fails. With more left: start the remaining
  directions (after the next one) from every node within ``distance_miles`` (the current
  node included, in ``candidate_order``), with the true edge (current node, next
  direction) forbidden because the new edge will take that slot; keep the longest
  continuation (the first on ties); add a new edge to its first node. If no candidate
  makes progress the sequence fails.

Two departures from the original, each a switch (``eval.reconstruction`` in the config);
``atomic=False, candidate_order="node"`` follows the original's rules exactly:

* ``atomic`` (default True): a failed sequence changes nothing. The original
  (``atomic=False``) commits a sequence's edges as it goes, so a sequence that fails
  half-way still leaves used and new edges behind, spends degree budget, and later
  sequences follow those edges. A failed sequence is one the map cannot explain, so we
  add nothing for it: every new edge then serves a traversal that the map explains.
* ``candidate_order`` (default "nearest"): the nodes a continuation may start from are
  tried nearest first (ties by index). The original tries them in node order (it iterates
  ``graph.nodes``, in osmnx's order); "node" here means ascending node id, which is
  osmnx's order when it keeps the nodes as Overpass returns them (sorted by id). So among
  equally long continuations the lowest id within ``distance_miles`` wins, however far: the new edge then depends on how OSM numbers the intersections, not on the
  traversal. Nearest first makes it the shortest edge that explains the traversal.

They change the counts a lot: on the original study's 6,400 samples the original's rules
give 1,864 failed sequences and 3,190 new edges, ours 1,306 and 1,293. Compare counts only
between reconstructions of the same mode (``counts["atomic"]``, ``counts["candidate_order"]``).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...io import write_text
from .streets import DIR_INDEX, DIRECTIONS, NO_EDGE, StreetGraph, haversine_miles

_RESERVED = -2  # slot held for the new edge being placed: counts as used, cannot be followed
CANDIDATE_ORDERS = ("nearest", "node")


def require_coords(graph: StreetGraph) -> None:
    """Raise a clear error when the graph cannot be placed on a map."""
    if not graph.has_coords:
        raise ValueError(
            f"street graph {graph.name or '(unnamed)'!r} has no node coordinates; map reconstruction "
            "needs them (the pickle source carries none): give graph.pickle.coords a node,lat,lon "
            "CSV, or use the osm or synthetic graph source")


# --- result ------------------------------------------------------------------------------
@dataclass
class Reconstruction:
    """Outcome of :func:`reconstruct`; edges are ``(src, dir, dst)`` rows of node *indices*."""

    graph_name: str
    node_ids: np.ndarray  # (n,) ids of the graph the indices refer to
    used: np.ndarray  # (m, 3) true edges used by at least one successful sequence
    new: np.ndarray  # (k, 3) edges the real map lacks
    # n_generated, n_ill_formed, n_used, n_failed, n_new_edges, true_used, true_unused, empty,
    # atomic, candidate_order (see :func:`reconstruct`)
    counts: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)  # degree, distance_miles, seed, atomic, candidate_order

    @property
    def empty(self) -> bool:
        """Built from no sequence at all: its map (no used or new edge) says nothing."""
        return bool(self.counts.get("empty", False))

    @property
    def note(self) -> str | None:
        """A warning for tables and maps when the map looks better than it is, else None."""
        c = self.counts
        if self.empty:
            return (f"no usable sequences: {c.get('n_generated', 0)} generated, "
                    f"{c.get('n_ill_formed', 0)} ill-formed")
        if c.get("n_used") and c.get("n_failed") == c["n_used"]:
            return f"every sequence failed ({c['n_used']})"
        return None

    def unused(self, graph: StreetGraph) -> np.ndarray:
        """True edges no sequence used, as ``(src, dir, dst)`` rows."""
        mask = graph.succ != NO_EDGE
        if len(self.used):
            mask[self.used[:, 0], self.used[:, 1]] = False
        src, k = np.nonzero(mask)
        return np.stack([src, k, graph.succ[src, k]], axis=1).astype(np.int64)

    def _edges_json(self, edges: np.ndarray) -> list:
        ids = self.node_ids
        return [[int(ids[u]), DIRECTIONS[k], int(ids[v])] for u, k, v in edges.tolist()]

    def to_json(self) -> str:
        """JSON with node *ids* and direction names, so it outlives index renumbering."""
        return json.dumps({
            "graph": self.graph_name, "counts": self.counts, "params": self.params,
            "used_edges": self._edges_json(self.used), "new_edges": self._edges_json(self.new),
        })

    @classmethod
    def from_json(cls, text: str, graph: StreetGraph) -> "Reconstruction":
        """Inverse of :meth:`to_json`; the used edges must be true edges of ``graph``."""
        data = json.loads(text)
        used, new = (_edges_from_json(data[key], graph) for key in ("used_edges", "new_edges"))
        if len(used) and (graph.succ[used[:, 0], used[:, 1]] != used[:, 2]).any():
            raise ValueError(f"reconstruction of graph {data['graph']!r} uses edges that street "
                             f"graph {graph.name!r} lacks; was it made from another graph?")
        return cls(data["graph"], graph.node_ids.copy(), used, new, data["counts"], data["params"])

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_json` atomically."""
        write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path, graph: StreetGraph) -> "Reconstruction":
        return cls.from_json(Path(path).read_text(), graph)


def _edges_from_json(rows: list, graph: StreetGraph) -> np.ndarray:
    if not rows:
        return np.zeros((0, 3), dtype=np.int64)
    src = graph.index_of([r[0] for r in rows])
    dst = graph.index_of([r[2] for r in rows])
    k = np.array([DIR_INDEX[r[1]] for r in rows])
    return np.stack([src, k, dst], axis=1).astype(np.int64)


# --- bookkeeping -------------------------------------------------------------------------
class _Layer:
    """Tentative edge uses on top of the committed state: a sequence's, or one walk's."""

    def __init__(self):
        self.edges: dict[tuple[int, int], tuple[int, bool]] = {}  # (u, k) -> (v, is_new)
        self.degree: Counter = Counter()

    def add(self, u: int, k: int, v: int, is_new: bool) -> None:
        self.edges[(u, k)] = (v, is_new)
        self.degree[u] += 1


class _Reconstructor:
    """Committed state (used true edges, new edges) and the replay of one sequence."""

    def __init__(self, graph: StreetGraph, degree: int, distance_miles: float,
                 candidate_order: str = "nearest"):
        self.graph, self.succ = graph, graph.succ
        self.max_degree, self.distance = degree, distance_miles
        self.candidate_order = candidate_order
        self.true_used = np.zeros(graph.succ.shape, dtype=bool)
        self.new_dst = np.full(graph.succ.shape, NO_EDGE, dtype=np.int64)
        self.used_degree = np.zeros(graph.n_nodes, dtype=np.int64)
        self._near_cache: dict[int, np.ndarray] = {}

    # queries through the layers (innermost first), then the committed state
    def _used_succ(self, u: int, k: int, layers) -> int:
        for layer in layers:
            hit = layer.edges.get((u, k))
            if hit is not None:
                return hit[0]
        if self.true_used[u, k]:
            return int(self.succ[u, k])
        return int(self.new_dst[u, k])  # NO_EDGE when there is none

    def _degree(self, u: int, layers) -> int:
        return int(self.used_degree[u]) + sum(layer.degree[u] for layer in layers)

    def _can_add(self, u: int, k: int, layers) -> bool:
        """Could node ``u`` take a new edge heading ``k``?"""
        return self._degree(u, layers) < self.max_degree and self._used_succ(u, k, layers) == NO_EDGE

    def _step(self, u: int, k: int, layers) -> tuple[int, bool] | None:
        """(next node, took an unused true edge) or None when stuck; records tentative uses."""
        v = self._used_succ(u, k, layers)
        if v == _RESERVED:
            return None
        if v != NO_EDGE:
            return v, False
        v = int(self.succ[u, k])
        if v == NO_EDGE or self._degree(u, layers) >= self.max_degree:
            return None
        layers[0].add(u, k, v, is_new=False)
        return v, True

    def _walk(self, start: int, dirs, dst: int, pending: _Layer, reserve=None):
        """Follow ``dirs`` from ``start``: (steps, reached_dst).

        ``steps`` are ``(u, k, v, fresh)`` with ``fresh`` marking unused true edges taken.
        With at most one edge per (node, direction) there is only ever one way to follow
        the directions, so the original's BFS over partial paths is this single walk.
        If the walk does not end at ``dst`` it is cut back to its longest prefix (possibly
        empty) whose end node could take a new edge in the next direction.
        """
        local = _Layer()
        if reserve is not None:
            local.add(*reserve, _RESERVED, is_new=True)
        layers = (local, pending)
        steps, usable, node = [], 0, start
        for i, k in enumerate(dirs):
            # judged before stepping on: later tentative uses are dropped with the cut
            if self._can_add(node, k, layers):
                usable = i
            nxt = self._step(node, k, layers)
            if nxt is None:
                break
            steps.append((node, k, nxt[0], nxt[1]))
            node = nxt[0]
        else:
            if node == dst:
                return steps, True
        return steps[:usable], False

    def _near(self, u: int) -> np.ndarray:
        """Nodes within the jump distance of ``u`` in candidate order: nearest first (ties by
        index), or by ascending node id (the original's ``graph.nodes``)."""
        if u not in self._near_cache:
            g = self.graph
            dist = haversine_miles(g.lat[u], g.lon[u], g.lat, g.lon)
            idx = np.nonzero(dist <= self.distance)[0]
            if self.candidate_order == "node":
                self._near_cache[u] = idx[np.argsort(g.node_ids[idx], kind="stable")]
            else:
                self._near_cache[u] = idx[np.lexsort((idx, dist[idx]))]
        return self._near_cache[u]

    def _within_reach(self, u: int, v: int) -> bool:
        g = self.graph
        return float(haversine_miles(g.lat[u], g.lon[u], g.lat[v], g.lon[v])) <= self.distance

    def _continuation(self, u: int, k: int, rest, dst: int, pending: _Layer) -> list:
        """Longest walk of ``rest`` from a node near ``u``, with (u, k) reserved."""
        best = []
        for cand in self._near(u).tolist():
            steps, full = self._walk(cand, rest, dst, pending, reserve=(u, k))
            if len(steps) > len(best):
                best = steps
            if full:  # nothing can be longer
                break
        return best

    # replay and commit
    def replay(self, src: int, dst: int, dirs: list[int]) -> tuple[bool, _Layer]:
        """Replay one sequence: (success, the edges it uses and adds)."""
        pending = _Layer()
        steps, _ = self._walk(src, dirs, dst, pending)
        _take(pending, steps)
        pos = len(steps)
        node = steps[-1][2] if steps else src
        if pos == 0 and not self._can_add(src, dirs[0], (pending,)):
            return False, pending
        while pos < len(dirs):
            k = dirs[pos]
            if pos == len(dirs) - 1:  # one move left: jump straight to DEST
                if not self._within_reach(node, dst):
                    return False, pending
                pending.add(node, k, dst, is_new=True)
                break
            cont = self._continuation(node, k, dirs[pos + 1:], dst, pending)
            if not cont:
                return False, pending
            pending.add(node, k, cont[0][0], is_new=True)
            _take(pending, cont)
            pos += 1 + len(cont)
            node = cont[-1][2]
        return True, pending

    def commit(self, pending: _Layer) -> None:
        for (u, k), (v, is_new) in pending.edges.items():
            if is_new:
                self.new_dst[u, k] = v
            else:
                self.true_used[u, k] = True
            self.used_degree[u] += 1


def _take(pending: _Layer, steps) -> None:
    """Move a walk's freshly taken true edges into the sequence's layer."""
    for u, k, v, fresh in steps:
        if fresh:
            pending.add(u, k, v, is_new=False)


def _check_sequence(graph: StreetGraph, src, dst, dirs) -> tuple[int, int, list[int]]:
    dirs = [int(k) for k in dirs]
    if not dirs:
        raise ValueError(f"sequence {src}->{dst} has no directions (filter them out first)")
    if not all(0 <= k < len(DIRECTIONS) for k in dirs):
        raise ValueError(f"sequence {src}->{dst} has direction indices outside 0..7: {dirs}")
    if not (0 <= int(src) < graph.n_nodes and 0 <= int(dst) < graph.n_nodes):
        raise ValueError(f"sequence endpoints {src}->{dst} are not node indices of the graph")
    return int(src), int(dst), dirs


# --- entry points ------------------------------------------------------------------------
def reconstruct(graph: StreetGraph, sequences, degree: int = 8, distance_miles: float = 0.5,
                n_sequences: int | None = None, seed: int = 0, atomic: bool = True,
                candidate_order: str = "nearest", n_ill_formed: int = 0) -> Reconstruction:
    """Reconstruct the map implied by ``sequences`` of ``(src_idx, dst_idx, [dir_idx, ...])``.

    The sequences are shuffled with ``seed`` and the first ``n_sequences`` (all when None)
    are replayed in that order; the result depends on the order because earlier
    sequences spend the degree budget and create edges later ones follow. ``degree``
    caps a node's used out-edges (true and new); with eight directions and at most one
    used edge per direction, NextLat's ``degree=8`` never binds (the original's default
    was 4). ``atomic`` and ``candidate_order`` choose between our rules (the defaults) and
    the original's (``False``, ``"node"``); see the module docstring.

    ``n_ill_formed`` counts generations dropped before this call (see
    :func:`sequences_from_tokens`); it only enters the counts: ``n_generated`` (well-formed
    plus ill-formed), ``n_ill_formed``, ``n_used`` (sequences replayed), ``n_failed``,
    ``n_new_edges``, ``true_used`` / ``true_unused`` (true edges), ``empty`` (no sequence
    replayed: the map shows nothing, not a perfect model) and the mode (``atomic``,
    ``candidate_order``).
    """
    require_coords(graph)
    if candidate_order not in CANDIDATE_ORDERS:
        raise ValueError(f"unknown candidate_order {candidate_order!r}; choose from {CANDIDATE_ORDERS}")
    if n_ill_formed < 0:
        raise ValueError(f"n_ill_formed must be >= 0, got {n_ill_formed}")
    atomic = bool(atomic)
    order = np.random.default_rng(seed).permutation(len(sequences))[:n_sequences]
    state = _Reconstructor(graph, degree, distance_miles, candidate_order)
    failed = 0
    for i in order.tolist():
        ok, pending = state.replay(*_check_sequence(graph, *sequences[i]))
        failed += not ok
        if ok or not atomic:
            state.commit(pending)
    src, k = np.nonzero(state.true_used)
    used = np.stack([src, k, graph.succ[src, k]], axis=1).astype(np.int64)
    src, k = np.nonzero(state.new_dst != NO_EDGE)
    new = np.stack([src, k, state.new_dst[src, k]], axis=1).astype(np.int64)
    counts = {"n_generated": len(sequences) + int(n_ill_formed), "n_ill_formed": int(n_ill_formed),
              "n_used": len(order), "n_failed": failed, "n_new_edges": len(new),
              "true_used": len(used), "true_unused": graph.n_edges - len(used),
              "empty": len(order) == 0, "atomic": atomic, "candidate_order": candidate_order}
    params = {"degree": degree, "distance_miles": distance_miles, "seed": seed, "atomic": atomic,
              "candidate_order": candidate_order}
    return Reconstruction(graph.name, graph.node_ids.copy(), used, new, counts, params)


def describe_mode(atomic: bool, candidate_order: str) -> str:
    """The rules a reconstruction followed, for tables: e.g. "atomic, nearest first"."""
    text = f"{'atomic' if atomic else 'non-atomic'}, " + (
        "nearest first" if candidate_order == "nearest" else f"{candidate_order} order")
    return text + (" (original)" if not atomic and candidate_order == "node" else "")


def sequences_from_tokens(tokenizer, src, dst, generations) -> list[tuple[int, int, list[int]]]:
    """Model generations -> ``(src_idx, dst_idx, dirs)`` for :func:`reconstruct`.

    ``generations[i]`` holds the tokens generated after the prompt ``end SRC DEST`` for
    the pair ``(src[i], dst[i])`` (node indices). Kept: generations whose tokens up to the
    first ``end`` are one or more directions; anything after that ``end`` is ignored
    (batched decoding runs past it). Others (no ``end``, a node token, padding) are the
    ill-formed ones, dropped: pass ``len(src) - len(result)`` to :func:`reconstruct` as
    ``n_ill_formed`` so that the counts show them.
    """
    out = []
    for s, d, gen in zip(np.asarray(src).tolist(), np.asarray(dst).tolist(), generations):
        tokens = np.asarray(gen.tolist() if hasattr(gen, "tolist") else gen, dtype=np.int64)
        ends = np.nonzero(tokens == tokenizer.eos)[0]
        if not len(ends) or ends[0] == 0:
            continue
        body = tokens[:ends[0]]
        if ((body < 0) | (body >= len(tokenizer.token_dir))).any():
            continue
        dirs = tokenizer.token_dir[body]
        if (dirs >= 0).all():
            out.append((int(s), int(d), dirs.tolist()))
    return out


# --- pipeline stage -----------------------------------------------------------------------
def reconstruct_samples(inputs: dict, outputs: dict, params: dict) -> dict:
    """Rebuild the street map implied by a model's generated traversals (Vafa et al.)."""
    import logging

    import pyarrow.parquet as pq

    from . import data

    data_dir = Path(inputs["meta"]).parent
    cfg, seed = params["cfg"], params["seed"]
    graph = data.load_graph(data_dir)
    tok = data.load_tokenizer(data_dir, graph)
    table = pq.read_table(inputs["samples"]).to_pydict()
    seqs = sequences_from_tokens(tok, table["src"], table["dst"], table["tokens"])
    recon = reconstruct(graph, seqs, degree=cfg["degree"], distance_miles=cfg["distance_miles"],
                        n_sequences=cfg["n_sequences"], seed=seed, atomic=cfg.get("atomic", True),
                        candidate_order=cfg.get("candidate_order", "nearest"),
                        n_ill_formed=len(table["src"]) - len(seqs))
    recon.save(outputs[0] if isinstance(outputs, list) else next(iter(outputs.values())))
    log = logging.getLogger(__name__)
    log.info("reconstruction from %s: %s", inputs["samples"], recon.counts)
    if recon.note:
        log.warning("reconstruction from %s: %s", inputs["samples"], recon.note)
    return recon.counts
