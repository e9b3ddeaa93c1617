"""MTP (Gloeckle et al., NextLat's variant): algorithms.md section 1."""
import pytest
import torch
import torch.nn.functional as F

from nextlat.models.layout import Layout
from nextlat.objectives import Batch, build_objective
from nextlat.objectives.base import IGNORE

from _tokens import EOS, V, full, packed_row, rand_tokens
from _tokens import model_cfg as _model_cfg


def model_cfg(**kw):
    return _model_cfg(**{"n_layer": 3, **kw})


def make(method="mtp", seed=0, horizon=3, lambda_mtp=1.0, memory_efficient=False, **kw):
    torch.manual_seed(seed)
    meth = {"name": method}
    if method == "mtp":
        meth.update(horizon=horizon, lambda_mtp=lambda_mtp, memory_efficient=memory_efficient)
    return build_objective(model_cfg(**kw), meth).double()








def _grads(obj, loss):
    obj.zero_grad()
    loss.backward()
    return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in obj.named_parameters()}


# --- structure -----------------------------------------------------------------------------
def test_structure_trunk_minus_one_layer_heads_and_shared_output():
    obj = make(horizon=2)
    assert len(obj.trunk.blocks) == 2 and isinstance(obj.trunk.norm_f, torch.nn.Identity)
    assert len(obj.heads) == 3
    assert obj.head.weight.data_ptr() != obj.trunk.tok_emb.weight.data_ptr()  # untied


def test_head_i_scores_x_t_plus_1_plus_i_by_hand():
    obj = make(horizon=2)
    x = rand_tokens(2, 12)
    out = obj.forward_terms(full(x))["heads"]
    z = obj.trunk(x[:, :-1])
    for i, h in enumerate(out):
        pos = torch.arange(11).expand(2, 11)
        states = obj.heads[i].norm(obj.heads[i].block(z, None, pos, obj.trunk.rotary))
        logits = obj.head(states)[:, : 11 - i]
        want = F.cross_entropy(logits.transpose(1, 2), x[:, 1 + i:], reduction="none")
        torch.testing.assert_close(h["ce"], want)
    # loss = CE_0 + lambda * mean_{i>=1} CE_i
    o = make(horizon=2, lambda_mtp=0.4).loss(full(x))
    m = o.metrics
    torch.testing.assert_close(o.loss.detach(), m["ce"] + 0.4 * (m["ce_1"] + m["ce_2"]) / 2)
    torch.testing.assert_close(m["ce"], out[0]["ce"].mean())
    assert set(m) == {"ce", "acc", "mtp", "ce_1", "ce_2"}


# --- causality -----------------------------------------------------------------------------
@pytest.mark.parametrize("pos_embedding", ["rope", "learned"])
def test_head_i_term_at_t_uses_only_tokens_up_to_t_plus_1_plus_i(pos_embedding):
    obj = make(horizon=3, pos_embedding=pos_embedding)
    x = rand_tokens(1, 18)
    base = obj.forward_terms(full(x))["heads"]
    t = 5
    for i, b in enumerate(base):
        y = x.clone()
        y[:, t + 2 + i:] = (y[:, t + 2 + i:] + 3) % EOS  # strictly after the scored token
        other = obj.forward_terms(full(y))["heads"][i]
        torch.testing.assert_close(b["ce"][:, : t + 1], other["ce"][:, : t + 1])
        # ... while changing x_{t+1} (an input of position t+1, not of t) leaves t alone but the
        # scored token x_{t+1+i} itself does move the term
        z = x.clone()
        z[:, t + 1 + i] = (z[:, t + 1 + i] + 1) % EOS
        assert not torch.allclose(b["ce"][:, t], obj.forward_terms(full(z))["heads"][i]["ce"][:, t])


