"""nextlat.decoding.generate: KV-cached decoding equals recomputing the whole prefix.

Token equality is checked in float64 (rounding differences between the cached and
uncached computations are ~1e-16 there, so no near-tie can flip a token); the float32
logits agree to within 1e-5 x max(1, largest |logit|) (measured: <= 7e-6 with logits up
to ~5) and the first step (the prompt) bit for bit.
"""
import pytest
import torch
from torch import nn

from nextlat.decoding import Generation, generate, sample_next
from nextlat.models.kv_cache import KVCache
from nextlat.objectives import available, build_objective

V, EOS = 23, 0
METHODS = available()
F32_RTOL = 1e-5  # relative to the largest |logit|


def tiny(name: str, dtype=torch.float64, seed: int = 0, **model) -> nn.Module:
    """A random model with weights large enough that its predictions depend on context."""
    torch.manual_seed(seed)
    cfg = dict(vocab_size=V, n_layer=2, n_head=2, n_embd=16, block_size=48, eos_id=EOS) | model
    obj = build_objective(cfg, {"name": name}).to(dtype).eval()
    with torch.no_grad():
        for p in obj.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.35)
    return obj


def prompts(lengths, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(1, V, (n,), generator=g).tolist() for n in lengths]


class Recorder:
    """A greedy ``pick`` that records every call (the Manhattan contract) and, optionally,
    forces EOS for some rows at some steps (so rows stop at different times)."""

    def __init__(self, eos_at=None):
        self.calls, self.eos_at = [], eos_at or {}

    def __call__(self, rows, logits, step):
        assert rows.device.type == "cpu" and rows.dtype == torch.long
        assert bool((rows[1:] > rows[:-1]).all()) and logits.shape == (len(rows), V)
        self.calls.append((rows.clone(), logits.detach().clone(), step))
        if not self.eos_at:
            return logits.argmax(-1)
        out = logits.index_fill(-1, torch.tensor([EOS]), float("-inf")).argmax(-1)  # EOS only when told
        for i, r in enumerate(rows.tolist()):
            if self.eos_at.get(r) == step:
                out[i] = EOS
        return out


def both(model, *args, **kw) -> tuple[Generation, Generation]:
    return generate(model, *args, use_cache=True, **kw), generate(model, *args, use_cache=False, **kw)


def assert_same(a: Generation, b: Generation):
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.lengths, b.lengths)


# --- tokens: cached == uncached for every objective -------------------------------------------
@pytest.mark.parametrize("name", METHODS)
def test_greedy_equal_length_prompts(name):
    model = tiny(name)
    x = torch.tensor(prompts([7] * 5))
    a, b = both(model, x, 9)
    assert_same(a, b)
    assert a.tokens.shape == (5, 9) and a.lengths.tolist() == [9] * 5


@pytest.mark.parametrize("name", METHODS)
def test_cached_decoding_never_recomputes_the_prefix(name):
    model = tiny(name)

    def no_full_forward(*args, **kw):
        raise AssertionError("logits() called: the cache was not used")

    model.logits = no_full_forward
    generate(model, prompts([3, 6]), 5, eos_id=EOS)


@pytest.mark.parametrize("name", METHODS)
def test_sampling_variable_prompts_budgets_and_eos(name):
    model = tiny(name)
    ps, budgets = prompts([3, 9, 1, 6, 4, 12, 2, 5]), [10, 4, 12, 0, 7, 9, 11, 3]
    # a stop token the model actually emits early in some row (any id can play EOS here)
    free = generate(model, ps, budgets, temperature=1.3, top_k=8, generator=torch.Generator().manual_seed(5))
    eos = free.tolist()[2][1]
    ga, gb = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = generate(model, ps, budgets, temperature=1.3, top_k=8, generator=ga, eos_id=eos)
    b = generate(model, ps, budgets, temperature=1.3, top_k=8, generator=gb, eos_id=eos, use_cache=False)
    assert_same(a, b)
    assert torch.equal(ga.get_state(), gb.get_state())  # same random draws consumed
    rows = a.tolist()
    assert [len(r) for r in rows] == a.lengths.tolist()
    assert all(len(r) <= n for r, n in zip(rows, budgets)) and rows[3] == []
    assert all(eos not in r[:-1] for r in rows)
    assert any(r and r[-1] == eos and len(r) < n for r, n in zip(rows, budgets)), "no row stopped at EOS"


