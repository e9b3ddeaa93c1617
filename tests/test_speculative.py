"""Speculative sampling (nextlat.decoding.speculative): exact in distribution, equal to
greedy decoding at temperature 0, the cache rolled back to the accepted prefix, and the
acceptance counts of drafters that are always right or always wrong."""
import itertools

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from nextlat.decoding import generate
from nextlat.decoding.drafters import SELF_DRAFTING, self_drafter
from nextlat.decoding.speculative import (Calibration, Draft, DraftLength, ModelDrafter, SpeculativeStats,
                                          draft_tokens, speculative_generate, to_probs, verify, verify_greedy)
from nextlat.objectives.base import build_objective

EOS = 0


def tiny(vocab: int, seed: int, method: str = "gpt", **keys):
    torch.manual_seed(seed)
    obj = build_objective({"vocab_size": vocab, "n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 32,
                           "eos_id": EOS}, {"name": method, **keys})
    with torch.no_grad():  # spread-out logits, so target and drafter really differ
        for p in obj.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.5)
    return obj.eval()


class Oracle:
    """Drafts the target's own greedy continuation (``right``) or, at every position, a token
    other than it (wrong), as one-hot distributions."""

    max_draft = None

    def __init__(self, target, right: bool):
        self.target, self.right = target, right

    def observe(self, target, tokens, cache):
        return target.logits_cached(tokens, cache)

    @torch.no_grad()
    def propose(self, context, anchor, length, temperature, generator, calibration=None):
        seq, probs = context.clone(), []
        V = self.target.model_cfg.vocab_size
        for _ in range(length.gamma):
            best = int(self.target.logits(seq[None])[0, -1].argmax())
            tok = best if self.right else (best + 1) % V
            probs.append(torch.nn.functional.one_hot(torch.tensor(tok), V).float())
            seq = torch.cat([seq, torch.tensor([tok])])
        return Draft(seq[len(context):], torch.stack(probs), torch.ones(length.gamma))


SELF = [("nextlat", {"horizon": 1, "dyn_hidden": 16}), ("nextlat", {"horizon": 2, "dyn_hidden": 16}),
        ("mtp", {"horizon": 2}), ("jtp", {"horizon": 2}), ("mtp", {"horizon": 1})]


def test_verify_follows_the_acceptance_rule():
    p = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    sure = Draft(torch.tensor([0]), torch.tensor([[0.4, 0.3, 0.3]]), torch.ones(1))  # p/q >= 1: always accepted
    gen = torch.Generator().manual_seed(0)
    assert all(verify(p, sure, gen)[0] == 1 for _ in range(50))
    never = Draft(torch.tensor([2]), torch.tensor([[0.2, 0.2, 0.6]]), torch.ones(1))  # p(x) = 0: always rejected
    for _ in range(50):
        n, tok = verify(p, never, gen)
        # the residual max(0, p - q) is (0.3, 0.3, 0): never the rejected token
        assert n == 0 and tok in (0, 1)


@pytest.mark.slow  # ~25 s: 2 x 1,500 generations
@pytest.mark.parametrize("drafter", ["model", "nextlat"])
def test_samples_follow_the_targets_exact_distribution(drafter, one_thread_module):
    """Chi-square of 3-token continuations (27 outcomes) against the target's own
    probabilities, computed exactly from its logits, over 1,500 seeded samples (gamma 2:
    an accepted first draft, a rejected second one and the bonus token all occur), with a
    separate small model as drafter and with NextLat drafting for itself."""
    V, n_new, N, gamma = 3, 3, 1500, 2
    if drafter == "model":
        target, draft_model = tiny(V, 0), tiny(V, 1)
        make = lambda: ModelDrafter(draft_model)  # noqa: E731
    else:
        target = tiny(V, 0, "nextlat", horizon=1, dyn_hidden=16)
        make = lambda: self_drafter(target)  # noqa: E731
    prompt = [EOS, 1]
    exact = {}
    with torch.no_grad():
        for seq in itertools.product(range(V), repeat=n_new):
            ids = torch.tensor([prompt + list(seq)])
            logp = torch.log_softmax(target.logits(ids)[0].double(), -1)
            exact[seq] = float(sum(logp[len(prompt) - 1 + k, t] for k, t in enumerate(seq)).exp())
    gen = torch.Generator().manual_seed(1234)
    counts = dict.fromkeys(exact, 0)
    accepted = rejected = 0
    for _ in range(N):
        out, stats = speculative_generate(target, make(), prompt, n_new, gamma, temperature=1.0, generator=gen)
        counts[tuple(out)] += 1
        accepted += sum(stats.accepted)
        rejected += sum(stats.checked) - sum(stats.accepted)
    obs = np.array([counts[s] for s in exact], dtype=float)
    exp = np.array([exact[s] for s in exact]) * N
    assert chisquare(obs, exp).pvalue > 1e-3
    assert accepted > 0 and rejected > 0  # drafts were really used, and the residual was sampled
    if drafter == "model":  # a sampler that ignored the acceptance rule (kept every draft) is caught
        wrong = dict.fromkeys(exact, 0)
        for _ in range(N):
            seq = ModelDrafter(draft_model).propose(torch.tensor(prompt), 0, DraftLength(n_new), 1.0, gen)
            wrong[tuple(seq.tokens.tolist())] += 1
        assert chisquare(np.array([wrong[s] for s in exact], dtype=float), exp).pvalue < 1e-6