def test_logits_at_t_ignore_later_tokens():
    obj = make()
    x = rand_tokens(2, 16)
    for t in (0, 6, 14):
        y = x.clone()
        y[:, t + 1:] = (y[:, t + 1:] + 7) % EOS
        torch.testing.assert_close(obj.logits(x)[:, : t + 1], obj.logits(y)[:, : t + 1])
        assert not torch.allclose(obj.logits(x)[:, t + 1:], obj.logits(y)[:, t + 1:])


def test_logits_are_head_zero_of_training():
    obj = make()
    x = rand_tokens(2, 16)
    torch.testing.assert_close(obj.logits(x[:, :-1]), obj.forward_terms(full(x))["heads"][0]["logits"])


# --- memory-efficient backward ---------------------------------------------------------------
@pytest.mark.parametrize("packed", [False, True])
def test_memory_efficient_backward_equals_plain_autograd(packed):
    x = packed_row().repeat(2, 1) if packed else rand_tokens(2, 20)
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[:, :4] = False
    batch = Batch(x, mask, packed=packed)
    plain, eff = make(horizon=3), make(horizon=3, memory_efficient=True, dropout=0.0)
    eff.load_state_dict(plain.state_dict())
    lp, le = plain.loss(batch), eff.loss(batch)
    torch.testing.assert_close(lp.loss, le.loss)
    for k in lp.metrics:
        torch.testing.assert_close(lp.metrics[k], le.metrics[k])
    gp, ge = _grads(plain, lp.loss / 2), _grads(eff, le.loss / 2)  # as the trainer: loss / n_micro
    assert gp.keys() == ge.keys()
    for n in gp:
        torch.testing.assert_close(ge[n], gp[n], msg=n)
    assert all(g.abs().max() > 0 for n, g in gp.items() if "heads" in n and n.endswith("qkv.weight"))
    # both equal plain autograd of the loss written from the unreduced terms (reaches the trunk)
    terms = plain.forward_terms(batch)["heads"]
    means = [h["ce"].sum() / (h["targets"] != IGNORE).sum() for h in terms]
    ref = _grads(plain, (means[0] + torch.stack(means[1:]).mean()) / 2)
    for n in ref:
        torch.testing.assert_close(ge[n], ref[n], msg=n)
    assert ge["trunk.blocks.0.attn.qkv.weight"].abs().max() > 0


def test_memory_efficient_keeps_no_logits_for_backward():
    """No (.., V)-wide tensor is saved for backward outside the checkpointed head regions."""
    x = rand_tokens(2, 20)  # T=19, D=32: only logits have a last dim of V=23

    def saved_widths(obj):
        widths = []

        def pack(t):
            widths.append(t.shape[-1] if t.dim() else 0)
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            obj.loss(full(x))
        return widths

    assert V in saved_widths(make(horizon=2))  # plain autograd keeps logits (the check has teeth)
    assert V not in saved_widths(make(horizon=2, memory_efficient=True))


def test_memory_efficient_with_dropout_replays_the_same_masks():
    torch.manual_seed(0)
    x = rand_tokens(2, 16)
    obj = make(horizon=2, memory_efficient=True, dropout=0.2)
    obj.train()
    torch.manual_seed(5)
    loss = obj.loss(full(x)).loss
    g_eff = _grads(obj, loss)
    obj.memory_efficient = False
    torch.manual_seed(5)
    g_plain = _grads(obj, obj.loss(full(x)).loss)
    for n in g_plain:
        torch.testing.assert_close(g_eff[n], g_plain[n], msg=n)


# --- masking ---------------------------------------------------------------------------------
def test_prompt_targets_carry_no_loss():
    obj = make(horizon=2)
    x = rand_tokens(2, 16)
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[:, :8] = False  # x_0..x_7 are the prompt
    heads = obj.forward_terms(Batch(x, mask))["heads"]
    for i, h in enumerate(heads):
        t = torch.arange(h["ce"].size(1))
        scored = t + 1 + i
        assert torch.equal(h["targets"][0] != IGNORE, scored >= 8)
        assert (h["ce"][:, scored < 8] == 0).all()
    # changing only prompt-target logits cannot matter: loss unchanged when prompt tokens are
    # scored by nobody -> the loss equals the hand-masked CE
    logits0 = heads[0]["logits"]
    want = F.cross_entropy(logits0[:, 7:].reshape(-1, V), x[:, 8:].reshape(-1))
    torch.testing.assert_close(obj.loss(Batch(x, mask)).metrics["ce"], want)


