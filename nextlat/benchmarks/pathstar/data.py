"""Path-Star graphs G(d, l): generation, tokenisation and the on-disk dataset.

A graph has a source (centre) node and ``d`` disjoint arms of ``l - 1`` further nodes each;
edges point away from the source. The model sees the shuffled edge list, the source and
the goal (the leaf of one arm), and must emit the path from the source to the goal.

Text format (as in the reference code of Bachmann & Nagarajan 2024)::

    u,v|u,v|...|u,v/S,G=S,p1,...,G

Tokens: node ``i`` -> id ``i``; ``|`` = N, ``=`` = N+1, ``/`` = N+2, ``$`` = N+3 (unused
pad), EOS = N+4, vocab = N+6 (N+5 is never used). Commas are dropped, so a row is::

    u v | u v | ... | u v / S G = S p1 ... G EOS

with ``3·d·(l-1) + 3`` prompt tokens, then ``l`` path tokens and EOS.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...data import store
from ...data.store import META_FILE, SPLITS, write_token_table  # noqa: F401  (re-exported)

_TASK_RE = re.compile(r"g(\d+)x(\d+)")


# --- task names and sizes (needed by the workflow before any data exists) ------------------
def parse_task(name: str) -> tuple[int, int]:
    """``"g5x5"`` -> ``(degree, length) = (5, 5)``."""
    m = _TASK_RE.fullmatch(name)
    if m is None:
        raise ValueError(f"bad Path-Star task name {name!r}; expected 'g<degree>x<length>', e.g. 'g5x5'")
    degree, length = int(m.group(1)), int(m.group(2))
    _check_shape(degree, length)
    return degree, length


def task_name(degree: int, length: int) -> str:
    _check_shape(degree, length)
    return f"g{degree}x{length}"


def n_edges(degree: int, length: int) -> int:
    return degree * (length - 1)


def prompt_len(degree: int, length: int) -> int:
    return prompt_len_of(n_edges(degree, length))


def seq_len(degree: int, length: int) -> int:
    """Full row length: prompt, ``l`` path tokens (source included) and EOS."""
    return prompt_len(degree, length) + length + 1


def vocab_size(n_nodes: int) -> int:
    return n_nodes + 6


def eos_id(n_nodes: int) -> int:
    return n_nodes + 4


def _check_shape(degree: int, length: int) -> None:
    if degree < 1:
        raise ValueError(f"degree must be >= 1, got {degree}")
    if length < 2:
        raise ValueError(f"arm length must be >= 2 (source plus at least one node), got {length}")


def _check_nodes(degree: int, length: int, n_nodes: int) -> None:
    _check_shape(degree, length)
    need = 1 + n_edges(degree, length)
    if n_nodes < need:
        raise ValueError(
            f"G({degree},{length}) has {need} distinct nodes (1 source + {degree} arms x {length - 1}), "
            f"but only n_nodes={n_nodes} labels are available; use n_nodes >= {need}")


# --- tokenizer ---------------------------------------------------------------------------
@dataclass
class PathStarGraph:
    """One decoded sample; ``path`` is empty when the row holds only the prompt."""

    edges: list[tuple[int, int]]
    source: int
    goal: int
    path: list[int]


class PathStarTokenizer:
    def __init__(self, n_nodes: int):
        if n_nodes < 2:
            raise ValueError(f"n_nodes must be >= 2, got {n_nodes}")
        self.n_nodes = n_nodes
        self.sep = n_nodes          # '|'
        self.eq = n_nodes + 1       # '='
        self.slash = n_nodes + 2    # '/'
        self.pad = n_nodes + 3      # '$' (never emitted here)
        self.eos = eos_id(n_nodes)
        self.vocab_size = vocab_size(n_nodes)
        self._symbols = {self.sep: "|", self.eq: "=", self.slash: "/", self.pad: "$", self.eos: "<eos>"}

    # encoding
    def encode_rows(self, edges: np.ndarray, source: np.ndarray, goal: np.ndarray,
                    path: np.ndarray | None = None) -> np.ndarray:
        """Vectorised: edges (n, E, 2), source/goal (n,), path (n, l) -> rows (n, L) int64.

        Without ``path`` only the prompt (through ``=``) is returned.
        """
        edges = np.asarray(edges, dtype=np.int64)
        n, n_e, _ = edges.shape
        sep = np.full((n, n_e, 1), self.sep, dtype=np.int64)
        edge_block = np.concatenate([edges, sep], axis=2).reshape(n, 3 * n_e)[:, :-1]  # no trailing '|'
        query = np.stack([np.full(n, self.slash), np.asarray(source), np.asarray(goal),
                          np.full(n, self.eq)], axis=1).astype(np.int64)
        parts = [edge_block, query]
        if path is not None:
            parts += [np.asarray(path, dtype=np.int64), np.full((n, 1), self.eos, dtype=np.int64)]
        return np.concatenate(parts, axis=1)

    def encode(self, edges, source: int, goal: int, path=None) -> tuple[list[int], int]:
        """One sample -> (token row, prompt_len)."""
        e = np.asarray(edges, dtype=np.int64).reshape(1, -1, 2)
        p = None if path is None else np.asarray(path, dtype=np.int64)[None]
        row = self.encode_rows(e, np.array([source]), np.array([goal]), p)[0]
        return row.tolist(), prompt_len_of(e.shape[1])

    def encode_text(self, line: str) -> tuple[list[int], int]:
        """Parse ``u,v|...|u,v/S,G=S,...,G`` (the path may be empty) -> (row, prompt_len)."""
        try:
            graph_part, rest = line.strip().split("/")
            query, path_part = rest.split("=")
            edges = [tuple(int(x) for x in e.split(",")) for e in graph_part.split("|")]
            source, goal = (int(x) for x in query.split(","))
            path = [int(x) for x in path_part.split(",")] if path_part else None
        except ValueError as err:
            raise ValueError(f"not a Path-Star line: {line!r} ({err})") from None
        if any(len(e) != 2 for e in edges):
            raise ValueError(f"not a Path-Star line (an edge needs two nodes): {line!r}")
        return self.encode(edges, source, goal, path)

    # decoding
    def decode(self, row) -> PathStarGraph:
        """Token row (prompt, optionally followed by a path and EOS) -> :class:`PathStarGraph`."""
        row = [int(t) for t in row]
        if self.slash not in row:
            raise ValueError(f"row has no '/' token ({self.slash}); not a Path-Star row")
        s = row.index(self.slash)
        if s + 3 > len(row) or row[s + 3] != self.eq:
            raise ValueError("row does not end its query with '/ S G ='")
        edge_tokens = row[:s]
        if (len(edge_tokens) + 1) % 3 or any(t != self.sep for t in edge_tokens[2::3]):
            raise ValueError("malformed edge list: expected 'u v | u v | ... u v'")
        edges = [(edge_tokens[i], edge_tokens[i + 1]) for i in range(0, len(edge_tokens), 3)]
        path = []
        for t in row[s + 4:]:
            if t == self.eos:
                break
            path.append(t)
        return PathStarGraph(edges, row[s + 1], row[s + 2], path)

    def to_text(self, row) -> str:
        """Pretty-print a row as ``u,v|u,v|.../S,G=S,p1,..,G`` (EOS dropped)."""
        g = self.decode(row)
        edges = "|".join(f"{u},{v}" for u, v in g.edges)
        return f"{edges}/{g.source},{g.goal}=" + ",".join(str(t) for t in g.path)

    def token_str(self, t: int) -> str:
        return self._symbols.get(int(t), str(int(t)))


def prompt_len_of(edge_count: int) -> int:
    """Tokens up to and including ``=``: 3 per edge minus the missing trailing ``|``, plus ``/ S G =``."""
    return 3 * edge_count + 3


# --- generation --------------------------------------------------------------------------
@dataclass
class Graphs:
    """A batch of n graphs as arrays: edges (n, E, 2) shuffled, source/goal (n,), path (n, l)."""

    edges: np.ndarray
    source: np.ndarray
    goal: np.ndarray
    path: np.ndarray

    def __len__(self) -> int:
        return len(self.source)

    def take(self, idx) -> "Graphs":
        return Graphs(self.edges[idx], self.source[idx], self.goal[idx], self.path[idx])

    @staticmethod
    def concat(parts: list["Graphs"]) -> "Graphs":
        return Graphs(*(np.concatenate([getattr(p, f) for p in parts])
                        for f in ("edges", "source", "goal", "path")))


def sample_graphs(n: int, degree: int, length: int, n_nodes: int, rng: np.random.Generator) -> Graphs:
    """Draw n random G(degree, length) graphs with labels from 0..n_nodes-1, all at once."""
    _check_nodes(degree, length, n_nodes)
    k = 1 + n_edges(degree, length)
    # The first k entries of a random permutation: k distinct labels per graph.
    labels = np.broadcast_to(np.arange(n_nodes, dtype=np.int64), (n, n_nodes))
    nodes = rng.permuted(labels, axis=1)[:, :k]
    source = nodes[:, 0]
    arms = nodes[:, 1:].reshape(n, degree, length - 1)  # arm 0 is the goal arm
    parents = np.concatenate([np.repeat(source[:, None, None], degree, axis=1), arms[:, :, :-1]], axis=2)
    edges = np.stack([parents, arms], axis=3).reshape(n, -1, 2)
    order = np.argsort(rng.random(edges.shape[:2]), axis=1)  # shuffle each edge list independently
    edges = np.take_along_axis(edges, order[:, :, None], axis=1)
    path = np.concatenate([source[:, None], arms[:, 0]], axis=1)
    return Graphs(edges, source, arms[:, 0, -1].copy(), path)


def canonical_keys(g: Graphs, n_nodes: int) -> list[bytes]:
    """One hashable key per graph: its sorted edge set, source and goal (edge order ignored)."""
    codes = np.sort(g.edges[:, :, 0].astype(np.int64) * n_nodes + g.edges[:, :, 1], axis=1)
    key = np.concatenate([codes, g.source[:, None], g.goal[:, None]], axis=1).astype(np.int64)
    return [r.tobytes() for r in np.ascontiguousarray(key)]


def count_graphs(degree: int, length: int, n_nodes: int) -> int:
    """Number of distinct canonical G(d, l) graphs: ordered label picks / orderings of the non-goal arms."""
    k = 1 + n_edges(degree, length)
    return math.perm(n_nodes, k) // math.factorial(degree - 1)


def sample_unseen(n: int, degree: int, length: int, n_nodes: int, rng: np.random.Generator,
                  exclude: set[bytes], max_rounds: int = 1000) -> Graphs:
    """Draw n distinct graphs none of which is in ``exclude`` (redrawing collisions)."""
    available = count_graphs(degree, length, n_nodes) - len(exclude)
    if n > available:
        raise ValueError(f"cannot draw {n} held-out G({degree},{length}) graphs with n_nodes={n_nodes}: "
                         f"only {available} distinct graphs are not in the training set")
    seen = set(exclude)
    parts, have = [], 0
    for _ in range(max_rounds):
        if have == n:
            break
        cand = sample_graphs(n - have, degree, length, n_nodes, rng)
        keep = []
        for i, key in enumerate(canonical_keys(cand, n_nodes)):
            if key not in seen:
                seen.add(key)
                keep.append(i)
        parts.append(cand.take(np.array(keep, dtype=np.int64)))
        have += len(keep)
    if have < n:
        raise RuntimeError(f"gave up after {max_rounds} rounds drawing unseen graphs ({have}/{n}); "
                           f"the graph space is nearly exhausted, use a larger n_nodes")
    return Graphs.concat(parts)


# --- dataset on disk ---------------------------------------------------------------------
def write_dataset(out_dir: str | Path, degree: int, length: int, n_nodes: int, n_train: int,
                  n_test: int, seed: int) -> dict:
    """Write ``train.parquet``, ``test.parquet`` and (last, atomically) ``meta.json``.

    The train set is a fixed draw (duplicates inside it are allowed, as in the reference);
    the test set has no duplicates and no graph equal to a training graph.
    Returns the meta dict.
    """
    _check_nodes(degree, length, n_nodes)
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be >= 1, got {n_train} and {n_test}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / META_FILE).unlink(missing_ok=True)  # a dataset is complete only once meta.json is back

    tok = PathStarTokenizer(n_nodes)
    # Separate streams, so the training set does not depend on n_test.
    train = sample_graphs(n_train, degree, length, n_nodes, np.random.default_rng([seed, 0]))
    test = sample_unseen(n_test, degree, length, n_nodes, np.random.default_rng([seed, 1]),
                         exclude=set(canonical_keys(train, n_nodes)))
    p_len = prompt_len(degree, length)
    for split, g in (("train", train), ("test", test)):
        rows = tok.encode_rows(g.edges, g.source, g.goal, g.path).astype(np.int32)
        write_token_table(out / f"{split}.parquet", list(rows), [p_len] * len(g),
                          extra={"degree": np.full(len(g), degree, dtype=np.int32),
                                 "length": np.full(len(g), length, dtype=np.int32)})

    meta = {"task": task_name(degree, length), "vocab_size": tok.vocab_size, "eos_id": tok.eos,
            "seq_len": seq_len(degree, length), "prompt_len": p_len, "degree": degree,
            "length": length, "n_nodes": n_nodes, "n_train": n_train, "n_test": n_test, "seed": seed}
    return store.write_meta(out, meta)


def load_meta(data_dir: str | Path) -> dict:
    return store.load_meta(data_dir, "Path-Star")


def load_split(data_dir: str | Path, split: str):
    """The split as a :class:`~nextlat.data.dataset.TokenDataset`, checked against meta.json."""
    return store.load_split(data_dir, split, "Path-Star")


# --- pipeline stage -----------------------------------------------------------------------
def make_data(task: str, data: dict, out_dir: Path, workers: int | None = None) -> dict:
    """The data stage: one G(d,l) dataset from the ``data`` config block."""
    d, l = parse_task(task)
    return write_dataset(out_dir, d, l, data["n_nodes"], data["n_train"], data["n_test"], data.get("seed", 0))
