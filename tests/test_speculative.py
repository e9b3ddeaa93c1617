"""Speculative sampling (nextlat.decoding.speculative): exact in distribution, equal to
greedy decoding at temperature 0, the cache rolled back to the accepted prefix, and the
acceptance counts of drafters that are always right or always wrong."""
import itertools

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from nextlat.decoding import generate
from nextlat.decoding.speculative import Draft, ModelDrafter, speculative_generate, to_probs, verify
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

    def __init__(self, target, right: bool):
        self.target, self.right = target, right

    @torch.no_grad()
    def propose(self, context, gamma, temperature, generator):
        seq, probs = context.clone(), []
        V = self.target.model_cfg.vocab_size
        for _ in range(gamma):
            best = int(self.target.logits(seq[None])[0, -1].argmax())
            tok = best if self.right else (best + 1) % V
            probs.append(torch.nn.functional.one_hot(torch.tensor(tok), V).float())
            seq = torch.cat([seq, torch.tensor([tok])])
        return Draft(seq[len(context):], torch.stack(probs))


def test_verify_follows_the_acceptance_rule():
    p = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    sure = Draft(torch.tensor([0]), torch.tensor([[0.4, 0.3, 0.3]]))  # p/q >= 1: always accepted
    gen = torch.Generator().manual_seed(0)
    assert all(verify(p, sure, gen)[0] == 1 for _ in range(50))
    never = Draft(torch.tensor([2]), torch.tensor([[0.2, 0.2, 0.6]]))  # p(x) = 0: always rejected
    for _ in range(50):
        n, tok = verify(p, never, gen)
        # the residual max(0, p - q) is (0.3, 0.3, 0): never the rejected token
        assert n == 0 and tok in (0, 1)


@pytest.mark.slow  # ~20 s: 2,000 generations
def test_samples_follow_the_targets_exact_distribution(one_thread_module):
    """Chi-square of 3-token continuations (27 outcomes) against the target's own
    probabilities, computed exactly from its logits, over 2,000 seeded samples (gamma 2:
    an accepted first draft, a rejected second one and the bonus token all occur)."""
    V, n_new, N, gamma = 3, 3, 2000, 2
    target, draft_model = tiny(V, 0), tiny(V, 1)
    prompt = [EOS, 1]
    exact = {}
    with torch.no_grad():
        for seq in itertools.product(range(V), repeat=n_new):
            ids = torch.tensor([prompt + list(seq)])
            logp = torch.log_softmax(target.logits(ids)[0].double(), -1)
            exact[seq] = float(sum(logp[len(prompt) - 1 + k, t] for k, t in enumerate(seq)).exp())
    gen = torch.Generator().manual_seed(1234)
    counts = dict.fromkeys(exact, 0)
    accepted = 0
    for _ in range(N):
        out, stats = speculative_generate(target, ModelDrafter(draft_model), prompt, n_new, gamma,
                                          temperature=1.0, generator=gen)
        counts[tuple(out)] += 1
        accepted += sum(stats.accepted)
    obs = np.array([counts[s] for s in exact], dtype=float)
    exp = np.array([exact[s] for s in exact]) * N
    assert chisquare(obs, exp).pvalue > 1e-3
    assert accepted > 0  # the drafter's tokens were really used, not only the target's resamples
    # a sampler that ignored the acceptance rule (always keeping the drafts) is caught by the same test
    wrong = dict.fromkeys(exact, 0)
    for _ in range(N):
        seq = ModelDrafter(draft_model).propose(torch.tensor(prompt), n_new, 1.0, gen).tokens.tolist()
        wrong[tuple(seq)] += 1
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
    n_new = 3 * (gamma + 1)  # whole steps only
    _, right = speculative_generate(target, Oracle(target, True), [EOS, 2], n_new, gamma, temperature=0.0)
    assert right.steps == 3 and right.accepted_per_step == gamma and right.accepted == [3] * gamma
    _, wrong = speculative_generate(target, Oracle(target, False), [EOS, 2], n_new, gamma, temperature=0.0)
    assert wrong.accepted_per_step == 0 and wrong.steps == n_new and wrong.emitted == n_new


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