def test_no_head_target_from_another_document():
    obj = make(horizon=4)
    x = packed_row()
    doc = (x[0] == EOS).long().cumsum(0)  # doc id of every token of the row
    heads = obj.forward_terms(Batch(x, torch.ones_like(x, dtype=torch.bool), packed=True))["heads"]
    for i, h in enumerate(heads):
        t = torch.arange(h["targets"].size(1))
        j = t + 1 + i  # index of the scored token
        tgt_doc = doc[j] - (x[0, j] == EOS).long()  # an EOS target belongs to the current doc
        other = tgt_doc != doc[t]
        assert (h["targets"][0][other] == IGNORE).all() and (h["ce"][0][other] == 0).all()
        assert (h["targets"][0][~other] != IGNORE).all()
    # head 0 may predict the EOS that closes a document; head 1 at t=7 would score x_9=EOS
    # from x_{<=7} (same document) and is kept; head 2 at t=7 scores x_10 (next doc): masked
    assert heads[0]["targets"][0, 8] == EOS and heads[1]["targets"][0, 7] == EOS
    assert heads[2]["targets"][0, 7] == IGNORE
    # head 3 at t=8 would jump over the one-token middle document into the third: masked
    assert heads[3]["targets"][0, 8] == IGNORE


def test_packed_documents_do_not_see_each_other():
    obj = make()
    x = packed_row()
    y = x.clone()
    y[0, 1:9] = (y[0, 1:9] + 5) % EOS
    for which in ("trunk", "head0"):
        hx = obj.hidden_states(x, Layout.packed(x, EOS), which=which)
        hy = obj.hidden_states(y, Layout.packed(y, EOS), which=which)
        torch.testing.assert_close(hx[0, 9:], hy[0, 9:])
    # and every kept term of documents 2-3 is unchanged
    bx = obj.forward_terms(Batch(x, torch.ones_like(x, dtype=torch.bool), packed=True))["heads"]
    by = obj.forward_terms(Batch(y, torch.ones_like(y, dtype=torch.bool), packed=True))["heads"]
    for hx, hy in zip(bx, by):
        torch.testing.assert_close(hx["ce"][0, 9:], hy["ce"][0, 9:])


# --- interface -------------------------------------------------------------------------------
def test_hidden_states_trunk_for_probes_head0_for_rank():
    obj = make()
    x = rand_tokens(2, 10)
    z = obj.hidden_states(x)
    torch.testing.assert_close(z, obj.trunk(x))
    h0 = obj.hidden_states(x, which="rank")
    torch.testing.assert_close(obj.head(h0), obj.logits(x))
    torch.testing.assert_close(obj.hidden_states(x, which="probe"), z)
    with pytest.raises(ValueError, match="hidden state"):
        obj.hidden_states(x, which="nope")


def test_param_counts_training_grows_with_d_inference_equals_gpt():
    gpt = make("gpt").param_counts()
    counts = {d: make(horizon=d).param_counts() for d in (1, 2, 4)}
    per_head = sum(p.numel() for p in make(horizon=1).heads[1].parameters())
    for d, c in counts.items():
        assert c["inference"] == gpt["inference"] == gpt["training"]
        assert c["training"] == gpt["training"] + d * per_head
    assert counts[1]["training"] < counts[2]["training"] < counts[4]["training"]


def test_bad_horizon_fails_clearly():
    with pytest.raises(ValueError, match="horizon"):
        make(horizon=0)


def test_short_training_lowers_the_loss():
    torch.manual_seed(0)
    obj = build_objective(model_cfg(), {"name": "mtp", "horizon": 2, "memory_efficient": True})
    pattern = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    x = pattern.repeat(4, 3)[:, :20]
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
