"""BST (Belief State Transformer): pairs, encoders, the chunked loss, generation."""
import pytest
import torch

from nextlat.models.layout import Layout, backward_document_ids
from nextlat.objectives import Batch, build_objective

V, EOS = 23, 22


def make(seed=0, **method):
    torch.manual_seed(seed)
    model = dict(vocab_size=V, n_layer=2, n_head=2, n_embd=32, block_size=64, eos_id=EOS)
    return build_objective(model, {"name": "bst", **method}).double()


def packed_batch(B=2, L=24, seed=3, eos_at=((0, 9, 12, 13), (5, 17)), prompt=None):
    """Rows of several EOS-led documents (including an empty one: adjacent EOS)."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, EOS, (B, L), generator=g)
    for r, cols in enumerate(eos_at[:B]):
        tokens[r, list(cols)] = EOS
    mask = torch.ones(B, L, dtype=torch.bool)
    for r, cols in (prompt or {}).items():
        mask[r, list(cols)] = False
    return Batch(tokens, mask, packed=True)


def other_token(tok: int) -> int:
    return (tok + 1) % EOS  # a different non-EOS token


# --- layout --------------------------------------------------------------------------------
def test_backward_layout_ids_and_countdown_positions():
    x = torch.tensor([[5, EOS, 1, 2, EOS, EOS, 3, 4]])
    doc, pos = backward_document_ids(x, EOS)
    # an EOS closes the document before it; positions count down to the document end
    assert doc.tolist() == [[0, 0, 1, 1, 1, 2, 3, 3]]
    assert pos.tolist() == [[1, 0, 2, 1, 0, 0, 1, 0]]
    mask = Layout.packed_backward(x, EOS).anticausal_mask()[0, 0]
    for q in range(8):
        for k in range(8):
            assert mask[q, k] == (k >= q and doc[0, q] == doc[0, k])


# --- pairs ---------------------------------------------------------------------------------
def brute_force_pairs(tokens, loss_mask, min_gap=1, max_gap=None):
    out = []
    B, T = tokens.shape
    for r in range(B):
        x, m = tokens[r].tolist(), loss_mask[r].tolist()
        for f in range(T):
            for b in range(f + 1, T):
                g = b - f
                if g < min_gap or (max_gap is not None and g >= max_gap):
                    continue
                if any(x[j] == EOS for j in range(f + 1, b)):  # a boundary strictly inside
                    continue
                if not (m[f + 1] and m[b]):
                    continue
                nxt, prv = (EOS, EOS) if g == 1 else (x[f + 1], x[b - 1])
                out.append((r, f, b, nxt, prv))
    return out


@pytest.mark.parametrize("min_gap,max_gap", [(1, None), (2, None), (1, 4), (3, 7)])
def test_pairs_equal_brute_force_double_loop(min_gap, max_gap):
    batch = packed_batch(prompt={0: range(0, 4), 1: list(range(5, 9)) + [20]})
    obj = make(min_gap=min_gap, max_gap=max_gap)
    p = obj.pairs(batch.tokens, batch.loss_mask)
    got = list(zip(*(p[k].tolist() for k in ("row", "f", "b", "next", "prev"))))
    want = brute_force_pairs(batch.tokens, batch.loss_mask, min_gap, max_gap)
    assert len(want) > 20
    assert got == want
    assert p["n_valid"].item() == len(want)


def test_pairs_include_empty_prefix_and_empty_suffix():
    batch = packed_batch()
    p = make().pairs(batch.tokens, batch.loss_mask)
    x = batch.tokens
    f_eos = x[p["row"], p["f"]] == EOS
    b_eos = x[p["row"], p["b"]] == EOS
    assert f_eos.any() and b_eos.any() and (f_eos & b_eos).any()  # (EOS, closing EOS) pairs too
    # the empty document (EOS at 12, 13): its only pair is gap 1 with EOS targets
    sel = (p["row"] == 0) & (p["f"] == 12)
    assert p["b"][sel].tolist() == [13] and p["next"][sel].tolist() == [EOS]


# --- subsampling ---------------------------------------------------------------------------
def big_batch(B=16, L=48, seed=5):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, EOS, (B, L), generator=g)
    tokens[:, 0] = EOS
    tokens[torch.rand(B, L, generator=g) < 0.08] = EOS
    return Batch(tokens, torch.ones(B, L, dtype=torch.bool), packed=True)


def kept_set(p):
    return set(zip(p["row"].tolist(), p["f"].tolist(), p["b"].tolist()))


def test_subsampling_keeps_eos_pairs_hits_rate_and_is_reproducible():
    batch = big_batch()
    x, m = batch.tokens, batch.loss_mask
    rate = 0.3
    obj = make(subsample_rate=rate, subsample_seed=11).train()
    valid = obj.pair_mask(x, m)
    n_valid_rows = valid.sum((1, 2)).double()
    obj.pair_ema.fill_(n_valid_rows.mean().item())  # target = rate x average valid pairs
    p = obj.pairs(x, m)
    kept = kept_set(p)
    full = set(map(tuple, valid.nonzero().tolist()))
    assert kept <= full
    eos_pairs = {(r, f, b) for r, f, b in full if x[r, f] == EOS or x[r, b] == EOS}
    assert eos_pairs <= kept  # empty prefix / empty suffix pairs always survive
    # expected count ~= rate x running average (rows differ, so compare totals)
    n_eos_rows = torch.tensor([sum(1 for r_, f, b in eos_pairs if r_ == r) for r in range(x.size(0))]).double()
    prob = ((rate * n_valid_rows.mean() - n_eos_rows) / (n_valid_rows - n_eos_rows)).clamp(0, 1)
    expected_other = (prob * (n_valid_rows - n_eos_rows)).sum().item()
    other = len(kept) - len(eos_pairs)
    assert 0 < prob.min() and prob.max() < 1
    assert abs(other - expected_other) < 4 * expected_other ** 0.5 + 1
    assert abs(len(kept) - rate * len(full)) < 0.1 * len(full)
    # EMA advanced (alpha = clip(1/1, .001, .1) = 0.1) on the training call
    assert obj.pair_iter.item() == 1
    torch.testing.assert_close(obj.pair_ema.item(), n_valid_rows.mean().item())

    # same seed and state -> same pairs; a different seed or the next step -> different
    again = make(subsample_rate=rate, subsample_seed=11).train()
    again.pair_ema.fill_(n_valid_rows.mean().item())
    assert kept_set(again.pairs(x, m)) == kept
    other_seed = make(subsample_rate=rate, subsample_seed=12).train()
    other_seed.pair_ema.fill_(n_valid_rows.mean().item())
    assert kept_set(other_seed.pairs(x, m)) != kept
    assert kept_set(again.pairs(x, m)) != kept
    # evaluation: fixed stream, EMA untouched
    again.eval()
    state = (again.pair_iter.item(), again.pair_ema.item())
    assert kept_set(again.pairs(x, m)) == kept_set(again.pairs(x, m))
    assert (again.pair_iter.item(), again.pair_ema.item()) == state


def test_subsampling_state_survives_state_dict():
    obj = make(subsample_rate=0.5)
    obj.train().pairs(big_batch().tokens, big_batch().loss_mask)
    sd = obj.state_dict()
    assert {"subsample_seed", "pair_ema", "pair_iter"} <= set(sd)
    clone = make(seed=1, subsample_rate=0.5)
    clone.load_state_dict(sd)
    b = big_batch(seed=9)
    assert kept_set(clone.train().pairs(b.tokens, b.loss_mask)) == kept_set(obj.pairs(b.tokens, b.loss_mask))


# --- the loss and its gradients ------------------------------------------------------------
def per_pair_terms(obj, batch):
    return obj.pair_terms(batch)


def grads(obj, loss):
    obj.zero_grad()
    loss.backward()
    return {n: p.grad.clone() for n, p in obj.named_parameters()}


def test_chunked_checkpointed_loss_and_grads_equal_direct_autograd():
    batch = packed_batch(prompt={1: range(5, 9)})
    obj = make(pair_batch_size=7)  # many chunks, a ragged last one
    obj.checkpoint_pairs = True  # "auto" would not checkpoint so few pairs
    out = obj.loss(batch)
    assert all(p.grad is None for p in obj.parameters())  # loss() never calls backward itself
    g_chunk = grads(obj, out.loss)

    obj.checkpoint_pairs, obj.pair_batch_size = False, 10**9
    direct = obj.loss(batch)
    g_direct = grads(obj, direct.loss)
    torch.testing.assert_close(out.loss, direct.loss)
    assert g_chunk.keys() == g_direct.keys()
    for n in g_direct:
        torch.testing.assert_close(g_chunk[n], g_direct[n], msg=n)
    assert all(g.abs().max() > 0 for g in g_direct.values())  # every parameter is trained

    # and both equal (mean CE_next + mean CE_prev) / 2 over the pairs
    _, ce_n, ce_p = per_pair_terms(obj, batch)
    torch.testing.assert_close(direct.loss, (ce_n.mean() + ce_p.mean()) / 2)
    g_ref = grads(obj, (ce_n.mean() + ce_p.mean()) / 2)
    for n in g_ref:
        torch.testing.assert_close(g_chunk[n], g_ref[n], msg=n)


def saved_numel(fn):
    total = [0]

    def pack(t):
        total[0] += t.numel()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total[0]


def saved_with_and_without_checkpointing() -> tuple[int, int, int]:
    """Saved-tensor elements of one loss with the pair head checkpointed and without, and the pair count."""
    batch = packed_batch()
    obj = make(pair_batch_size=16)
    n_pairs = obj.pairs(batch.tokens, batch.loss_mask)["f"].numel()
    obj.checkpoint_pairs = True
    with_ckpt = saved_numel(lambda: obj.loss(batch))
    obj.checkpoint_pairs = False
    without = saved_numel(lambda: obj.loss(batch))
    return with_ckpt, without, n_pairs


def test_checkpointing_keeps_pair_activations_out_of_memory():
    with_ckpt, without, n_pairs = saved_with_and_without_checkpointing()
    # without checkpointing every pair's logits (and more) are kept for backward
    assert without - with_ckpt > 2 * n_pairs * V


def test_auto_checkpoints_only_above_the_activation_budget(monkeypatch):
    import nextlat.objectives.bst as bst_module

    with_ckpt, without, _ = saved_with_and_without_checkpointing()
    batch = packed_batch()
    obj = make(pair_batch_size=16)
    assert obj.checkpoint_pairs == "auto"
    assert saved_numel(lambda: obj.loss(batch)) == without  # a few pairs: plain autograd, no recomputation
    monkeypatch.setattr(bst_module, "PAIR_ACTIVATION_BUDGET", 1000)
    assert saved_numel(lambda: obj.loss(batch)) == with_ckpt


def test_empty_pair_set_gives_zero_loss_with_grads_everywhere():
    x = torch.randint(0, EOS, (1, 10))
    batch = Batch(x, torch.zeros(1, 10, dtype=torch.bool), packed=True)  # nothing supervised
    obj = make()
    out = obj.loss(batch)
    assert out.loss.item() == 0 and out.metrics["pairs"].item() == 0
    g = grads(obj, out.loss)
    assert all((v == 0).all() for v in g.values())


# --- what each state may read --------------------------------------------------------------
def perturbed(x, positions):
    y = x.clone()
    for j in positions:
        if y[0, j] != EOS:
            y[0, j] = other_token(int(y[0, j]))
    return y


def test_forward_state_reads_only_its_document_prefix():
    obj = make()
    x = packed_batch(B=1).tokens
    fwd = lambda t: obj.encode_both(t)[0]  # noqa: E731  (the states the loss reads)
    base = fwd(x)
    T = x.size(1)
    for f in range(T):
        x_ = x[0].tolist()
        start = max([j for j in range(f + 1) if x_[j] == EOS], default=0)
        outside = [j for j in range(T) if not start <= j <= f]
        torch.testing.assert_close(fwd(perturbed(x, outside))[0, f], base[0, f])
        if x_[f] != EOS:
            assert not torch.allclose(fwd(perturbed(x, [f]))[0, f], base[0, f])
        first = start + 1 if x_[start] == EOS else start  # first real token of the document
        if first < f:  # it does read the far end of its prefix
            assert not torch.allclose(fwd(perturbed(x, [first]))[0, f], base[0, f])


def test_backward_state_reads_only_its_document_suffix():
    obj = make()
    x = packed_batch(B=1).tokens
    bwd = lambda t: obj.encode_both(t)[1]  # noqa: E731
    base = bwd(x)
    T = x.size(1)
    x_ = x[0].tolist()
    for b in range(T):
        if x_[b] == EOS:  # a closing EOS: the empty suffix, equal to B_EOS
            torch.testing.assert_close(base[0, b], obj.empty_suffix(x)[0, 0])
            end = b
        else:
            end = min([j for j in range(b, T) if x_[j] == EOS], default=T - 1)
        outside = [j for j in range(T) if not b <= j <= end]
        torch.testing.assert_close(bwd(perturbed(x, outside))[0, b], base[0, b])
        last_real = end - 1 if x_[end] == EOS else end
        if last_real >= b:  # it does read the far end of its suffix
            assert not torch.allclose(bwd(perturbed(x, [last_real]))[0, b], base[0, b])


def test_pair_term_reads_only_prefix_to_f_and_suffix_from_b():
    obj = make()
    batch = packed_batch(B=1, eos_at=((0, 3, 14),))
    p, ce_n, ce_p = per_pair_terms(obj, batch)
    x = batch.tokens
    checked = 0
    for i in range(p["f"].numel()):
        f, b = int(p["f"][i]), int(p["b"][i])
        if b - f < 5:
            continue
        # strictly between (excluding both targets), and everything in other documents
        between = list(range(f + 2, b - 1))
        x_ = x[0].tolist()
        start = max(j for j in range(f + 1) if x_[j] == EOS) if EOS in x_[: f + 1] else 0
        end = min([j for j in range(b, len(x_)) if x_[j] == EOS], default=len(x_) - 1)
        outside = [j for j in range(len(x_)) if j < start or j > end]
        pb = Batch(perturbed(x, between + outside), batch.loss_mask, True)
        p2, n2, r2 = per_pair_terms(obj, pb)
        j = ((p2["f"] == f) & (p2["b"] == b)).nonzero().item()
        torch.testing.assert_close((n2[j], r2[j]), (ce_n[i], ce_p[i]))
        # negative controls: the targets and the prefix/suffix ends do matter
        for pos in (f + 1, f, b):
            if x[0, pos] == EOS:  # EOS positions stay put (perturbed() keeps the layout)
                continue
            pc = Batch(perturbed(x, [pos]), batch.loss_mask, True)
            p3, n3, r3 = per_pair_terms(obj, pc)
            k = ((p3["f"] == f) & (p3["b"] == b)).nonzero().item()
            assert (n3[k] - ce_n[i]).abs() + (r3[k] - ce_p[i]).abs() > 1e-9  # double: noise ~1e-15
        checked += 1
    assert checked > 10


# --- generation ----------------------------------------------------------------------------
def test_logits_are_causal_and_use_the_empty_suffix():
    obj = make()
    x = torch.randint(0, EOS, (2, 16), generator=torch.Generator().manual_seed(4))
    base = obj.logits(x)
    for t in range(15):
        y = x.clone()
        y[:, t + 1:] = (y[:, t + 1:] + 3) % EOS
        torch.testing.assert_close(obj.logits(y)[:, : t + 1], base[:, : t + 1])
    # the same logits as the training pair (f, closing EOS) of a row that ends there
    row = torch.cat([x[:1], torch.full((1, 1), EOS)], dim=1)
    f_all, b_all = obj.encode_both(row)
    nxt, _ = obj.head_logits(f_all[0, :16], b_all[0, 16].expand(16, -1))
    torch.testing.assert_close(nxt, base[0])
    torch.testing.assert_close(obj.hidden_states(x), obj.forward_encoder(x))


def test_param_counts_and_shared_embedding():
    obj = make()
    assert obj.forward_encoder.tok_emb is obj.backward_encoder.tok_emb
    counts = obj.param_counts()
    assert counts["training"] == sum(p.numel() for p in obj.parameters())  # shared counted once
    fwd = sum(p.numel() for p in obj.forward_encoder.parameters())
    bwd_blocks = sum(p.numel() for n, p in obj.backward_encoder.named_parameters() if not n.startswith("tok_emb"))
    assert counts["inference"] == counts["training"] > fwd + bwd_blocks
    hidden = obj.text_head.down.in_features
    assert hidden == 128 * round(8 * 64 / 3 / 128)


def test_config_validation():
    with pytest.raises(ValueError, match="min_gap"):
        make(min_gap=0)
    with pytest.raises(ValueError, match="subsample_rate"):
        make(subsample_rate=0.0)
    with pytest.raises(ValueError, match="max_gap"):
        make(min_gap=3, max_gap=3)


# --- training ------------------------------------------------------------------------------
def test_adamw_smoke_lowers_loss_on_repeated_pattern():
    torch.manual_seed(0)
    obj = build_objective(dict(vocab_size=V, n_layer=2, n_head=2, n_embd=32, block_size=64, eos_id=EOS),
                          {"name": "bst", "pair_batch_size": 256, "subsample_rate": 0.5})
    row = torch.tensor([EOS] + [1, 2, 3, 4, 5, 6] * 4 + [EOS, 7, 8, 9] * 2)
    batch = Batch(row.repeat(4, 1), torch.ones(4, row.numel(), dtype=torch.bool), packed=True)
    opt = torch.optim.AdamW(obj.parameters(), lr=3e-3, betas=(0.9, 0.95))
    obj.train()
    losses = []
    for _ in range(30):
        out = obj.loss(batch)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert obj.pair_iter.item() == 30


# --- with the trainer ----------------------------------------------------------------------
def test_trainer_resumes_bst_with_subsampling_bit_identically(tmp_path):
    from _tiny_run import tiny_cfg, train_val

    from nextlat.training import train_run

    cfg = tiny_cfg("bst")
    cfg["method"] = {"name": "bst", "min_gap": 1, "max_gap": None, "subsample_rate": 0.5, "pair_batch_size": 64}
    data = train_val()
    full = train_run(cfg, *data, tmp_path / "full")
    out = tmp_path / "interrupted"
    assert train_run(cfg, *data, out, stop_after=7) is None  # EMA, step counter and seed in the ckpt
    resumed = train_run(cfg, *data, out)
    a = torch.load(full, map_location="cpu", weights_only=True)["model"]
    b = torch.load(resumed, map_location="cpu", weights_only=True)["model"]
    assert a.keys() == b.keys() and "pair_ema" in a
    for k in a:
        assert torch.equal(a[k], b[k]), k