@pytest.mark.parametrize("method,keys", [("gpt", {}), ("nextlat", {"horizon": 1, "dyn_hidden": 16}),
                                         ("mtp", {"horizon": 2}), ("jtp", {"horizon": 2})])
@pytest.mark.parametrize("gamma", [1, 2, 5])
def test_greedy_speculative_equals_greedy_decoding(method, keys, gamma, one_thread_module):
    target = tiny(11, 0, method, **keys)
    prompt = [EOS, 3, 4, 5]
    want = generate(target, [prompt], 20, temperature=0.0).tolist()[0]
    for drafter in (ModelDrafter(tiny(11, 7)), Oracle(target, True), Oracle(target, False)):
        got, _ = speculative_generate(target, drafter, prompt, 20, gamma, temperature=0.0)
        assert got == want, (method, gamma, type(drafter).__name__)


@pytest.mark.parametrize("gamma", [2, 4])
def test_always_right_and_always_wrong_drafters(gamma, one_thread_module):
    target = tiny(11, 0)
    n_new = 1 + 3 * (gamma + 1)  # the prefill's token, then whole steps
    _, right = speculative_generate(target, Oracle(target, True), [EOS, 2], n_new, gamma, temperature=0.0)
    assert right.steps == 3 and right.accepted_per_step == gamma and right.accepted == [3] * gamma
    _, wrong = speculative_generate(target, Oracle(target, False), [EOS, 2], n_new, gamma, temperature=0.0)
    assert wrong.accepted_per_step == 0 and wrong.steps == n_new - 1 and wrong.emitted == n_new


