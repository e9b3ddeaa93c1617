"""Manhattan world-model metrics on a hand-built 4x4 city with one-way streets.

Grid node (r, c) has id 10 + 4r + c and index 4r + c (north = r + 1, east = c + 1). The
outer ring is one-way (row 0 east, column 3 north, row 3 west, column 0 south); the inner
streets are two-way; (1,1) has a one-way NE diagonal to (2,2). Node 98 only drives into
(0,0) (nobody drives into it) and node 99 is a dead end reached from (3,3) heading NE.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from nextlat.benchmarks.manhattan import data as mh
from nextlat.benchmarks.manhattan.data import ManhattanTokenizer
from nextlat.benchmarks.manhattan.streets import StreetGraph
from nextlat.benchmarks.manhattan.oracle import OracleModel
from nextlat.evaluation.rank import effective_rank, latent_rank
from nextlat.benchmarks.manhattan import evaluate as ev
from nextlat.objectives import build_objective


def grid_edges(drop=(), extra=()):
    edges = []
    for r in range(4):
        for c in range(4):
            u = 10 + 4 * r + c
            if c < 3 and r != 3:
                edges.append((u, "E", u + 1))  # row 3 is one-way west
            if c < 3 and r not in (0,):
                edges.append((u + 1, "W", u))  # row 0 is one-way east
            if r < 3 and c != 0:
                edges.append((u, "N", u + 4))  # column 0 is one-way south
            if r < 3 and c != 3:
                edges.append((u + 4, "S", u))  # column 3 is one-way north
    edges += [(15, "NE", 20), (98, "E", 10), (25, "NE", 99)]
    return [e for e in edges if e not in drop] + list(extra)


def make_graph(drop=(), extra=()) -> StreetGraph:
    return StreetGraph.from_edges(list(range(10, 26)) + [98, 99], grid_edges(drop, extra))


G = make_graph()
TOK = ManhattanTokenizer(G, vocab_size=200)  # padded, as in the pipeline
D = {d: int(t) for d, t in zip(("N", "NE", "E", "SE", "S", "SW", "W", "NW"), TOK.dir_token)}
END = TOK.eos


def node(r, c):
    return 4 * r + c


def eval_pairs(n=40, seed=0):
    """Distinct grid pairs (every grid node reaches every other)."""
    rng = np.random.default_rng(seed)
    pairs = [(s, e) for s in range(16) for e in range(16) if s != e]
    pick = rng.permutation(len(pairs))[:n]
    src, dst = np.array([pairs[i] for i in pick]).T
    return src, dst


def held_out_documents(n=30, seed=1):
    src, dst = eval_pairs(n, seed)
    lengths, dirs = mh.random_walks(G, src, dst, 20, np.random.default_rng(seed))
    splits = np.split(dirs.astype(np.int64), np.cumsum(lengths)[:-1])
    return [TOK.encode(s, e, d) for s, e, d in zip(src, dst, splits)]


class Fixed(nn.Module):
    """Always the same logits: ``favour`` gets 1, every other token 0."""

    def __init__(self, favour: int):
        super().__init__()
        self.favour = favour

    def logits(self, tokens, layout=None):
        out = torch.zeros(*tokens.shape, TOK.vocab_size)
        out[..., self.favour] = 1.0
        return out


class Momentum(nn.Module):
    """Ignores the map: repeats the last move (N after a node), nearly surely.

    Its continuations depend on the prefix's last move, not on the state, so two prefixes
    into the same node disagree whenever their last moves differ.
    """

    def logits(self, tokens, layout=None):
        x = tokens.numpy()
        d = ev._lookup(TOK.token_dir, x)
        favour = np.where(d >= 0, x, D["N"])
        out = torch.full((*tokens.shape, TOK.vocab_size), -5.0)
        out.scatter_(-1, torch.from_numpy(favour)[..., None], 5.0)
        return out


# --- is_valid_traversal ------------------------------------------------------------------
@pytest.mark.parametrize("moves, valid", [
    (["E", "E", END], True),  # straight along row 0
    (["E", "E", END, "N", "N"], True),  # what follows the first end does not matter
    (["E", "E", "E", "N", "W", "S", END], True),  # overshoot, loop back
    (["N", "E", END], False),  # column 0 is one-way south: illegal first turn
    (["E", END], False),  # end too early
    (["E", "E"], False),  # no end
    (["E", "E", "E", END], False),  # overshoot then end
    (["E", "W", "E", END], False),  # row 0 is one-way east
    (["E", "node", END], False),  # a node token
    (["E", 0, "E", END], False),  # pad
])
def test_is_valid_traversal(moves, valid):
    tokens = [D[m] if m in D else (TOK.node_token[5] if m == "node" else m) for m in moves]
    assert ev.is_valid_traversal(G, TOK, node(0, 0), node(0, 2), tokens) is valid


def test_is_valid_traversal_without_moves():
    """A trip from a node to itself is just `end`; without `end` it is not a traversal."""
    assert ev.is_valid_traversal(G, TOK, node(1, 1), node(1, 1), [END])
    assert not ev.is_valid_traversal(G, TOK, node(1, 1), node(1, 1), [])
    assert not ev.is_valid_traversal(G, TOK, node(1, 1), node(1, 1), [0, 0])
    assert ev.valid_traversals(G, TOK, [0, 0], [2, 1], [[D["E"], D["E"], END], [D["E"], END]]).tolist() == [True, True]


# --- next-token test ---------------------------------------------------------------------
def test_next_token_hand_counts():
    """Doc A: (0,0)->(0,2) by E E, nodes 0,1,2*. Doc B: (1,1)->(1,2) by E E W, nodes 5,6*,7,6*
    (* = at DEST). Always-E: legal at 0,1,2 | 5,6,6 but not at (1,3) -> 6/7. Always-end:
    only at DEST -> 1 + 2 = 3/7. Always-W: illegal on row 0, legal at all of doc B -> 4/7."""
    docs = [TOK.encode(node(0, 0), node(0, 2), [2, 2]), TOK.encode(node(1, 1), node(1, 2), [2, 2, 6])]
    for favour, expect in ((D["E"], 6 / 7), (END, 3 / 7), (D["W"], 4 / 7)):
        got = ev.next_token_test(Fixed(favour), G, TOK, docs, batch_size=1)
        assert got["n_predictions"] == 7
        assert got["next_token_valid"] == pytest.approx(expect)


def test_next_token_rejects_illegal_documents():
    with pytest.raises(ValueError):
        ev.next_token_test(Fixed(END), G, TOK, [TOK.encode(node(0, 0), node(0, 2), [6, 2])])


# --- effective rank ----------------------------------------------------------------------
def test_effective_rank_known_spectra():
    assert effective_rank(np.eye(5)) == pytest.approx(5.0)
    assert effective_rank(np.outer(np.arange(1, 7), np.arange(1, 4))) == pytest.approx(1.0)
    # sigma = (3, 1): p = (3/4, 1/4), H = -(3/4 ln 3/4 + 1/4 ln 1/4)
    h = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    assert effective_rank(np.diag([3.0, 1.0])) == pytest.approx(np.exp(h))
    assert effective_rank(np.diag([2.0, 2.0, 1e-14])) == pytest.approx(2.0, abs=1e-9)
    assert effective_rank(np.diag([2.0, 2.0, 1e-14]), tol=0) > 2.0  # kept when tol allows
    assert effective_rank(np.zeros((3, 3))) == 0.0


def test_latent_rank_stacks_all_positions():
    class Onehot(nn.Module):  # state = one-hot of the token: rank = number of distinct tokens
        def hidden_states(self, tokens, layout=None, which="probe"):
            assert which == "rank" and layout.is_packed
            return torch.nn.functional.one_hot(tokens, 8).float()

    rows = torch.tensor([[1, 2, 3, 1], [1, 4, 5, 2]])  # token counts 1:3, 2:2, 3,4,5:1
    p = np.array([3, 2, 1, 1, 1]) ** 0.5  # singular values of a one-hot stack: sqrt(counts)
    p = p / p.sum()
    assert latent_rank(Onehot(), rows, END, batch_size=1) == pytest.approx(np.exp(-(p * np.log(p)).sum()))


# --- reverse walks -----------------------------------------------------------------------
def test_reverse_walk_prefixes_are_distinct_walks_into_s():
    rng = np.random.default_rng(0)
    preds = ev.predecessors(G)
    for s, e, k in [(node(1, 1), node(3, 0), 1), (node(2, 2), node(0, 0), 5), (node(0, 3), node(1, 0), 12)]:
        pair = ev.reverse_walk_prefixes(G, TOK, s, e, k, rng, preds)
        assert pair is not None
        p1, p2 = pair
        assert p1 != p2
        for p in pair:
            assert len(p) == k + 3 and p[0] == END and p[2] == TOK.node_token[e]
            origin, dirs = TOK.token_node[p[1]], TOK.token_dir[p[3:]]
            assert (dirs >= 0).all()
            assert G.follow(origin, dirs)[-1] == s
    # (0,0) has two one-move histories (from (1,0) heading S, from 98 heading E): always both
    pairs = [ev.reverse_walk_prefixes(G, TOK, node(0, 0), node(2, 2), 1, rng, preds) for _ in range(30)]
    assert all(sorted(p[1][3:] + p[0][3:]) == sorted([D["S"], D["E"]]) for p in pairs)
    # nobody drives into node 98: no walk can end there
    assert ev.reverse_walk_prefixes(G, TOK, 16, node(0, 0), 2, rng, preds) is None


# --- the oracle and a map-blind model ------------------------------------------------------
def test_oracle_scores_perfectly():
    oracle = OracleModel(G, TOK)
    src, dst = eval_pairs()
    assert ev.next_token_test(oracle, G, TOK, held_out_documents(), 8)["next_token_valid"] == 1.0
    rate, gens = ev.valid_trajectories(oracle, G, TOK, src, dst, 30, batch_size=16)
    assert rate == 1.0 and len(gens) == len(src) and all(g[-1] == END for g in gens)
    # greedy oracle walks are shortest paths
    assert [len(g) - 1 for g in gens] == G.hop_distances()[src, dst].tolist()
    comp = ev.compression_test(oracle, G, TOK, src, dst, n_trials=20, n_suffixes=10, max_len=30)
    assert comp["compression"] == 1.0 and comp["n_trials"] == 20
    assert ev.detour_robustness(oracle, G, TOK, src, dst, p=0.75, n_trials=40, max_len=30)["detour_robustness"] == 1.0
    with pytest.raises(NotImplementedError):
        oracle.hidden_states(torch.zeros(1, 3, dtype=torch.long))


def test_map_blind_model_scores_lower():
    model = Momentum()
    src, dst = eval_pairs()
    assert ev.next_token_test(model, G, TOK, held_out_documents(), 8)["next_token_valid"] < 0.9
    assert ev.valid_trajectories(model, G, TOK, src, dst, 30)[0] < 0.5
    comp = ev.compression_test(model, G, TOK, src, dst, n_trials=20, n_suffixes=10, max_len=30)
    assert comp["compression"] < 0.9 and comp["compression_se"] > 0
    assert ev.detour_robustness(model, G, TOK, src, dst, n_trials=40, max_len=30)["detour_robustness"] < 0.5


def test_oracle_handles_packed_rows():
    """The second document of a packed row gets the same logits as on its own; an illegal
    move makes the rest of the document uniform; `end` restarts."""
    oracle = OracleModel(G, TOK)
    doc1 = [END, *TOK.encode(node(0, 0), node(0, 2), [2, 2])]
    doc2 = [END, TOK.node_token[5], TOK.node_token[10], D["N"], D["E"]]
    packed = oracle.logits(torch.tensor([doc1 + doc2]))[0, len(doc1):]
    alone = oracle.logits(torch.tensor([doc2]))[0]
    assert torch.equal(packed, alone)
    bad = oracle.logits(torch.tensor([[END, TOK.node_token[0], TOK.node_token[2], D["W"], D["E"]]]))[0]
    assert (bad[3:] == 0).all()  # after the illegal W from (0,0): uniform
    probs = torch.softmax(alone[2], -1)  # at (1,1) heading to (2,2): NE is shortest, N/E/S/W legal
    assert probs.argmax() == D["NE"] and (probs[[D[d] for d in "NESW"]] > 0.01).all()
    assert probs[[D[d] for d in ("SE", "SW", "NW")]].max() < 1e-6 and probs[END] < 1e-6
    # at (3,3), NE leads into the dead end 99: ruled out unless 99 is the destination
    for dest, ne in ((node(0, 0), False), (17, True)):
        p = torch.softmax(oracle.logits(torch.tensor([[END, TOK.node_token[15], TOK.node_token[dest]]]))[0, -1], -1)
        assert bool(p[D["NE"]] > 0.5) is ne and bool(p[D["NE"]] < 1e-6) is not ne


# --- detours -----------------------------------------------------------------------------
def test_detour_p0_is_greedy_validity():
    """A model with a wrong map (the diagonal missing, rows 0 and 3 two-way) fails some
    trips; without detours the detour test is the valid-trajectories test."""
    wrong = OracleModel(make_graph(drop=[(15, "NE", 20)], extra=[(11, "W", 10), (12, "W", 11),
                                                                    (22, "E", 23), (23, "E", 24)]), TOK)
    src, dst = eval_pairs()
    rate, _ = ev.valid_trajectories(wrong, G, TOK, src, dst, 28)
    assert 0 < rate < 1
    got = ev.detour_robustness(wrong, G, TOK, src, dst, p=0.0, n_trials=len(src), max_len=30)
    assert got["detour_robustness"] == rate


def test_detour_p1_oracle_stays_valid_under_a_tight_budget():
    """Allowed detours keep DEST reachable in time, so the oracle always gets there, even when
    the budget leaves no slack at all (max_len = longest shortest path + 4)."""
    oracle = OracleModel(G, TOK)
    src, dst = eval_pairs()
    hops = G.hop_distances()[src, dst]
    base = ev.detour_robustness(oracle, G, TOK, src, dst, p=0.0, n_trials=len(src), max_len=int(hops.max()) + 4)
    for max_len in (int(hops.max()) + 4, 30):
        got = ev.detour_robustness(oracle, G, TOK, src, dst, p=1.0, n_trials=len(src), max_len=max_len, seed=3)
        assert got["detour_robustness"] == 1.0
        assert got["mean_tokens"] > base["mean_tokens"]  # the detours did happen
    # detours stop at the first arrival at DEST (no detour is taken from DEST)
    gens = ev.detour_generations(oracle, G, TOK, src, dst, p=1.0, max_len=30, seed=3)
    greedy = ev.detour_generations(oracle, G, TOK, src, dst, p=0.0, max_len=30)
    # with p = 1 the first move is never the argmax where another move keeps DEST reachable
    nxt = G.succ[src]
    choices = ((nxt >= 0) & (G.hop_distances()[np.maximum(nxt, 0), dst[:, None]] <= 26)).sum(1)
    assert (choices >= 2).sum() > 20
    assert all(g[0] != h[0] for g, h, c in zip(gens, greedy, choices) if c >= 2)
    for s, e, g in zip(src, dst, gens):
        visits = ev.traversal_state(G, TOK, s, g[:-1])[0]
        assert g[-1] == END and (visits == e).sum() == 1 and visits[-1] == e
    second = ev.detour_robustness(oracle, G, TOK, src, dst, p=1.0, n_trials=len(src), max_len=30,
                                  kind="second_most_likely")
    assert second["mean_tokens"] != base["mean_tokens"]
    with pytest.raises(ValueError):
        ev.detour_robustness(oracle, G, TOK, src, dst, kind="least_likely")


# --- decoding with right padding, and the pipeline glue --------------------------------------
def tiny_gpt(seed=0):
    torch.manual_seed(seed)
    cfg = dict(vocab_size=TOK.vocab_size, n_layer=1, n_head=2, n_embd=16, block_size=128, eos_id=END)
    return build_objective(cfg, {"name": "gpt"}).eval()


def test_right_padded_decoding_matches_one_row_at_a_time():
    model = tiny_gpt()
    prompts = [[END, 5, 7, D["N"], D["E"]], [END, 6, 9], [END, 8, 4, D["S"]]]
    together = ev._decode(model, prompts, [6, 9, 4], ev._greedy, END, "cpu")
    alone = [ev._decode(model, [p], b, ev._greedy, END, "cpu")[0] for p, b in zip(prompts, [6, 9, 4])]
    assert together == alone
    assert all(len(g) <= b for g, b in zip(together, [6, 9, 4]))


def write_tiny_dataset(path):
    data = {"n_trips": 400, "pickups": "uniform", "n_train": 20, "n_test": 60, "max_moves": 20,
            "max_eval_hops": 10, "pack_len": 32, "shard_size": 100}
    mh.write_dataset(path, make_graph(), data, TOK.vocab_size, workers=1)


EVAL_CFG = {"batch_size": 32, "next_token": {"n_sequences": 40}, "valid": {"n_pairs": 50, "max_new_tokens": 30},
            "compression": {"n_trials": 10, "n_suffixes": 5, "max_len": 30},
            "rank": {"n_rows": 8, "row_len": 16}, "detour": {"n_trials": 20, "max_len": 30}}


def test_evaluate_manhattan_end_to_end(tmp_path):
    write_tiny_dataset(tmp_path / "data")
    oracle = OracleModel(mh.load_graph(tmp_path / "data"), TOK)
    res = ev.evaluate_manhattan(oracle, tmp_path / "data", EVAL_CFG, seed=0, device="cpu", out_dir=tmp_path / "o")
    for key in ("next_token_valid", "valid_trajectories", "compression", "detour_robustness"):
        assert res[key] == 1.0, key
    assert res["effective_rank"] is None and res["n_rank_rows"] == 0
    assert res["n_next_token_sequences"] == 40 and res["n_valid_pairs"] == 50 and res["n_detour_trials"] == 20
    samples = pq.read_table(tmp_path / "o" / "samples.parquet")
    assert samples.column_names == ["src", "dst", "tokens"] and samples.num_rows == 50
    assert samples.schema.field("tokens").type.value_type == pa.int32()
    gpt = ev.evaluate_manhattan(tiny_gpt(), tmp_path / "data", EVAL_CFG, seed=0, device="cpu")
    assert gpt["n_rank_rows"] == 8 and 1.0 <= gpt["effective_rank"] <= 16
    assert gpt["valid_trajectories"] < 1.0
