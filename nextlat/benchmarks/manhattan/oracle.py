"""The "true world model" row of Table 1: next-token logits read off the true street graph,
scored by the same evaluation code as the trained models (evaluation/manhattan.py)."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from .data import ManhattanTokenizer
from .streets import NO_EDGE, UNREACHABLE, StreetGraph
from .evaluate import _lookup

_SRC, _DEST, _WALK, _LOST = 0, 1, 2, 3  # what the oracle expects next in a row


class OracleModel(nn.Module):
    """Next-token logits from the true graph: the "true world model" of Table 1.

    It reads each row (``end SRC DEST d.. end SRC DEST ..``; packed rows too, ``end``
    restarts) and tracks the current node and the destination. Away from DEST it favours
    moves on a shortest path to DEST, keeps every other legal move from which DEST can
    still be reached likely (p > 0.01 with up to 8 moves, so that any sampled continuation
    is also likely after a different prefix), and rules out the rest, dead ends included;
    at DEST ``end`` is the most likely token. After an illegal token it is uniform.
    """

    BEST, LEGAL, IMPOSSIBLE = 2.0, 0.0, -1e4

    def __init__(self, graph: StreetGraph, tok: ManhattanTokenizer, vocab_size: int | None = None):
        super().__init__()
        self.graph, self.tok = graph, tok
        self.vocab_size = vocab_size or tok.vocab_size
        self.hops = graph.hop_distances().astype(np.int32)

    def hidden_states(self, tokens, layout=None, which="probe"):
        raise NotImplementedError("the oracle reads the true graph and has no hidden states")

    def forward(self, tokens, layout=None):
        return self.logits(tokens, layout)

    @torch.no_grad()
    def logits(self, tokens: Tensor, layout=None) -> Tensor:
        x = tokens.cpu().numpy()
        B, T = x.shape
        out = np.full((B, T, self.vocab_size), self.IMPOSSIBLE, dtype=np.float32)
        phase = np.full(B, _SRC)
        node, dest = np.zeros(B, dtype=np.int64), np.zeros(B, dtype=np.int64)
        for t in range(T):
            phase = self._read(x[:, t], phase, node, dest)
            self._predict(out[:, t], phase, node, dest)
        return torch.from_numpy(out).to(tokens.device)

    def _read(self, x, phase, node, dest):
        """Advance every row's state over the tokens ``x`` (B,); node/dest updated in place."""
        as_node, as_dir = _lookup(self.tok.token_node, x), _lookup(self.tok.token_dir, x)
        new = np.full_like(phase, _LOST)
        got = (phase == _SRC) & (as_node >= 0)
        node[got], new[got] = as_node[got], _DEST
        got = (phase == _DEST) & (as_node >= 0)
        dest[got], new[got] = as_node[got], _WALK
        walking = (phase == _WALK) & (as_dir >= 0)
        nxt = np.where(walking, self.graph.succ[node, np.maximum(as_dir, 0)], NO_EDGE)
        got = walking & (nxt != NO_EDGE)
        node[got], new[got] = nxt[got], _WALK
        new[x == self.tok.eos] = _SRC  # a new document starts
        return new

    def _predict(self, view, phase, node, dest):
        """Fill the (B, V) logits of one position from the rows' states."""
        rows = np.flatnonzero((phase == _SRC) | (phase == _DEST))
        view[rows[:, None], self.tok.node_token[None]] = self.LEGAL  # any intersection
        view[phase == _LOST] = self.LEGAL  # uniform
        rows = np.flatnonzero(phase == _WALK)
        n, e = node[rows], dest[rows]
        nxt = self.graph.succ[n]  # (b, 8)
        ahead = self.hops[np.maximum(nxt, 0), e[:, None]]
        closer = ahead == self.hops[n, e][:, None] - 1
        # Like the data, never move where DEST is out of reach (a dead end): the walk
        # would be stuck with no valid continuation at all.
        legal = (nxt != NO_EDGE) & (ahead != UNREACHABLE)
        dirs = np.where(legal & closer, self.BEST, np.where(legal, self.LEGAL, self.IMPOSSIBLE))
        view[rows[:, None], self.tok.dir_token[None]] = dirs
        view[rows[n == e], self.tok.eos] = self.BEST


# --- pipeline stage -----------------------------------------------------------------------
def evaluate_oracle(inputs: dict, outputs: dict, params: dict) -> dict:
    """The true world model's eval.json and samples, scored like any run."""
    from pathlib import Path

    from ...io import write_json
    from . import data
    from .evaluate import evaluate_manhattan

    data_dir = Path(inputs["meta"]).parent
    graph = data.load_graph(data_dir)
    tok = data.load_tokenizer(data_dir, graph)
    oracle = OracleModel(graph, tok, tok.vocab_size)
    out_json = Path(outputs["eval"])
    metrics = evaluate_manhattan(oracle, data_dir, params["eval"], params["seed"], "cpu", out_dir=out_json.parent)
    record = {"run": {"run_id": "oracle", "benchmark": "manhattan", "method": "true world model",
                      "horizon": None, "seed": params["seed"]}, "metrics": metrics}
    write_json(out_json, record)
    return record
