"""Path-Star evaluation with scripted "models" whose scores can be worked out by hand."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nextlat.benchmarks.pathstar import data as ps
from nextlat.data.dataset import TokenDataset
from nextlat.benchmarks.pathstar.evaluate import evaluate_pathstar
from nextlat.models.transformer import ModelConfig
from nextlat.objectives import build_objective
from nextlat.objectives.base import Objective

N_NODES = 30
GREEDY = {"name": "greedy", "temperature": 0.0}
SAMPLE = {"name": "sample", "temperature": 1.0, "top_k": None}


class GraphReader(Objective):
    """Reads the edge list from the prompt; ``choose(children, row)`` picks the branch.

    At ``=`` it predicts the source, at a node its child (via ``choose`` at the source),
    at a leaf EOS. Logits are 0 on the chosen token(s), -inf elsewhere.
    """

    def __init__(self, n_nodes: int = N_NODES):
        super().__init__(ModelConfig(vocab_size=ps.vocab_size(n_nodes)), {"name": "reader"})
        self.tok = ps.PathStarTokenizer(n_nodes)

    def choose(self, children: list[int], row: int) -> list[int]:
        raise NotImplementedError

    def logits(self, tokens, layout=None):
        B, T = tokens.shape
        out = torch.full((B, T, self.tok.vocab_size), float("-inf"))
        for b, row in enumerate(tokens.tolist()):
            s = row.index(self.tok.slash)
            g = self.tok.decode(row[: s + 4])
            children: dict[int, list[int]] = {}
            for u, v in g.edges:
                children.setdefault(u, []).append(v)
            for t in range(s + 3, T):  # from '=' onwards
                if row[t] == self.tok.eq:
                    nxt = [g.source]
                elif row[t] == g.source:
                    nxt = self.choose(sorted(children[g.source]), b)
                else:
                    nxt = children.get(row[t], [self.tok.eos])
                out[b, t, nxt] = 0.0
            out[b, :s + 3, 0] = 0.0  # prompt positions: anything finite
        return out


class Oracle(GraphReader):
    """Knows the goal (it is in the prompt) and walks back from it: always right."""

    def logits(self, tokens, layout=None):
        self._goal_arm = {}
        for b, row in enumerate(tokens.tolist()):
            g = self.tok.decode(row[: row.index(self.tok.slash) + 4])
            parent = {v: u for u, v in g.edges}
            node = g.goal
            while parent[node] != g.source:
                node = parent[node]
            self._goal_arm[b] = node
        return super().logits(tokens, layout)

    def choose(self, children, row):
        return [self._goal_arm[row]]


class UniformBranch(GraphReader):
    """Clever Hans: follows edges perfectly but cannot plan, so every child of the source is
    equally likely. Greedy decoding takes the smallest child (argmax breaks ties by index)."""

    def choose(self, children, row):
        return children


def make_dataset(degree, length, n, seed=0, n_nodes=N_NODES) -> tuple[TokenDataset, np.ndarray]:
    g = ps.sample_graphs(n, degree, length, n_nodes, np.random.default_rng(seed))
    rows = ps.PathStarTokenizer(n_nodes).encode_rows(g.edges, g.source, g.goal, g.path)
    ds = TokenDataset.from_rows(rows, [ps.prompt_len(degree, length)] * n)
    return ds, g


def first_child_is_goal_arm(g) -> np.ndarray:
    """Plain-Python check: is the smallest child of the source on the goal arm?"""
    out = []
    for edges, s, p in zip(g.edges.tolist(), g.source.tolist(), g.path.tolist()):
        out.append(min(v for u, v in edges if u == s) == p[1])
    return np.array(out)


def test_oracle_solves_everything():
    ds, _ = make_dataset(3, 5, 40)
    res = evaluate_pathstar(Oracle(), ds, [GREEDY, SAMPLE], batch_size=16)
    assert res["solve_rate/greedy"] == res["solve_rate/sample"] == 1.0
    assert res["position_acc/greedy"] == [1.0] * 5
    assert res["position_acc/teacher_forced"] == [1.0] * 5
    assert res["chance_solve_rate"] == pytest.approx(1 / 3)
    assert res["n_graphs"] == 40
    json.dumps(res)  # JSON-serialisable


def test_clever_hans_is_at_chance():
    d, l, n = 2, 6, 400
    ds, g = make_dataset(d, l, n, seed=1)
    lucky = first_child_is_goal_arm(g).mean()
    res = evaluate_pathstar(UniformBranch(), ds, [GREEDY, SAMPLE], batch_size=128, seed=3)
    # greedy: right exactly when the smallest child starts the goal arm
    assert res["solve_rate/greedy"] == pytest.approx(lucky)
    # after the branch, following edges is forced: every later position is right iff the branch was
    assert res["position_acc/greedy"] == pytest.approx([1.0] + [lucky] * (l - 1))
    assert res["position_acc/teacher_forced"] == pytest.approx([1.0, lucky] + [1.0] * (l - 2))
    # sampling: a fair coin at the branch
    assert abs(res["solve_rate/sample"] - 1 / d) < 0.1
    assert res["solve_rate/sample"] < 0.75
    assert res["position_acc/sample"][0] == 1.0
    assert res["chance_solve_rate"] == 0.5


def test_sampling_is_seeded():
    ds, _ = make_dataset(3, 3, 150, seed=2)
    model = UniformBranch()
    a = evaluate_pathstar(model, ds, [SAMPLE], seed=0)
    b = evaluate_pathstar(model, ds, [SAMPLE], seed=0)
    c = evaluate_pathstar(model, ds, [SAMPLE], seed=1)
    assert a == b
    assert a["solve_rate/sample"] != c["solve_rate/sample"]


class Scripted(Objective):
    """Emits a fixed answer per prompt (given by the test), ignoring the graph."""

    def __init__(self, rows: list[list[int]], answers: list[list[int]], p_len: int):
        super().__init__(ModelConfig(vocab_size=ps.vocab_size(N_NODES)), {"name": "scripted"})
        self.answer = {tuple(r[:p_len]): a for r, a in zip(rows, answers)}
        self.p_len = p_len

    def logits(self, tokens, layout=None):
        B, T = tokens.shape
        out = torch.zeros(B, T, ps.vocab_size(N_NODES))
        for b in range(B):
            answer = self.answer[tuple(tokens[b, : self.p_len].tolist())]
            for t in range(self.p_len - 1, min(T, self.p_len - 1 + len(answer))):
                out[b, t, answer[t - self.p_len + 1]] = 10.0
        return out


def test_hand_checked_position_accuracy():
    tok = ps.PathStarTokenizer(N_NODES)
    # G(2,3): source 0; arms 0->1->2 (goal arm) and 0->3->4
    edges = [(3, 4), (0, 1), (1, 2), (0, 3)]
    row_a, p_len = tok.encode(edges, 0, 2, [0, 1, 2])
    # source 10; arms 10->11->12 and 10->13->14 (goal arm)
    row_b, _ = tok.encode([(10, 11), (13, 14), (11, 12), (10, 13)], 10, 14, [10, 13, 14])
    row_c, _ = tok.encode([(20, 21), (21, 22), (20, 23), (23, 24)], 20, 22, [20, 21, 22])
    ds = TokenDataset.from_rows([row_a, row_b, row_c], [p_len] * 3)
    model = Scripted([row_a, row_b, row_c],
                     [[0, 1, 2],      # right
                      [10, 11, 12],   # wrong branch: positions 1 and 2 wrong
                      [20, 21, 5]],   # last node wrong
                     p_len)
    res = evaluate_pathstar(model, ds, [GREEDY], batch_size=2)
    assert res["solve_rate/greedy"] == pytest.approx(1 / 3)
    assert res["position_acc/greedy"] == pytest.approx([1.0, 2 / 3, 1 / 3])
    assert res["position_acc/teacher_forced"] == pytest.approx([1.0, 2 / 3, 1 / 3])
    assert res["chance_solve_rate"] == 0.5 and res["n_graphs"] == 3
    # max_graphs keeps the first rows only
    res1 = evaluate_pathstar(model, ds, [GREEDY], max_graphs=1)
    assert res1["solve_rate/greedy"] == 1.0 and res1["n_graphs"] == 1


def test_prompt_stops_at_equals():
    """The model must never see the gold path: record what generation feeds it."""
    seen = []

    class Spy(Oracle):
        def logits(self, tokens, layout=None):
            seen.append(tokens.size(1))
            return super().logits(tokens, layout)

    ds, _ = make_dataset(2, 4, 4)
    p_len = ps.prompt_len(2, 4)
    evaluate_pathstar(Spy(), ds, [GREEDY])
    # generation steps see p_len .. p_len+l-1 tokens; teacher forcing sees p_len+l-1
    assert sorted(set(seen)) == list(range(p_len, p_len + 4))


def test_from_directory_with_real_model(tmp_path):
    meta = ps.write_dataset(tmp_path, degree=2, length=4, n_nodes=N_NODES, n_train=20, n_test=10, seed=0)
    torch.manual_seed(0)
    model = build_objective({"vocab_size": meta["vocab_size"], "block_size": meta["seq_len"],
                             "eos_id": meta["eos_id"], "n_layer": 1, "n_embd": 32}, {"name": "gpt"})
    model.train()
    res = evaluate_pathstar(model, tmp_path, [GREEDY, SAMPLE], batch_size=4)
    assert model.training  # mode restored
    assert res["n_graphs"] == 10 and res["chance_solve_rate"] == 0.5
    for key in ("position_acc/greedy", "position_acc/sample", "position_acc/teacher_forced"):
        assert len(res[key]) == 4 and all(0.0 <= x <= 1.0 for x in res[key])
    json.dumps(res)


def test_bad_decodings_are_rejected():
    ds, _ = make_dataset(2, 3, 2)
    for bad in ([], [{"temperature": 0.0}], [GREEDY, GREEDY], [{"name": "teacher_forced"}],
                [{"name": "x", "temp": 1.0}]):
        with pytest.raises(ValueError):
            evaluate_pathstar(Oracle(), ds, bad)