@pytest.mark.parametrize("name", METHODS)
def test_pick_contract_with_rows_stopping_at_different_steps(name):
    """Manhattan's pick(rows, logits, step): same calls with and without the cache, while
    finished rows leave the cache batch (compaction) at several points."""
    model = tiny(name)
    ps = prompts([2, 5, 3, 8, 2, 6, 4, 3, 7, 2])
    eos_at = {0: 1, 2: 1, 3: 2, 5: 4, 6: 4, 7: 4, 9: 7}
    ra, rb = Recorder(eos_at), Recorder(eos_at)
    a = generate(model, ps, 12, pick=ra, eos_id=EOS)
    b = generate(model, ps, 12, pick=rb, eos_id=EOS, use_cache=False)
    assert_same(a, b)
    assert len(ra.calls) == len(rb.calls) == 12
    for (rows_a, lg_a, s_a), (rows_b, lg_b, s_b) in zip(ra.calls, rb.calls):
        assert torch.equal(rows_a, rows_b) and s_a == s_b
        torch.testing.assert_close(lg_a, lg_b, rtol=0, atol=1e-10)
    assert a.lengths.tolist() == [2, 12, 2, 3, 12, 5, 5, 5, 12, 8]


# --- logits ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", METHODS)
def test_float32_logits_match_and_prompt_step_is_bit_identical(name):
    model = tiny(name, torch.float32)
    ps = prompts([4, 11, 6, 9])
    ra, rb = Recorder(), Recorder()
    generate(model, ps, 14, pick=ra)
    generate(model, ps, 14, pick=rb, use_cache=False)
    assert torch.equal(ra.calls[0][1], rb.calls[0][1])  # the prefill runs the uncached code
    worst = max((a[1] - b[1]).abs().max().item() for a, b in zip(ra.calls, rb.calls))
    scale = max(1.0, max(b[1].abs().max().item() for b in rb.calls))
    assert worst <= F32_RTOL * scale, (worst, scale)


@pytest.mark.parametrize("name", METHODS)
def test_logits_cached_fed_in_chunks_equals_full_forward(name):
    model = tiny(name)
    x = torch.randint(1, V, (3, 13), generator=torch.Generator().manual_seed(2))
    full = model.logits(x)
    cache = model.make_cache(3, 13, "cpu")
    parts = [model.logits_cached(x[:, a:b], cache) for a, b in ((0, 5), (5, 6), (6, 10), (10, 13))]
    torch.testing.assert_close(torch.cat(parts, 1), full, rtol=0, atol=1e-10)
    assert cache.pos.tolist() == [13] * 3 and cache.used == 13


@pytest.mark.parametrize("model_kw", [dict(pos_embedding="learned", mlp="gelu", norm="layer", bias=True),
                                      dict(n_layer=1, n_head=4)])
def test_model_variants(model_kw):
    for name in ("gpt", "mtp"):  # mtp with n_layer=1 has an empty trunk
        model = tiny(name, **model_kw)
        ps = prompts([5, 2, 8])
        assert_same(*both(model, ps, [6, 9, 3], eos_id=EOS))


# --- fallbacks and errors ----------------------------------------------------------------------
class NoCache(nn.Module):
    """A model with only ``logits`` (like the Manhattan oracle): decoding recomputes it."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def logits(self, tokens, layout=None):
        return self.inner.logits(tokens)


def test_model_without_cache_decodes_by_recomputing():
    inner = tiny("gpt")
    ps = prompts([3, 7, 5])
    assert_same(generate(NoCache(inner), ps, 8, eos_id=EOS), generate(inner, ps, 8, eos_id=EOS))


def test_uncached_equal_length_decoding_is_the_previous_implementation():
    """Bit-identical to the pre-cache loop (cat + logits[:, -1]), RNG draws included."""
    model = tiny("gpt", torch.float32)
    x = torch.tensor(prompts([6] * 7))
    for temperature, top_k in ((0.0, None), (1.0, None), (0.8, 5)):
        g_old, g_new = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        seq = x
        for _ in range(8):
            seq = torch.cat([seq, sample_next(model.logits(seq)[:, -1], temperature, top_k, g_old)[:, None]], 1)
        new = generate(model, x, 8, temperature=temperature, top_k=top_k, generator=g_new, use_cache=False)
        assert torch.equal(new.tokens, seq[:, 6:])
        assert torch.equal(g_old.get_state(), g_new.get_state())


def test_block_size_is_enforced_alike():
    model = tiny("gpt", block_size=10)
    generate(model, prompts([4]), 7)  # feeds 4 + 6 = 10 tokens: fits
    for use_cache in (True, False):
        with pytest.raises(ValueError, match="block_size"):
            generate(model, prompts([4]), 8, use_cache=use_cache)


def test_pick_and_temperature_are_exclusive_and_empty_batches_work():
    model = tiny("gpt")
    with pytest.raises(ValueError):
        generate(model, prompts([3]), 4, pick=Recorder(), temperature=1.0)
    out = generate(model, prompts([3, 4]), 0)
    assert out.tokens.shape == (2, 0) and out.tolist() == [[], []]


def test_cache_select_keeps_rows():
    cache = KVCache(3, 8, "cpu")
    layer = nn.Identity()
    q = torch.randn(3, 2, 4, 6)
    cache.attend(layer, q, q, q)
    cache.advance(4)
    K = cache._kv[layer][0].clone()
    cache.select(torch.tensor([2, 0]))
    assert cache.batch_size == 2 and torch.equal(cache._kv[layer][0], K[[2, 0]])
