"""Tagged rows (input/target pairs): every objective trains on them through the same Batch.

Position t reads x_0..x_t and predicts its label y_t. The references below are written from
that definition with plain torch ops (log-softmax, gather, explicit slices), reusing model
components only; a wrong alignment (labels shifted by one, inputs dropped at the end, NextLat
rolling over labels instead of inputs) moves them.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nextlat.config import ConfigError
from nextlat.data.batch import IGNORE, Batch
from nextlat.objectives import build_objective

from _tokens import EOS, V, model_cfg


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    """Tiny models: one intra-op thread (conftest.one_thread_module)."""


def tagged(B=3, T=10, seed=5, mask_first=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, EOS, (B, T), generator=g)
    y = torch.randint(0, EOS, (B, T), generator=g)
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[:, :mask_first] = False
    return Batch(x, mask, labels=y)


def nll(logits, targets):
    """Mean -log p(target) over supervised targets, from log_softmax and gather."""
    logp = torch.log_softmax(logits.double(), -1)
    ok = targets != IGNORE
    return -(logp.gather(-1, targets.clamp(min=0)[..., None])[..., 0] * ok).sum() / ok.sum()


def test_batch_views_of_tagged_and_next_token_rows():
    b = tagged(mask_first=2)
    assert torch.equal(b.inputs, b.tokens)  # every input is read, none is a target
    assert torch.equal(b.target_tokens, b.labels)
    assert (b.targets[:, :2] == IGNORE).all() and torch.equal(b.targets[:, 2:], b.labels[:, 2:])
    x = b.tokens
    lm = Batch(x, b.loss_mask)
    assert torch.equal(lm.inputs, x[:, :-1]) and torch.equal(lm.target_tokens, x[:, 1:])
    assert (lm.targets[:, :1] == IGNORE).all()  # loss_mask[:, 1] is False -> target of position 0
    sub = b.rows([0, 2])
    assert torch.equal(sub.labels, b.labels[[0, 2]]) and sub.tagged


def test_gpt_loss_on_tagged_rows_is_ce_against_aligned_labels():
    obj = build_objective(model_cfg(), {"name": "gpt"}).double()
    b = tagged(mask_first=3)
    got = obj.loss(b).loss
    logits = obj.logits(b.tokens)  # all T inputs
    torch.testing.assert_close(got, nll(logits, b.labels.masked_fill(~b.loss_mask, IGNORE)))
    shifted = nll(logits[:, :-1], b.labels[:, 1:].masked_fill(~b.loss_mask[:, 1:], IGNORE))
    assert abs(float((got - shifted).detach())) > 1e-3  # the next-token alignment would be a different loss


def test_nextlat_rollout_reads_inputs_and_head_predicts_labels():
    obj = build_objective(model_cfg(), {"name": "nextlat", "horizon": 2, "lambda_kl": 0.0, "token_term": "ce",
                                        "lambda_next_h": 1.0}).double()
    b = tagged(T=8)
    out = obj.forward_terms(b)
    emb = obj.trunk.embed(b.tokens)
    h = obj.trunk(b.tokens)
    cur = h
    for i, step in enumerate(out["steps"], start=1):
        cur = obj.dynamics(cur[:, :-1], emb[:, i:])  # p_psi(h-hat_{t+i-1}, E[x_{t+i}]): *inputs*
        want_h = F.smooth_l1_loss(cur, h[:, i:].detach(), reduction="none").sum(-1)
        torch.testing.assert_close(step["next_h"], want_h)
        # the token-level term scores head(h-hat_{t+i}) against the label of position t+i
        want_ce = -torch.log_softmax(obj.head(cur), -1).gather(-1, b.labels[:, i:, None])[..., 0]
        torch.testing.assert_close(step["latent_ce"], want_ce)
    # Labels never enter the rollout: changing them moves no next-h term.
    other = Batch(b.tokens, b.loss_mask, labels=(b.labels + 1) % EOS)
    for s, t in zip(out["steps"], obj.forward_terms(other)["steps"]):
        torch.testing.assert_close(s["next_h"], t["next_h"])


def test_mtp_head_i_predicts_label_i_positions_ahead():
    obj = build_objective(model_cfg(), {"name": "mtp", "horizon": 2, "lambda_mtp": 1.0}).double()
    b = tagged(T=9)
    heads = obj.forward_terms(b)["heads"]
    for i, head in enumerate(heads):
        tg = head["targets"]
        valid = tg != IGNORE
        assert torch.equal(tg[valid], b.labels[:, i:][:, : tg.size(1)][valid])
        assert valid[:, : b.labels.size(1) - i].all()  # every in-row label is trained


def test_jtp_slots_read_the_next_inputs_and_predict_their_labels():
    """Slot k at t reads x_{t+k} and predicts y_{t+k}: learnable from what it has read (a
    slot fed the labels y_{t+k-1} could not know x_{t+k})."""
    obj = build_objective(model_cfg(), {"name": "jtp", "horizon": 2, "lambda_mtp": 1.0}).double()
    b = tagged(T=7)
    toks, tgts = obj.slot_data(b)
    T = b.tokens.size(1)
    for t in range(T):
        assert toks[0, t, 0] == b.tokens[0, t]
        for k in range(1, 3):
            if t + k < T:
                assert toks[0, t, k] == b.tokens[0, t + k]
                assert tgts[0, t, k] == b.labels[0, t + k]
            else:
                assert tgts[0, t, k] == IGNORE
        assert tgts[0, t, 0] == b.labels[0, t]
    assert torch.isfinite(obj.loss(b).loss)


def test_bst_refuses_tagged_rows():
    obj = build_objective(model_cfg(), {"name": "bst"})
    with pytest.raises(ValueError, match="tagged"):
        obj.loss(tagged())


def _a5_config(methods, tasks=("len3", "len6")):
    from pathlib import Path

    from nextlat import config

    root = Path(__file__).resolve().parents[1]
    return config.load(root / "config.yaml", "smoke",
                       overrides={"benchmarks": {"a5": {"methods": methods, "tasks": list(tasks)}}})


def test_plan_refuses_a_method_that_cannot_train_on_tagged_rows():
    from nextlat.runs import expand_runs

    with pytest.raises(ConfigError, match="bst.*tagged"):
        expand_runs(_a5_config([{"name": "bst"}]), "a5")


def test_method_tasks_restrict_an_entry_and_unknown_tasks_are_refused():
    from nextlat.runs import expand_runs

    runs = expand_runs(_a5_config([{"name": "gpt"}, {"name": "nextlat", "horizon": 1, "tasks": ["len3"]}]), "a5")
    assert sorted(runs) == ["len3_gpt_s0", "len3_nextlat-d1_s0", "len6_gpt_s0"]
    assert "tasks" not in runs["len3_nextlat-d1_s0"].config["method"]  # not a method setting
    with pytest.raises(ConfigError, match=r"methods\[0\]\.tasks.*len9"):
        expand_runs(_a5_config([{"name": "gpt", "tasks": ["len9"]}]), "a5")
