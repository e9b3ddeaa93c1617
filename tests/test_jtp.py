"""JTP (Ahn et al., as in NextLat's model_mtp_jtp.py): algorithms.md section 2."""
import math

import pytest
import torch
import torch.nn.functional as F

from nextlat.models.layout import Layout
from nextlat.objectives import Batch, build_objective
from nextlat.objectives.base import IGNORE

from _tokens import EOS, full, model_cfg, packed_row, rand_tokens




def make(method="jtp", seed=0, horizon=3, lambda_mtp=1.0, **kw):
    torch.manual_seed(seed)
    meth = {"name": method}
    if method == "jtp":
        meth.update(horizon=horizon, lambda_mtp=lambda_mtp)
    obj = build_objective(model_cfg(**kw), meth).double()
    if method == "jtp":  # move the zero-initialised bias off zero so tests see it
        with torch.no_grad():
            obj.fetch.pos_bias.normal_(0, 0.5)
    return obj








# --- the Fetch head, by hand -------------------------------------------------------------------
def test_fetch_matches_a_hand_written_reference():
    obj = make(horizon=2)
    x = rand_tokens(1, 10)
    out = obj.forward_terms(full(x))
    h = obj.trunk(x[:, :-1])
    E, D = obj.trunk.tok_emb.weight, 32
    W, Wo, bias = obj.fetch.qkv.weight, obj.fetch.proj.weight, obj.fetch.pos_bias
    nh, hd = obj.fetch.n_head, D // obj.fetch.n_head
    assert nh == 2
    t = 3
    toks = [x[0, t], x[0, t + 1], x[0, t + 2]]  # slot 0 = x_t, slot k = x_{t+k}
    g = torch.stack([F.layer_norm(E[tok] + obj.combine.gamma * h[0, t], (D,),
                                  obj.combine.norm.weight, obj.combine.norm.bias) for tok in toks])
    q, k, v = (g @ W.t()).split(D, dim=-1)
    outs = []
    for s in range(3):
        heads = []
        for a in range(nh):
            sl = slice(a * hd, (a + 1) * hd)
            sc = torch.stack([q[s, sl] @ k[j, sl] / math.sqrt(hd) + bias[a, s, j] for j in range(s + 1)])
            w = sc.softmax(0)
            heads.append(sum(w[j] * v[j, sl] for j in range(s + 1)))
        outs.append(torch.cat(heads) @ Wo.t())
    pre = [outs[0]] + [o + h[0, t] for o in outs[1:]]  # residual only for slots >= 1
    for s in range(3):
        want = obj.head(F.rms_norm(pre[s], (D,), obj.out_norm.weight, obj.out_norm.eps))
        torch.testing.assert_close(out["logits"][0, t, s], want)
        assert out["targets"][0, t, s] == x[0, t + s + 1]  # slot s predicts x_{t+s+1}
    assert isinstance(obj.combine.norm, torch.nn.LayerNorm) and obj.combine.norm.bias is not None


def test_init_gamma_and_bias_and_loss_combination():
    torch.manual_seed(0)
    fresh = build_objective(model_cfg(), {"name": "jtp", "horizon": 3})
    assert fresh.combine.gamma.item() == pytest.approx(0.1)
    assert fresh.fetch.pos_bias.shape == (2, 4, 4) and (fresh.fetch.pos_bias == 0).all()
    assert build_objective(model_cfg(n_head=8), {"name": "jtp"}).fetch.n_head == 4
    x = rand_tokens()
    o = make(lambda_mtp=0.3).loss(full(x))
    m = o.metrics
    torch.testing.assert_close(o.loss.detach(), m["ce"] + 0.3 * (m["ce_1"] + m["ce_2"] + m["ce_3"]) / 3)
    assert set(m) == {"ce", "acc", "mtp", "ce_1", "ce_2", "ce_3"}


# --- causality ---------------------------------------------------------------------------------
@pytest.mark.parametrize("pos_embedding", ["rope", "learned"])
def test_slot_k_at_t_uses_only_tokens_up_to_t_plus_k(pos_embedding):
    obj = make(horizon=3, pos_embedding=pos_embedding)
    x = rand_tokens(1, 18)
    base = obj.forward_terms(full(x))
    t = 5
    for k in range(4):
        y = x.clone()
        y[:, t + k + 2:] = (y[:, t + k + 2:] + 3) % EOS  # strictly after the scored x_{t+k+1}
        other = obj.forward_terms(full(y))
        torch.testing.assert_close(base["ce"][:, t, k], other["ce"][:, t, k])
        torch.testing.assert_close(base["logits"][:, t, : k + 1], other["logits"][:, t, : k + 1])
        if k < 3:  # ... but slot k+1 reads x_{t+k+1} (teacher forcing), so it does move
            z = x.clone()
            z[:, t + k + 1] = (z[:, t + k + 1] + 1) % EOS
            moved = obj.forward_terms(full(z))["logits"][:, t]
            assert not torch.allclose(base["logits"][:, t, k + 1], moved[:, k + 1])
            torch.testing.assert_close(base["logits"][:, t, : k + 1], moved[:, : k + 1])


def test_logits_at_t_ignore_later_tokens_and_equal_training_slot0():
    obj = make()
    x = rand_tokens(2, 16)
    for t in (0, 6, 14):
        y = x.clone()
        y[:, t + 1:] = (y[:, t + 1:] + 7) % EOS
        torch.testing.assert_close(obj.logits(x)[:, : t + 1], obj.logits(y)[:, : t + 1])
        assert not torch.allclose(obj.logits(x)[:, t + 1:], obj.logits(y)[:, t + 1:])
    torch.testing.assert_close(obj.logits(x[:, :-1]), obj.forward_terms(full(x))["logits"][:, :, 0])


