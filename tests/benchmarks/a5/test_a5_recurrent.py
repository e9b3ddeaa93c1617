"""NextLat's recurrent mode (Figure 10) and the A5 evaluation built on it.

* The RNN mode reads the transformer at the first token only: perturbing the trunk's states
  at later positions changes the transformer's logits but not the RNN's.
* A hand-built dynamics model that multiplies states exactly (one-hot states, the Cayley
  table) reaches 100% at every length through the very evaluation code the pipeline runs;
  multiplying in the wrong order (x * state) does not: the group is non-abelian.
* The parameter counts at the paper's Table 5 size are the paper's 2.62M and 6.43M.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nextlat.benchmarks.a5 import data as a5data
from nextlat.benchmarks.a5 import evaluate as a5eval
from nextlat.benchmarks.a5 import group
from nextlat.objectives import build_objective

V, EOS = a5data.VOCAB_SIZE, a5data.EOS_ID


def nextlat(D=64, **model):
    cfg = dict(vocab_size=V, eos_id=EOS, block_size=40, n_layer=2, n_head=2, n_embd=D, **model)
    return build_objective(cfg, {"name": "nextlat", "horizon": 1, "lambda_kl": 0.0, "dyn_hidden": 32}).eval()


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    """Tiny models: one intra-op thread (conftest.one_thread_module)."""


def test_rnn_mode_reads_the_transformer_at_the_first_token_only(monkeypatch):
    torch.manual_seed(0)
    obj = nextlat()
    x = torch.randint(0, group.ORDER, (3, 20))
    with torch.no_grad():
        rnn = obj.recurrent_logits(x)
        tf = obj.logits(x)
    trunk_forward = type(obj.trunk).forward
    calls = []

    def perturbed(self, tokens, *args, **kw):
        h = trunk_forward(self, tokens, *args, **kw)
        calls.append(tokens.shape)
        noise = torch.zeros_like(h)
        noise[:, 1:] = 5 * torch.randn_like(h[:, 1:])  # every state after the first
        return h + noise

    monkeypatch.setattr(type(obj.trunk), "forward", perturbed)
    with torch.no_grad():
        torch.testing.assert_close(obj.recurrent_logits(x), rnn)
        assert not torch.allclose(obj.logits(x), tf)  # the perturbation is real
    assert calls[0] == (3, 1)  # the RNN hands the transformer x_1 alone


def test_rnn_state_depends_on_the_past_only_and_on_every_input():
    torch.manual_seed(1)
    obj = nextlat()
    x = torch.randint(0, group.ORDER, (2, 15))
    y = x.clone()
    y[:, 7] = (y[:, 7] + 1) % group.ORDER
    with torch.no_grad():
        a, b = obj.recurrent_logits(x), obj.recurrent_logits(y)
    torch.testing.assert_close(a[:, :7], b[:, :7])  # causal
    assert (a[:, 7:] - b[:, 7:]).abs().amax(-1).min() > 0  # and every later state moves


class TableDynamics(nn.Module):
    """p(h, E[x']) = one_hot(state * x'): the multiplication table, exactly (or reversed)."""

    def __init__(self, reverse: bool = False):
        super().__init__()
        self.reverse = reverse
        self.table = torch.from_numpy(group.table().copy())

    def forward(self, h, next_emb):
        state, x = h.argmax(-1), next_emb.argmax(-1)
        new = self.table[x, state] if self.reverse else self.table[state, x]
        return 10.0 * nn.functional.one_hot(new, h.size(-1)).to(h.dtype)


def hand_built(reverse: bool = False):
    """NextLat whose embedding is one-hot, whose transformer maps x_1 to its one-hot state
    (the state after one element is that element) and whose head reads one-hot states."""
    obj = nextlat()
    D = obj.model_cfg.n_embd
    with torch.no_grad():
        obj.trunk.tok_emb.weight.copy_(torch.eye(V, D))
        obj.head.weight.zero_()
        obj.head.weight[: group.ORDER, : group.ORDER] = torch.eye(group.ORDER)
    obj.trunk.forward = lambda tokens, *a, **k: obj.trunk.embed(tokens)
    obj.dynamics = TableDynamics(reverse)
    return obj


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("a5")
    cfg = dict(train_samples=100, train_fraction=0.8, n_test=200, test_length=12, eval_length=30, seed=3)
    a5data.make_data("len4", cfg, out)
    return out


def test_exact_dynamics_tracks_the_state_at_every_length(data_dir, tmp_path):
    res = a5eval.evaluate(hand_built(), data_dir, {"batch_size": 64}, 0, "cpu", tmp_path)
    assert len(res["rnn/position"]) == 30
    assert res["rnn/position"] == [1.0] * 30 and res["rnn/prefix"] == [1.0] * 30
    assert res["rnn/position@eval"] == 1.0 and res["eval_length"] == 30


def test_reversed_products_fail_beyond_the_first_element(data_dir, tmp_path):
    res = a5eval.evaluate(hand_built(reverse=True), data_dir, {"batch_size": 64}, 0, "cpu", tmp_path)
    rnn = {kind: res[f"rnn/{kind}"] for kind in ("position", "prefix")}
    assert rnn["position"][0] == 1.0  # x_1 alone is right either way
    assert max(rnn["position"][5:]) < 0.2  # x_t * ... * x_1 is not x_1 * ... * x_t
    # whole-prefix accuracy never exceeds per-position accuracy and never increases
    assert all(p <= q + 1e-12 for p, q in zip(rnn["prefix"], rnn["position"]))
    assert all(a >= b for a, b in zip(rnn["prefix"], rnn["prefix"][1:]))


def test_curves_from_a_known_correct_matrix():
    correct = np.array([[1, 1, 0, 1], [1, 0, 1, 1], [1, 1, 1, 1]], dtype=bool)
    c = a5eval.curves(correct)
    np.testing.assert_allclose(c["position"], [1, 2 / 3, 2 / 3, 1])
    np.testing.assert_allclose(c["prefix"], [1, 2 / 3, 1 / 3, 1 / 3])


def test_paper_size_parameter_counts_match_the_paper():
    cfg = dict(vocab_size=V, eos_id=EOS, block_size=100, n_layer=2, n_head=8, n_embd=512,
               pos_embedding="rope", mlp="swiglu", norm="rms")
    obj = build_objective(cfg, {"name": "nextlat", "horizon": 1, "lambda_kl": 0.0, "dyn_hidden": 1024})
    counts = a5eval.body_params(obj, ["transformer", "rnn"])
    assert round(counts["rnn"] / 1e6, 2) == 2.62
    assert round(counts["transformer"] / 1e6, 2) == 6.43
