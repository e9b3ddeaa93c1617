"""ObjectiveLM (nextlat.evaluation.harness): the harness's three request kinds, each checked
against a direct computation written here (one unbatched forward per scored request)."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from nextlat.evaluation.harness import ObjectiveLM, _cut
from nextlat.objectives.base import build_objective

ALPHABET = "#abcdefghijklmnopqrstuvwxyz .,"  # a character tokenizer; "#" is the EOS id 0
EOS, BLOCK = 0, 16


def encode(text):
    return [ALPHABET.index(c) for c in text]


def decode(ids):
    return "".join(ALPHABET[i] for i in ids)


def tiny(method="gpt", **keys):
    torch.manual_seed(0)
    obj = build_objective({"vocab_size": len(ALPHABET), "n_layer": 1, "n_head": 2, "n_embd": 32,
                           "block_size": BLOCK, "eos_id": EOS}, {"name": method, **keys})
    with torch.no_grad():  # larger weights than the default init: peaked, well-separated logits
        for p in obj.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3)
    return obj.eval()


@pytest.fixture(scope="module")
def model(one_thread_module):
    return tiny()


def reqs(*args):
    return [SimpleNamespace(args=a) for a in args]


@torch.no_grad()
def direct_logprob(obj, ctx_ids, cont_ids):
    """log P(cont | ctx) from one forward of ctx + cont[:-1] (at most BLOCK inputs, cut on the left)."""
    ids = (ctx_ids + cont_ids)[-(BLOCK + 1):]
    logp = F.log_softmax(obj.logits(torch.tensor([ids[:-1]]))[0].float(), -1)
    n = len(cont_ids)
    return sum(float(logp[len(ids) - 1 - n + k, t]) for k, t in enumerate(cont_ids))


@torch.no_grad()
def greedy(obj, ids, n):
    """n greedy tokens after ids, by recomputing the logits of the whole prefix (no cache)."""
    ids = list(ids)
    for _ in range(n):
        ids.append(int(obj.logits(torch.tensor([ids]))[0, -1].argmax()))
    return ids[-n:]


def test_loglikelihood_matches_direct_computation_in_request_order(model):
    lm = ObjectiveLM(model, encode, decode, EOS, batch_size=3)
    long_context = "the quick brown fox jumps over it"  # longer than BLOCK: cut on the left
    cases = [("ab", "c"), ("", "hello"), ("a cat", " sat on"), ("x", "yz"), (long_context, " again"),
             ("ab", "c"), ("the dog ", "ran")]  # a duplicate, and a trailing space to move
    got = lm.loglikelihood(reqs(*cases))
    assert len(got) == len(cases) and all(isinstance(g, tuple) and len(g) == 2 for g in got)
    for (ctx, cont), (logp, _) in zip(cases, got):
        if ctx.endswith(" "):  # the harness scores the space as part of the continuation
            ctx, cont = ctx.rstrip(), " " + cont
        want = direct_logprob(model, [EOS] + encode(ctx), encode(cont))
        assert logp == pytest.approx(want, abs=1e-4), (ctx, cont)
    assert got[0] == got[5]
    # the trailing-space case really differs from scoring "ran" after "the dog "
    assert got[6][0] != pytest.approx(direct_logprob(model, [EOS] + encode("the dog "), encode("ran")), abs=1e-3)
    assert lm.requests["loglikelihood"] == len(cases)


def test_is_greedy_exactly_on_the_argmax_path(model):
    lm = ObjectiveLM(model, encode, decode, EOS, batch_size=4)
    ctx = "once upon"
    path = greedy(model, [EOS] + encode(ctx), 3)
    assert EOS not in path[:2]
    wrong = path[:2] + [(path[2] % (len(ALPHABET) - 1)) + 1]  # another token at the last step
    (_, on_path), (_, off_path), (_, first_only) = lm.loglikelihood(
        reqs((ctx, decode(path)), (ctx, decode(wrong)), (ctx, decode(path[:1]))))
    assert on_path and first_only and not off_path


def test_rolling_short_text_is_sum_of_token_logprobs_after_eos(model):
    lm = ObjectiveLM(model, encode, decode, EOS)
    text = "a short text."  # 13 tokens < BLOCK
    (got,) = lm.loglikelihood_rolling(reqs((text,)))
    with torch.no_grad():
        ids = [EOS] + encode(text)
        logp = F.log_softmax(model.logits(torch.tensor([ids[:-1]]))[0], -1)
    want = float(sum(logp[t, ids[t + 1]] for t in range(len(ids) - 1)))
    assert got == pytest.approx(want, abs=1e-4)


def test_rolling_long_text_uses_disjoint_windows(model):
    """Each token is predicted once: tokens 0..L-1 after EOS + the text before them; later
    tokens in blocks [s, s + L), each read from the window of L inputs ending before the
    block's last token (so the last, partial block still sees L inputs)."""
    L = 8
    lm = ObjectiveLM(model, encode, decode, EOS, max_length=L, batch_size=2)
    texts = ["the cat sat on the mat and then it slept.", "abc", "exactly eight"[:L]]
    got = lm.loglikelihood_rolling(reqs(*[(t,) for t in texts]))
    for text, value in zip(texts, got):
        ids = encode(text)
        want = 0.0
        for j in range(len(ids)):  # one forward per token, with the context it should see
            if j < L:
                ctx = [EOS] + ids[:j]
            else:
                start = L * (j // L)
                end = min(start + L, len(ids))
                ctx = ids[end - 1 - L:j]
            assert len(ctx) <= L
            with torch.no_grad():
                want += float(F.log_softmax(model.logits(torch.tensor([ctx]))[0, -1], -1)[ids[j]])
        assert value == pytest.approx(want, abs=1e-4), text
    assert lm.loglikelihood_rolling(reqs(("",))) == [0.0]


def test_generate_until_is_greedy_decoding_cut_at_until(model):
    lm = ObjectiveLM(model, encode, decode, EOS, batch_size=2, max_gen_toks=6)
    prompts = ["the cat", "a", "the quick brown fox jumps"]  # the last one is cut to fit
    plain = [decode(greedy(model, ([EOS] + encode(p))[-(BLOCK - 6):], 6)) for p in prompts]
    assert all("#" not in s for s in plain)  # (this seed never ends a document early)
    stop = plain[0][3]  # a character the first continuation contains
    got = lm.generate_until(reqs(*[(p, {"until": [stop, "zz"]}) for p in prompts]))
    assert got == [_cut(s, [stop]) for s in plain]
    assert got[0] == plain[0][:plain[0].index(stop)]
    # a per-request budget, and no stop string
    (short,) = lm.generate_until(reqs(("the cat", {"until": [], "max_gen_toks": 2})))
    assert short == plain[0][:2]


def test_sampled_generation_follows_the_seed(model):
    hot = {"until": [], "max_gen_toks": 8, "do_sample": True, "temperature": 5.0}
    prompts = ["the cat", "a dog", "it was"]

    def sample(seed):
        lm = ObjectiveLM(model, encode, decode, EOS, seed=seed)
        return lm.generate_until(reqs(*[(p, hot) for p in prompts]))

    greedy_out = ObjectiveLM(model, encode, decode, EOS).generate_until(
        reqs(*[(p, {"until": [], "max_gen_toks": 8}) for p in prompts]))
    assert sample(1) == sample(1) and sample(1) != sample(2) and sample(1) != greedy_out


def test_generate_stops_at_eos_and_drops_it():
    class AlwaysEOS:  # a model whose next token is always EOS, then "a"
        model_cfg = SimpleNamespace(block_size=BLOCK)

        def eval(self):
            return self

        def logits(self, tokens, layout=None):
            out = torch.zeros(*tokens.shape, len(ALPHABET))
            out[..., EOS] = 1.0
            return out

    lm = ObjectiveLM(AlwaysEOS(), encode, decode, EOS, max_gen_toks=5)
    assert lm.generate_until(reqs(("abc", {"until": ["."]}), ("", {"until": []}))) == ["", ""]


@pytest.mark.parametrize("method,keys", [("mtp", {"horizon": 2}), ("jtp", {"horizon": 2}), ("bst", {}),
                                         ("nextlat", {"horizon": 2, "dyn_hidden": 32})])
def test_every_objective_scores_through_its_logits(method, keys, one_thread_module):
    obj = tiny(method, **keys)
    lm = ObjectiveLM(obj, encode, decode, EOS, batch_size=2)
    cases = [("ab", "cd"), ("", "xyz"), ("hello there", " you")]
    for (ctx, cont), (logp, _) in zip(cases, lm.loglikelihood(reqs(*cases))):
        assert logp == pytest.approx(direct_logprob(obj, [EOS] + encode(ctx), encode(cont)), abs=1e-4)
    path = greedy(obj, [EOS] + encode("ab"), 5)
    path = path[:path.index(EOS)] if EOS in path else path
    assert lm.generate_until(reqs(("ab", {"until": [], "max_gen_toks": 5}))) == [decode(path)]


def test_rejects_max_length_beyond_block(model):
    with pytest.raises(ValueError, match="block_size"):
        ObjectiveLM(model, encode, decode, EOS, max_length=BLOCK + 1)


def test_cut_at_the_earliest_stop_string():
    assert _cut("hello world.", [".", "o"]) == "hell"
    assert _cut("hello world.", ["", "zz"]) == "hello world."
    assert _cut("hello world.", [" w", "."]) == "hello"


@torch.no_grad()
def test_a_continuation_longer_than_the_window_is_scored_in_pieces(model):
    """Each continuation token is scored once, after as much preceding text as a window
    holds: pieces of BLOCK tokens, each conditioned on everything before it (cut on the left)."""
    lm = ObjectiveLM(model, encode, decode, EOS, batch_size=4)
    ctx, cont = "a cat", " sat on the warm mat by the door all day long"  # 45 > BLOCK continuation tokens
    ids = [EOS] + encode(ctx)
    c = encode(cont)
    assert len(c) > 2 * BLOCK
    want = sum(direct_logprob(model, ids + c[:k], c[k:k + BLOCK]) for k in range(0, len(c), BLOCK))
    (logp, is_greedy), = lm.loglikelihood(reqs((ctx, cont)))
    assert logp == pytest.approx(want, abs=1e-4)
    assert is_greedy is False  # a random model does not predict this sentence