# --- masking -------------------------------------------------------------------------------------
def test_cumulative_eos_masking_hand_built():
    obj = make(horizon=3)
    x = torch.tensor([[EOS, 1, 2, EOS, 3, 4, 5, 6, EOS, 7]])
    tg = obj.forward_terms(full(x))["targets"][0]  # (T=9, 4); slot k scores x_{t+k+1}
    want = torch.tensor([
        [1, 2, EOS, IGNORE],          # t=0: teacher x_3 = EOS -> slot 3 and later masked
        [2, EOS, IGNORE, IGNORE],     # t=1: x_3 is the teacher of slot 2
        [EOS, IGNORE, IGNORE, IGNORE],  # t=2: the closing EOS is still predicted (slots 0)
        [3, 4, 5, 6],                 # t=3: x_t = EOS opens the document: nothing masked
        [4, 5, 6, EOS],
        [5, 6, EOS, IGNORE],
        [6, EOS, IGNORE, IGNORE],
        [EOS, IGNORE, IGNORE, IGNORE],
        [7, IGNORE, IGNORE, IGNORE],  # t=8: beyond the row
    ])
    assert torch.equal(tg, want)


def test_no_slot_target_from_another_document():
    obj = make(horizon=4)
    x = packed_row()
    doc = (x[0] == EOS).long().cumsum(0)
    out = obj.forward_terms(Batch(x, torch.ones_like(x, dtype=torch.bool), packed=True))
    T = x.size(1) - 1
    for t in range(T):
        for k in range(5):
            j = t + k + 1  # scored token
            if j > T:
                assert out["targets"][0, t, k] == IGNORE
                continue
            other = doc[j] - int(x[0, j] == EOS) != doc[t]  # EOS target: current document
            assert (out["targets"][0, t, k] == IGNORE) == bool(other), (t, k)
            if other:
                assert out["ce"][0, t, k] == 0


def test_packed_documents_do_not_see_each_other():
    obj = make()
    x = packed_row()
    y = x.clone()
    y[0, 1:9] = (y[0, 1:9] + 5) % EOS
    for which in ("fetch_input", "trunk"):
        hx = obj.hidden_states(x, Layout.packed(x, EOS), which=which)
        hy = obj.hidden_states(y, Layout.packed(y, EOS), which=which)
        torch.testing.assert_close(hx[0, 9:], hy[0, 9:])
    bx = obj.forward_terms(Batch(x, torch.ones_like(x, dtype=torch.bool), packed=True))["ce"]
    by = obj.forward_terms(Batch(y, torch.ones_like(y, dtype=torch.bool), packed=True))["ce"]
    torch.testing.assert_close(bx[0, 9:], by[0, 9:])
    assert not torch.allclose(bx[0, 1:8], by[0, 1:8])


def test_prompt_targets_carry_no_loss():
    obj = make(horizon=2)
    x = rand_tokens(2, 16)
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[:, :8] = False
    out = obj.forward_terms(Batch(x, mask))
    t = torch.arange(15)[:, None]
    k = torch.arange(3)[None]
    scored = t + k + 1
    valid = (scored >= 8) & (scored <= 15)
    assert torch.equal(out["targets"][0] != IGNORE, valid)
    assert (out["ce"][:, ~valid] == 0).all()
    # the loss is exactly the per-slot means over the supervised targets
    m = obj.loss(Batch(x, mask)).metrics
    for s, key in ((0, "ce"), (1, "ce_1"), (2, "ce_2")):
        torch.testing.assert_close(m[key], out["ce"][:, :, s][:, valid[:, s]].mean())


# --- interface ---------------------------------------------------------------------------------
def test_hidden_states_paper_choice_is_fetch_input():
    obj = make()
    x = rand_tokens(2, 10)
    h = obj.trunk(x)
    want = F.layer_norm(obj.trunk.tok_emb(x) + obj.combine.gamma * h, (32,),
                        obj.combine.norm.weight, obj.combine.norm.bias)
    torch.testing.assert_close(obj.hidden_states(x), want)
    torch.testing.assert_close(obj.hidden_states(x, which="probe"), want)
    torch.testing.assert_close(obj.hidden_states(x, which="trunk"), h)
    with pytest.raises(ValueError, match="hidden state"):
        obj.hidden_states(x, which="nope")


def test_param_overhead_independent_of_d():
    gpt = make("gpt").param_counts()["training"]
    D, nh = 32, 2
    for d in (1, 2, 8):
        c = make(horizon=d).param_counts()
        overhead = c["training"] - gpt
        # Fetch qkv + proj (4 D^2), combine LayerNorm (2D) + gamma, output norm (D), and the
        # (heads, d+1, d+1) score bias: the only d-dependent part, a few scalars
        assert overhead == 4 * D * D + 2 * D + 1 + D + nh * (d + 1) ** 2
        assert c["inference"] == c["training"]  # next-token logits go through Fetch slot 0


def test_bad_horizon_fails_clearly():
    with pytest.raises(ValueError, match="horizon"):
        make(horizon=0)


def test_short_training_lowers_the_loss():
    torch.manual_seed(0)
    obj = build_objective(model_cfg(), {"name": "jtp", "horizon": 2})
    x = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6]).repeat(4, 3)[:, :20]
    batch = full(x)
    opt = torch.optim.AdamW(obj.parameters(), lr=3e-3, betas=(0.9, 0.95))
    first = obj.loss(batch).loss.item()
    for _ in range(30):
        opt.zero_grad()
        obj.loss(batch).loss.backward()
        opt.step()
    last = obj.loss(batch)
    assert last.loss.item() < 0.5 * first
    assert last.metrics["ce_2"] < 1.0
