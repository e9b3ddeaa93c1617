"""Independent references for every training loss, value for value and gradient for gradient.

Each reference is written from the paper's formulas (and the objective's documented
conventions) with plain torch ops and explicit loops over positions: it reuses the model's
*components* (trunk, p_psi, heads, Fetch weights, encoders) but none of the objective's loss
code (``loss``, ``forward_terms``, ``rollout``, ``pair_terms``, ``slot_data``, masks). Each
is compared with ``objective.loss(batch).loss`` on tiny float64 models with fixed random
weights, on batches that exercise the masks: prompt tokens, and packed rows of EOS-led
documents.

Every reference takes switches for plausible mistakes (a reversed KL, a sum instead of a
mean, a missing detach, a missing mask, ...); the mutation tests show each wrong variant
moves the value (or, for detaches, the gradients) far beyond the tolerance, so the
references are discriminative.

Existing partial references elsewhere: tests/test_objectives.py (rollout loop, p_psi by hand,
SmoothL1 target detach via gradients, lambda combination from metrics), tests/test_mtp.py
(per-head CE by hand, unpacked rows), tests/test_jtp.py (Fetch logits by hand at one position),
tests/test_bst.py (brute-force pair enumeration; loss checked against ``pair_terms``).
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nextlat.models.layout import Layout
from nextlat.objectives import Batch, build_objective

from _tokens import EOS, model_cfg

D = model_cfg()["n_embd"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    """Tiny models: one intra-op thread (conftest.one_thread_module)."""


# --- batches ---------------------------------------------------------------------------------
def rows_batch() -> Batch:
    """One document per row, a 5-token prompt, an EOS target at the row end."""
    g = torch.Generator().manual_seed(11)
    x = torch.randint(0, EOS, (2, 16), generator=g)
    x[:, -1] = EOS
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[:, :5] = False
    return Batch(x, mask)


def packed_batch() -> Batch:
    """EOS-led documents packed in rows (one document of a single token), each with a short
    unsupervised prompt after its EOS."""
    g = torch.Generator().manual_seed(12)
    x = torch.randint(0, EOS, (2, 20), generator=g)
    eos = {0: (0, 8, 11, 12), 1: (0, 13)}
    prompts = {0: (0, 1, 2, 8, 9), 1: (0, 1, 2, 3, 13, 14)}
    mask = torch.ones_like(x, dtype=torch.bool)
    for r in eos:
        x[r, list(eos[r])] = EOS
        mask[r, list(prompts[r])] = False
    return Batch(x, mask, packed=True)


BATCHES = {"rows": rows_batch, "packed": packed_batch}


def make(method: dict, seed: int = 0, **model_kw):
    """A float64 objective with fixed weights, scaled up from the N(0, 0.02) init so that
    distributions are peaked and per-position terms differ: a wrong variant of a loss then
    moves its value by far more than the tolerance (near-uniform predictions would hide e.g.
    a reversed KL, which agrees with the right one to second order)."""
    torch.manual_seed(seed)
    obj = build_objective(model_cfg(**model_kw), method).double()
    with torch.no_grad():
        for m in obj.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Embedding)):
                m.weight.mul_(8.0)
    return obj


def grads_of(obj, loss) -> dict[str, torch.Tensor]:
    obj.zero_grad(set_to_none=True)
    loss.backward()
    return {n: (torch.zeros_like(p) if p.grad is None else p.grad.clone()) for n, p in obj.named_parameters()}


def assert_differs(wrong: torch.Tensor, right: torch.Tensor, what: str):
    gap = (wrong.detach() - right.detach()).abs().item()
    assert gap > 1e-4 * max(1.0, right.abs().item()), f"{what}: the reference cannot tell it apart ({gap:.2e})"


def assert_grads_differ(a: dict, b: dict, what: str):
    assert any(not torch.allclose(a[n], b[n], rtol=1e-5, atol=1e-9) for n in a), \
        f"{what}: gradients unchanged, the reference cannot tell it apart"


def crosses(row: torch.Tensor, start: int, stop: int) -> bool:
    """An EOS among row[start..stop] (inclusive): reading them crosses a document boundary."""
    return bool((row[start: stop + 1] == EOS).any())


def mean_or_zero(terms: list) -> torch.Tensor:
    return torch.stack(terms).mean() if terms else torch.zeros((), dtype=torch.double)


def trunk_layout(batch: Batch) -> Layout:
    return Layout.packed(batch.inputs, EOS) if batch.packed else Layout()


# =============================================================================================
# GPT: mean next-token cross-entropy over the supervised targets
# =============================================================================================
def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-log softmax(logits)[target], elementwise over leading dims."""
    return -torch.log_softmax(logits, -1).gather(-1, targets[..., None])[..., 0]


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` (0 when nothing is selected)."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def gpt_reference(obj, batch, *, reduce="mean", use_mask=True, use_layout=True):
    x, tokens, mask = batch.inputs, batch.tokens, batch.loss_mask
    logits = obj.head(obj.trunk(x, trunk_layout(batch) if use_layout else None))
    nll = token_nll(logits, tokens[:, 1:])  # logits at t score x_{t+1}
    sup = mask[:, 1:] if use_mask else torch.ones_like(mask[:, 1:])
    return (nll * sup).sum() if reduce == "sum" else masked_mean(nll, sup)


@pytest.mark.parametrize("kind", BATCHES)
def test_gpt_loss_equals_reference(kind):
    obj, batch = make({"name": "gpt"}), BATCHES[kind]()
    ours = obj.loss(batch).loss
    ref = gpt_reference(obj, batch)
    torch.testing.assert_close(ours, ref)
    g_obj, g_ref = grads_of(obj, obj.loss(batch).loss), grads_of(obj, gpt_reference(obj, batch))
    for n in g_obj:
        torch.testing.assert_close(g_obj[n], g_ref[n], msg=n)
    assert_differs(gpt_reference(obj, batch, reduce="sum"), ours, "sum instead of mean")
    assert_differs(gpt_reference(obj, batch, use_mask=False), ours, "prompt targets trained")
    if batch.packed:
        assert_differs(gpt_reference(obj, batch, use_layout=False), ours, "attention across documents")


# =============================================================================================
# NextLat (Algorithm 1)
# =============================================================================================
def smooth_l1(diff: torch.Tensor) -> torch.Tensor:
    """Huber with beta = 1, elementwise."""
    a = diff.abs()
    return torch.where(a < 1, 0.5 * diff**2, a - 0.5)


def step_mask(batch: Batch, i: int, *, cross_docs=False) -> torch.Tensor:
    """(B, T - i) bool, from a loop: term (t, i) reads x_{t+1..t+i}; in packed rows it is
    dropped when one of them is an EOS (a later document)."""
    x = batch.inputs
    B, T = x.shape
    keep = torch.ones(B, T - i, dtype=torch.bool)
    if batch.packed and not cross_docs:
        for b in range(B):
            for t in range(T - i):
                keep[b, t] = not crosses(x[b], t + 1, t + i)
    return keep


def nextlat_reference(obj, batch, *, kl_direction="p||q", kl_over_vocab="sum", reduce="mean",
                      next_h_over_d=True, detach_target=True, detach_teacher=True, freeze_head=True,
                      kl_on_prompt=False, cross_docs=False, pool_steps=False):
    """CE + lambda_next_h * mean_i next_h_i + lambda_kl * mean_i kl_i, where for i = 1..d

    h-hat_{t+1} = p_psi(h_t, E[x_{t+1}]), h-hat_{t+i} = p_psi(h-hat_{t+i-1}, E[x_{t+i}]);
    next_h_i = mean over valid (t, element) of SmoothL1(h-hat_{t+i}, sg h_{t+i});
    kl_i = mean over valid t with x_{t+i+1} supervised of
           KL(softmax(head(sg h_{t+i})) || softmax(sg-head(h-hat_{t+i}))).
    Valid: t + i < T and (packed rows) no EOS among x_{t+1..t+i}.
    """
    x, mask = batch.inputs, batch.loss_mask
    T = x.size(1)
    h = obj.trunk(x, trunk_layout(batch))
    W = obj.head.weight
    E = obj.trunk.tok_emb.weight
    ce = gpt_reference(obj, batch)
    d = min(obj.horizon, T - 1)
    steps_h, steps_kl, pooled = [], [], [[], [], [], []]
    for i in range(1, d + 1):
        n = T - i  # positions t = 0..T-1-i have a state h_{t+i}
        pred = h[:, :n]
        for j in range(1, i + 1):  # teacher-forced tokens x_{t+1..t+i}, p_psi applied i times
            pred = obj.dynamics(pred, E[x[:, j:j + n]])
        target = h[:, i:].detach() if detach_target else h[:, i:]
        sl1 = smooth_l1(pred - target).sum(-1)  # (B, n), summed over D
        keep = step_mask(batch, i, cross_docs=cross_docs)
        kl_keep = keep & (mask[:, i + 1:] | kl_on_prompt)  # target x_{t+i+1} supervised
        teacher = h[:, i:] @ W.t()
        log_p = torch.log_softmax(teacher.detach() if detach_teacher else teacher, -1)
        log_q = torch.log_softmax(pred @ (W.detach() if freeze_head else W).t(), -1)
        # F.kl_div(input, target) = KL(target || input), elementwise over the vocabulary
        kl = (F.kl_div(log_q, log_p, log_target=True, reduction="none") if kl_direction == "p||q"
              else F.kl_div(log_p, log_q, log_target=True, reduction="none"))
        kl = kl.sum(-1) if kl_over_vocab == "sum" else kl.mean(-1)
        if reduce == "sum":
            steps_h.append((sl1 * keep).sum())
            steps_kl.append((kl * kl_keep).sum())
        else:
            steps_h.append((sl1 * keep).sum() / (keep.sum().clamp(min=1) * (D if next_h_over_d else 1)))
            steps_kl.append(masked_mean(kl, kl_keep))
        for acc, v in zip(pooled, ((sl1 * keep).sum(), keep.sum(), (kl * kl_keep).sum(), kl_keep.sum())):
            acc.append(v)
    if pool_steps:  # one mean over all steps' terms instead of a mean of per-step means
        next_h = sum(pooled[0]) / (sum(pooled[1]) * D)
        kl = sum(pooled[2]) / sum(pooled[3])
    else:
        next_h, kl = torch.stack(steps_h).mean(), torch.stack(steps_kl).mean()
    return ce + obj.lambda_next_h * next_h + obj.lambda_kl * kl


def make_nextlat(horizon=3):
    return make({"name": "nextlat", "horizon": horizon, "lambda_next_h": 0.7, "lambda_kl": 1.3, "dyn_hidden": 40})


@pytest.mark.parametrize("kind", BATCHES)
def test_nextlat_loss_and_gradients_equal_reference(kind):
    obj, batch = make_nextlat(), BATCHES[kind]()
    out = obj.loss(batch)
    ref = nextlat_reference(obj, batch)
    torch.testing.assert_close(out.loss, ref)
    assert out.metrics["next_h"] > 0 and out.metrics["kl"] > 0  # both terms are really there
    g_obj, g_ref = grads_of(obj, obj.loss(batch).loss), grads_of(obj, nextlat_reference(obj, batch))
    for n in g_obj:
        torch.testing.assert_close(g_obj[n], g_ref[n], msg=n)


@pytest.mark.parametrize("mutation", [
    {"kl_direction": "q||p"},          # reversed KL
    {"kl_over_vocab": "mean"},         # KL averaged over the vocabulary instead of summed
    {"reduce": "sum"},                 # a sum over positions instead of a mean
    {"next_h_over_d": False},          # SmoothL1 averaged over positions only, not positions x D
    {"pool_steps": True},              # one mean over all steps instead of a mean over i
    {"kl_on_prompt": True},            # KL on unsupervised targets
    {"cross_docs": True},              # terms crossing a document boundary kept
])
def test_nextlat_reference_detects_wrong_losses(mutation):
    obj, batch = make_nextlat(), packed_batch()
    ours = obj.loss(batch).loss
    torch.testing.assert_close(nextlat_reference(obj, batch), ours)
    assert_differs(nextlat_reference(obj, batch, **mutation), ours, str(mutation))


@pytest.mark.parametrize("mutation", [
    {"detach_target": False},          # SmoothL1 pulls the trunk towards p_psi's guesses
    {"detach_teacher": False},         # KL trains the teacher distribution too
    {"freeze_head": False},            # KL trains the output head through the student
])
def test_nextlat_reference_detects_a_missing_detach(mutation):
    """A detach leaves the value alone, so a missing one is caught through the gradients."""
    obj, batch = make_nextlat(horizon=2), rows_batch()
    g_obj = grads_of(obj, obj.loss(batch).loss)
    wrong = nextlat_reference(obj, batch, **mutation)
    torch.testing.assert_close(wrong, obj.loss(batch).loss)  # same value ...
    assert_grads_differ(grads_of(obj, wrong), g_obj, str(mutation))  # ... other gradients


# =============================================================================================
# MTP: L = CE_0 + lambda_mtp * mean_{i=1..d} CE_i, head i at t predicts x_{t+1+i}
# =============================================================================================
def mtp_reference(obj, batch, *, heads="mean", pool=False, cross_docs=False):
    x, tokens, mask = batch.inputs, batch.tokens, batch.loss_mask
    B, T = x.shape
    layout = trunk_layout(batch)
    z = obj.trunk(x, layout)  # shared trunk (n_layer - 1 blocks, no final norm)
    attn, pos = layout.causal_mask(), layout.positions(B, T, x.device)
    d = min(obj.horizon, T - 1)
    per_head, pooled = [], [[], []]
    for i in range(d + 1):
        logits = obj.head(obj.heads[i](z, attn, pos, obj.trunk.rotary))  # Block + own norm, shared Linear
        nll = token_nll(logits[:, : T - i], tokens[:, 1 + i:])  # head i at t scores x_{t+1+i}
        keep = mask[:, 1 + i:] & step_mask(batch, i, cross_docs=cross_docs)
        per_head.append(masked_mean(nll, keep))
        if i:
            pooled[0].append((nll * keep).sum())
            pooled[1].append(keep.sum())
    extra = torch.stack(per_head[1:])
    if pool:
        mtp = sum(pooled[0]) / sum(pooled[1])
    else:
        mtp = extra.sum() if heads == "sum" else extra.mean()
    return per_head[0] + obj.lambda_mtp * mtp


@pytest.mark.parametrize("memory_efficient", [False, True])
@pytest.mark.parametrize("kind", BATCHES)
def test_mtp_loss_and_gradients_equal_reference(kind, memory_efficient):
    obj = make({"name": "mtp", "horizon": 3, "lambda_mtp": 0.6, "memory_efficient": memory_efficient}, n_layer=3)
    batch = BATCHES[kind]()
    torch.testing.assert_close(obj.loss(batch).loss, mtp_reference(obj, batch))
    g_obj, g_ref = grads_of(obj, obj.loss(batch).loss), grads_of(obj, mtp_reference(obj, batch))
    for n in g_obj:
        torch.testing.assert_close(g_obj[n], g_ref[n], msg=n)


@pytest.mark.parametrize("mutation", [{"heads": "sum"}, {"pool": True}, {"cross_docs": True}])
def test_mtp_reference_detects_wrong_losses(mutation):
    obj, batch = make({"name": "mtp", "horizon": 3, "lambda_mtp": 0.6}, n_layer=3), packed_batch()
    ours = obj.loss(batch).loss
    assert_differs(mtp_reference(obj, batch, **mutation), ours, str(mutation))


# =============================================================================================
# JTP: slots k = 0..d at t read (h_t, x_t, x_{t+1..t+k}) through Fetch and predict x_{t+k+1}
# =============================================================================================
def jtp_reference(obj, batch, *, residual_slot0=False, cumulative_eos=True, heads="mean"):
    """Fetch written out: g_k = LayerNorm(E[x_{t+k}] + gamma h_t); one causal attention over
    the slots with a learned per-head score bias; slot 0 -> Norm(a_0), slot k -> Norm(a_k + h_t);
    shared head. A slot-k target x_{t+k+1} is dropped when unsupervised, beyond the row, or
    when an EOS is among x_{t+1..t+k} (every row, packed or not)."""
    tokens, mask = batch.tokens, batch.loss_mask
    x = batch.inputs
    B, T = x.shape
    L, S = tokens.size(1), obj.horizon + 1
    h = obj.trunk(x, trunk_layout(batch))
    comb, fetch, out_norm = obj.combine, obj.fetch, obj.out_norm
    nh = fetch.n_head
    hd = D // nh
    # slot tokens, targets and which targets count: plain loops
    slot_tok = torch.zeros(B, T, S, dtype=torch.long)
    target = torch.zeros(B, T, S, dtype=torch.long)
    keep = torch.zeros(B, T, S, dtype=torch.bool)
    for b in range(B):
        for t in range(T):
            for k in range(S):
                if t + k < L:
                    slot_tok[b, t, k] = tokens[b, t + k]
                if t + k + 1 >= L or not mask[b, t + k + 1]:
                    continue
                crossed = (crosses(tokens[b], t + 1, t + k) if cumulative_eos
                           else k > 0 and bool(tokens[b, t + k] == EOS))
                if k == 0 or not crossed:
                    target[b, t, k], keep[b, t, k] = tokens[b, t + k + 1], True
    g = F.layer_norm(obj.trunk.tok_emb.weight[slot_tok] + comb.gamma * h[:, :, None], (D,),
                     comb.norm.weight, comb.norm.bias, comb.norm.eps)  # (B, T, S, D)
    qkv = g @ fetch.qkv.weight.t() + (0 if fetch.qkv.bias is None else fetch.qkv.bias)
    q, k, v = (part.reshape(B, T, S, nh, hd) for part in qkv.split(D, dim=-1))
    scores = torch.einsum("btsah,btjah->btasj", q, k) / math.sqrt(hd) + fetch.pos_bias[:, :S, :S]
    causal = torch.ones(S, S, dtype=torch.bool).tril()  # slot s sees slots j <= s
    weights = scores.masked_fill(~causal, float("-inf")).softmax(-1)
    att = torch.einsum("btasj,btjah->btsah", weights, v).reshape(B, T, S, D)
    att = att @ fetch.proj.weight.t() + (0 if fetch.proj.bias is None else fetch.proj.bias)
    residual = torch.ones(S, 1, dtype=torch.double)
    if not residual_slot0:
        residual[0] = 0  # slot 0 (the next token) has no residual from h_t
    pre = att + residual * h[:, :, None]
    logits = obj.head(F.rms_norm(pre, (D,), out_norm.weight, out_norm.eps))
    nll = token_nll(logits, target)
    ces = [masked_mean(nll[:, :, s], keep[:, :, s]) for s in range(S)]
    extra = torch.stack(ces[1:])
    return ces[0] + obj.lambda_mtp * (extra.sum() if heads == "sum" else extra.mean())


def make_jtp():
    obj = make({"name": "jtp", "horizon": 2, "lambda_mtp": 0.8})
    with torch.no_grad():  # move the zero-initialised score bias off zero
        obj.fetch.pos_bias.normal_(0, 0.5, generator=torch.Generator().manual_seed(3))
        obj.combine.norm.bias.normal_(0, 0.1, generator=torch.Generator().manual_seed(4))
    return obj


@pytest.mark.parametrize("kind", BATCHES)
def test_jtp_loss_and_gradients_equal_reference(kind):
    obj, batch = make_jtp(), BATCHES[kind]()
    assert obj.model_cfg.norm == "rms"  # the reference's output norm
    torch.testing.assert_close(obj.loss(batch).loss, jtp_reference(obj, batch))
    g_obj, g_ref = grads_of(obj, obj.loss(batch).loss), grads_of(obj, jtp_reference(obj, batch))
    for n in g_obj:
        torch.testing.assert_close(g_obj[n], g_ref[n], msg=n)


@pytest.mark.parametrize("mutation", [{"residual_slot0": True}, {"cumulative_eos": False}, {"heads": "sum"}])
def test_jtp_reference_detects_wrong_losses(mutation):
    obj, batch = make_jtp(), packed_batch()
    ours = obj.loss(batch).loss
    assert_differs(jtp_reference(obj, batch, **mutation), ours, str(mutation))


# =============================================================================================
# BST: (mean CE_next + mean CE_prev) / 2 over every prefix/suffix pair (f, b) of a document
# =============================================================================================
def bst_pairs(tokens, mask, min_gap, max_gap, *, check_suffix_mask=True):
    out = []
    for r in range(tokens.size(0)):
        x, m = tokens[r].tolist(), mask[r].tolist()
        for f in range(len(x)):
            for b in range(f + min_gap, len(x)):
                if max_gap is not None and b - f >= max_gap:
                    break
                if EOS in x[f + 1: b]:  # prefix and suffix of one document (closing EOS included)
                    break
                if m[f + 1] and (m[b] or not check_suffix_mask):
                    out.append((r, f, b))
    return out


def bst_reference(obj, batch, *, gap1_eos=True, prev_term=True, reduce="mean", chunk_means=None,
                  check_suffix_mask=True):
    """TextHead by hand: c = [F_f; B_b]; c' = RMSNorm(c + W_down(silu(gate) * value)) with
    (gate, value) = W_up c; next from head(c'[:D]), prev from head(c'[D:]). Gap-1 pairs
    predict EOS for both. ``chunk_means``: the official normalisation (mean of chunk means)."""
    tokens, mask = batch.tokens, batch.loss_mask
    f_all = obj.encode_forward(tokens, Layout.packed(tokens, EOS))  # documents from EOS, always
    b_all = obj.encode_backward(tokens)
    th = obj.text_head
    pairs = bst_pairs(tokens, mask, obj.min_gap, obj.max_gap, check_suffix_mask=check_suffix_mask)
    assert pairs
    r, f, b = (torch.tensor(c) for c in zip(*pairs))
    single = ((b - f) == 1) & gap1_eos
    eos = torch.full_like(f, EOS)
    nxt = torch.where(single, eos, tokens[r, f + 1])
    prv = torch.where(single, eos, tokens[r, b - 1])
    c = torch.cat([f_all[r, f], b_all[r, b]], dim=-1)
    up = c @ th.up.weight.t() + (0 if th.up.bias is None else th.up.bias)
    gate, value = up.chunk(2, dim=-1)
    c = c + (F.silu(gate) * value) @ th.down.weight.t() + (0 if th.down.bias is None else th.down.bias)
    c = F.rms_norm(c, (2 * D,), th.norm.weight, th.norm.eps)
    n = token_nll(obj.head(c[:, :D]), nxt)
    p = token_nll(obj.head(c[:, D:]), prv)
    if chunk_means:
        means = [(n[s:s + chunk_means].mean() + p[s:s + chunk_means].mean()) / 2
                 for s in range(0, len(n), chunk_means)]
        return torch.stack(means).mean()
    if reduce == "sum":
        return (n.sum() + p.sum()) / 2
    return (n.mean() + p.mean()) / 2 if prev_term else n.mean()


def make_bst(**kw):
    return make({"name": "bst", "min_gap": 1, "pair_batch_size": 7, **kw})


@pytest.mark.parametrize("checkpointed", [True, False])
@pytest.mark.parametrize("kind", BATCHES)
def test_bst_loss_and_gradients_equal_reference(kind, checkpointed):
    obj, batch = make_bst(), BATCHES[kind]()
    obj.checkpoint_pairs = checkpointed  # chunked with and without recomputation in backward
    torch.testing.assert_close(obj.loss(batch).loss, bst_reference(obj, batch))
    g_obj, g_ref = grads_of(obj, obj.loss(batch).loss), grads_of(obj, bst_reference(obj, batch))
    for n in g_obj:
        torch.testing.assert_close(g_obj[n], g_ref[n], msg=n)


def test_bst_reference_respects_gap_limits():
    obj, batch = make_bst(min_gap=2, max_gap=6), packed_batch()
    torch.testing.assert_close(obj.loss(batch).loss, bst_reference(obj, batch))


@pytest.mark.parametrize("mutation", [
    {"gap1_eos": False},               # gap-1 pairs predicting real tokens instead of EOS
    {"prev_term": False},              # the previous-token half left out
    {"reduce": "sum"},                 # a sum over pairs instead of a mean
    {"chunk_means": 7},                # the official mean of (ragged) chunk means
    {"check_suffix_mask": False},      # suffixes starting on an unsupervised token
])
def test_bst_reference_detects_wrong_losses(mutation):
    obj, batch = make_bst(), packed_batch()
    ours = obj.loss(batch).loss
    assert_differs(bst_reference(obj, batch, **mutation), ours, str(mutation))
