"""Manhattan taxi traversals (Table 1, Figure 3): tokenizer, trips, random walks, dataset.

A traversal is a document ``SRC DEST d1 ... dk end`` (docs/benchmarks.md §4): the pickup
and dropoff intersections (one token per node id), the compass moves, and ``end``.

Tokenizer (as the original ``SimpleTokenizer``): every word sorted in *reverse string
order* and numbered from 1, ``<pad>`` = 0. That gives ``end`` = 1, W=2, SW=3, SE=4, S=5,
NW=6, NE=7, N=8, E=9 and then the node ids. Here the words come from the street graph,
not from the training sentences, so every intersection has a token. The vocabulary is
padded to ``max_nodes + N_SPECIAL`` so the workflow can size the model before the graph
exists (the real Manhattan graph has 4,580 nodes).

Training packs documents into fixed-length rows, ``end`` acting as the separator that
*starts* each document (models.layout): ``end SRC DEST d.. end SRC DEST d.. end ...``.
Generation is therefore prompted with ``end SRC DEST``.
"""
from __future__ import annotations

import numpy as np

from .streets import DIRECTIONS, StreetGraph

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