def test_the_cache_is_rolled_back_to_the_accepted_prefix(one_thread_module):
    """After a run with rejections, the cached keys/values of the kept prefix equal a fresh
    prefill of it, and feeding the next token gives the same logits as without the cache."""
    from nextlat.decoding import speculative

    target, caches = tiny(11, 0), []
    real = target.make_cache
    target.make_cache = lambda *a, **k: caches.append(real(*a, **k)) or caches[-1]
    prompt = [EOS, 3, 4]
    out, stats = speculative.speculative_generate(target, ModelDrafter(tiny(11, 7)), prompt, 12, 4,
                                                  temperature=1.0, generator=torch.Generator().manual_seed(3))
    assert sum(stats.accepted) < sum(stats.proposed)  # some drafts were rejected
    cache = caches[0]
    kept = prompt + out[:-1]  # the last emitted token is pending: not in the cache yet
    assert int(cache.pos[0]) == len(kept)
    fresh = real(1, 32, "cpu")
    with torch.no_grad():
        target.logits_cached(torch.tensor([kept]), fresh)
        for layer, (K, V) in fresh._kv.items():
            K2, V2 = cache._kv[layer]
            torch.testing.assert_close(K2[:, :, :len(kept)], K[:, :, :len(kept)], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(V2[:, :, :len(kept)], V[:, :, :len(kept)], atol=1e-5, rtol=1e-5)
        nxt = target.logits_cached(torch.tensor([[out[-1]]]), cache)[0, -1]
        full = target.logits(torch.tensor([kept + [out[-1]]]))[0, -1]
    torch.testing.assert_close(nxt, full, atol=1e-4, rtol=1e-4)


def test_to_probs_is_one_hot_at_temperature_zero():
    logits = torch.tensor([[0.1, 2.0, -1.0]])
    assert to_probs(logits, 0.0).tolist() == [[0.0, 1.0, 0.0]]
    assert to_probs(logits, 1.0).sum().item() == pytest.approx(1.0)


def test_eos_stops_and_budget_is_kept(one_thread_module):
    target = tiny(11, 0)
    out, _ = speculative_generate(target, Oracle(target, True), [EOS, 2], 7, 3, temperature=0.0)
    assert len(out) == 7
    first = out[0]
    out2, _ = speculative_generate(target, Oracle(target, True), [EOS, 2], 7, 3, temperature=0.0, eos_id=first)
    assert out2 == [first]


# --- self-drafters -----------------------------------------------------------------------
@pytest.mark.parametrize("method,keys", SELF)
def test_observe_is_the_objectives_cached_forward(method, keys, one_thread_module):
    """A self-drafter's verifying pass gives exactly ``logits_cached``'s logits and leaves the
    cache at the same position, in a prefill and in a later multi-token step."""
    target = tiny(13, 0, method, **keys)
    drafter = self_drafter(target)
    a, b = target.make_cache(1, 32, "cpu"), target.make_cache(1, 32, "cpu")
    with torch.no_grad():
        for chunk in ([EOS, 3, 4, 5], [6, 7, 8]):
            want = target.logits_cached(torch.tensor([chunk]), a)
            got = drafter.observe(target, torch.tensor([chunk]), b)
            assert torch.equal(got, want)
            assert int(a.pos[0]) == int(b.pos[0]) and a.used == b.used


def _manual_drafts(target, context, n):
    """Greedy drafts after ``context`` (its last token pending) computed from the uncached
    full forward, by the paper's definition of each method's drafting."""
    m, ids = target, torch.tensor([context[:-1]])
    pending, out = context[-1], []
    with torch.no_grad():
        if m.name == "nextlat":
            s = m.trunk(ids)[0, -1]
            tok = pending
            for _ in range(n):
                s = m.dynamics(s, m.trunk.embed(torch.tensor(tok)))
                tok = int(m.head(s).argmax())
                out.append(tok)
        elif m.name == "mtp":
            z, mask, pos = m._trunk(ids, None)
            for k in range(1, n + 1):  # head k at the last position: the token k after the pending one
                out.append(int(m.head(m._head_states(k, z, mask, pos, ids.size(1))[0, -1]).argmax()))
        else:  # jtp: slots (x_t, pending, drafts...) at the last position
            h = m.trunk(ids)[:, -1:]
            slots = [context[-2], pending]
            for _ in range(n):
                tok = int(m.head(m.fetch_outputs(h, torch.tensor([[slots]]))[0, 0, -1]).argmax())
                out.append(tok)
                slots.append(tok)
    return out


@pytest.mark.parametrize("method,keys", SELF)
def test_self_drafts_follow_each_methods_definition(method, keys, one_thread_module):
    target = tiny(13, 0, method, **keys)
    drafter = self_drafter(target)
    prompt = [EOS, 3, 4, 5, 6]
    cache = target.make_cache(1, 32, "cpu")
    logits = drafter.observe(target, torch.tensor([prompt]), cache)
    pending = int(logits[0, -1].argmax())
    n = drafter.max_draft or 4
    draft = drafter.propose(torch.tensor(prompt + [pending]), len(prompt) - 1, DraftLength(n), 0.0, None)
    assert draft.tokens.tolist() == _manual_drafts(target, prompt + [pending], n)
    assert draft.probs is None and draft.confidence.shape == (n,)  # greedy: one-hot q implied
    assert bool(((draft.confidence > 0) & (draft.confidence <= 1)).all())
    # sampled at T = 1: q is the drafter's softmax, and the confidence its top probability
    sampled = drafter.propose(torch.tensor(prompt + [pending]), len(prompt) - 1, DraftLength(n), 1.0,
                              torch.Generator().manual_seed(0))
    assert sampled.probs.shape == (n, 13)
    torch.testing.assert_close(sampled.probs.sum(-1), torch.ones(n))
    torch.testing.assert_close(sampled.confidence, sampled.probs.max(-1).values)


@pytest.mark.parametrize("method,keys", SELF)
@pytest.mark.parametrize("length", [DraftLength(1), DraftLength(3), DraftLength(6), DraftLength(6, 0.2)],
                         ids=lambda x: x.name)
def test_self_speculative_greedy_equals_greedy_decoding(method, keys, length, one_thread_module):
    target = tiny(13, 0, method, **keys)
    prompt = [EOS, 3, 4, 5]
    want = generate(target, [prompt], 24, temperature=0.0).tolist()[0]
    got, stats = speculative_generate(target, self_drafter(target), prompt, 24, length, temperature=0.0)
    assert got == want
    cap = min(length.gamma, self_drafter(target).max_draft or length.gamma)
    assert len(stats.proposed) <= cap and stats.emitted == 24


def test_self_drafting_methods_are_the_registered_ones():
    from nextlat.objectives.base import available

    assert set(SELF_DRAFTING) <= set(available())
    with pytest.raises(ValueError, match="cannot draft for itself"):
        self_drafter(tiny(13, 0, "gpt"))


def test_adaptive_length_stops_on_the_confidence_product():
    """Confidences 0.9, 0.5, 0.9, ...: the products are 0.9, 0.45, 0.405, so a threshold of
    0.4 keeps three drafts, 0.42 two, 0.5 one; a fixed length ignores them."""
    conf = [0.9, 0.5, 0.9, 0.9]

    def next_logits(k, tok):  # two tokens: token 0 with probability conf[k]
        c = conf[k]
        return torch.tensor([np.log(c), np.log(1 - c)], dtype=torch.float32)

    for threshold, n in ((0.4, 3), (0.42, 2), (0.5, 1), (0.95, 0)):
        draft = draft_tokens(next_logits, 0, DraftLength(4, threshold), 0.0, None)
        assert len(draft) == n, threshold
        assert draft.confidence.tolist() == pytest.approx(conf[:n])
        sampled = draft_tokens(next_logits, 0, DraftLength(4, threshold), 1.0, torch.Generator().manual_seed(1))
        assert len(sampled) == n  # the stop depends on the top probabilities only, not on the draws
    assert len(draft_tokens(next_logits, 0, DraftLength(4), 0.0, None)) == 4


def test_acceptance_by_position_is_conditional():
    stats = SpeculativeStats()
    for drafted, accepted in ((3, 3), (3, 1), (3, 0), (2, 2)):
        stats.record(drafted, accepted)
    assert stats.proposed == [4, 4, 3]
    # checked: position 1 always; 2 after an accepted 1 (3 steps); 3 after accepted 1-2 (1 step: the 3/3)
    assert stats.checked == [4, 3, 1]
    assert stats.accepted == [3, 2, 1]
    assert stats.acceptance_by_position() == [0.75, pytest.approx(2 / 3), 1.0]
    assert stats.accepted_per_step == pytest.approx(6 / 4)
    merged = SpeculativeStats()
    merged.merge(stats)
    merged.merge(stats)
    assert merged.checked == [8, 6, 2] and merged.steps == 8


def test_generation_stops_at_the_models_positions(one_thread_module):
    target = tiny(13, 0, "nextlat", horizon=1, dyn_hidden=16)  # block_size 32
    prompt = [EOS] + [3] * 19
    want = generate(target, [prompt], 13, temperature=0.0).tolist()[0]
    got, _ = speculative_generate(target, self_drafter(target), prompt, 40, 5, temperature=0.0)
    assert len(got) == 13 and got == want  # 20 + 13 - 1 = 32 positions fed


def test_calibration_learns_acceptance_by_confidence():
    cal = Calibration()
    assert cal(0.05) == pytest.approx(0.9)  # the optimistic prior
    for _ in range(200):  # drafts of confidence ~0.05 always accepted, ~0.6 always rejected
        cal.update(torch.tensor([0.05, 0.6]), 1)
    assert cal(0.04) > 0.99 and cal(0.7) < 0.1
    assert cal(0.55) == cal(0.99) and cal(0.45) != cal(0.55)  # bins of -log2(confidence)
    # only checked drafts count: after a rejection at position 0, position 1 is not an outcome
    before = list(cal.seen)
    cal.update(torch.tensor([0.6, 0.05]), 0)
    assert sum(cal.seen) == sum(before) + 1


def test_greedy_verification_equals_the_general_rule():
    gen = torch.Generator().manual_seed(0)
    for trial in range(50):
        logits = torch.randn(4, 7, generator=gen)
        best = logits.argmax(-1)
        tokens = torch.where(torch.rand(3, generator=gen) < 0.7, best[:3], (best[:3] + 1) % 7)
        draft = Draft(tokens, None, torch.ones(3))
        assert verify_greedy(logits, draft) == verify(to_probs(logits, 0.0), draft, gen)


@pytest.mark.parametrize("threshold", [0.5, 0.95])
def test_adaptive_stopping_keeps_sampling_exact(threshold):
    """Drafter = target = (0.9, 0.1): whatever the stop rule, the first emitted token must be 0
    with probability 0.9. Stopping on the drawn token's own probability would keep draft 0 more
    often than q says (0.99 emitted at threshold 0.5); stopping on the top probability, known
    before the draw, does not."""
    logits = torch.log(torch.tensor([0.9, 0.1]))
    p = torch.softmax(logits, -1).expand(3, 2)
    gen = torch.Generator().manual_seed(0)
    n, zeros = 6000, 0
    for _ in range(n):
        draft = draft_tokens(lambda k, tok: logits, 0, DraftLength(2, threshold), 1.0, gen)
        m, nxt = verify(p[: len(draft) + 1], draft, gen)
        first = int(draft.tokens[0]) if m else nxt
        zeros += first == 0
    assert abs(zeros / n - 0.9) < 4 * (0.09 / n) ** 0.5
