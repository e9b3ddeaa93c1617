"""NextLat's loss ablations (paper Figs. 12-14): ``terms``, ``token_term`` and ``stop_grad``.

Each switch must change exactly its own term. The objective is compared, value for value
and gradient for gradient, with an independent reference written from the paper's formula
with explicit loops over steps i and positions (b, t). It reuses the model's components
(trunk, p_psi, head weight, embedding table) but none of the objective's loss code
(``loss``, ``forward_terms``, ``rollout``, masks). A tiny float64 model keeps it fast.
"""
from __future__ import annotations

import pytest
import torch

from nextlat import config as nlconfig
from nextlat.config import ConfigError
from nextlat.models.layout import Layout
from nextlat.objectives import Batch, build_objective

V, EOS = 7, 6
LAMBDA_H, LAMBDA_TOK = 0.7, 1.3
TERMS, TOKEN_TERMS, STOP_GRADS = ["both", "smooth_l1", "kl"], ["kl", "ce"], ["both", "target", "head", "none"]
DETACH_TARGET = {"both": True, "target": True, "head": False, "none": False}
FREEZE_HEAD = {"both": True, "target": False, "head": True, "none": False}


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread_module):
    """Tiny models: one intra-op thread (conftest.one_thread_module); also deterministic."""


def tiny_model() -> dict:
    return dict(vocab_size=V, n_layer=1, n_head=2, n_embd=8, block_size=8, eos_id=EOS)


def make(seed: int = 0, horizon: int = 2, **ablation):
    """A float64 NextLat with fixed weights, scaled up from the init so that distributions
    are peaked and a wrong variant moves the loss well beyond the tolerance."""
    torch.manual_seed(seed)
    method = {"name": "nextlat", "horizon": horizon, "lambda_next_h": LAMBDA_H, "lambda_kl": LAMBDA_TOK,
              "dyn_hidden": 12, **ablation}
    obj = build_objective(tiny_model(), method).double()
    with torch.no_grad():
        for m in obj.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Embedding)):
                m.weight.mul_(6.0)
    return obj


def batch() -> Batch:
    """Packed rows of EOS-led documents (9 tokens: 8 inputs) with unsupervised prompts, so
    that both masks (same document; supervised target) matter."""
    x = torch.tensor([[EOS, 1, 2, 3, 4, EOS, 5, 0, 2],
                      [EOS, 3, 3, 1, 0, 5, 4, 2, 1]])
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[0, [0, 1, 5]] = False
    mask[1, [0, 1, 2, 3]] = False
    return Batch(x, mask, packed=True)


def grads_of(obj, loss) -> dict[str, torch.Tensor]:
    obj.zero_grad(set_to_none=True)
    loss.backward()
    return {n: (torch.zeros_like(p) if p.grad is None else p.grad.clone()) for n, p in obj.named_parameters()}


def mean(values: list) -> torch.Tensor:
    return torch.stack(values).mean() if values else torch.zeros((), dtype=torch.double)


def smooth_l1(diff: torch.Tensor) -> torch.Tensor:
    a = diff.abs()
    return torch.where(a < 1, 0.5 * diff**2, a - 0.5)


def reference_parts(obj, b: Batch, *, token_term="kl", detach_target=True, freeze_head=True,
                    detach_teacher=True) -> dict[str, torch.Tensor]:
    """CE, SmoothL1 and token-level terms of the paper's loss, by explicit loops.

    For i = 1..d and each position t with x_{t+1..t+i} in t's document:
    h-hat_{t+i} = p_psi applied i times from h_t with tokens x_{t+1..t+i};
    smooth_l1_i = mean over (t, element) of SmoothL1(h-hat_{t+i} - [sg] h_{t+i});
    token_i = mean over those t whose target x_{t+i+1} is supervised of
      "kl": KL(softmax(head([sg] h_{t+i})) || softmax([sg-]head(h-hat_{t+i})))
      "ce": -log softmax([sg-]head(h-hat_{t+i}))[x_{t+i+1}].
    Each term is the mean over i of its per-step means.
    """
    tokens, sup = b.tokens, b.loss_mask
    x = b.inputs
    B, T = x.shape
    h = obj.trunk(x, Layout.packed(x, EOS))
    W, E = obj.head.weight, obj.trunk.tok_emb.weight
    W_student = W.detach() if freeze_head else W

    ce = mean([-torch.log_softmax(h[r, t] @ W.t(), -1)[tokens[r, t + 1]]
               for r in range(B) for t in range(T) if sup[r, t + 1]])
    sl1_steps, tok_steps = [], []
    for i in range(1, min(obj.horizon, T - 1) + 1):
        sl1_vals, tok_vals = [], []
        for r in range(B):
            for t in range(T - i):
                if (x[r, t + 1: t + i + 1] == EOS).any():  # reading x_{t+1..t+i} leaves the document
                    continue
                pred = h[r, t]
                for j in range(1, i + 1):
                    pred = obj.dynamics(pred, E[x[r, t + j]])
                target = h[r, t + i].detach() if detach_target else h[r, t + i]
                sl1_vals.append(smooth_l1(pred - target).mean())  # D elements per position
                if not sup[r, t + i + 1]:
                    continue
                log_q = torch.log_softmax(pred @ W_student.t(), -1)
                if token_term == "kl":
                    teacher = h[r, t + i] @ W.t()
                    log_p = torch.log_softmax(teacher.detach() if detach_teacher else teacher, -1)
                    tok_vals.append((log_p.exp() * (log_p - log_q)).sum())
                else:
                    tok_vals.append(-log_q[tokens[r, t + i + 1]])
        sl1_steps.append(mean(sl1_vals))
        tok_steps.append(mean(tok_vals))
    return {"ce": ce, "smooth_l1": mean(sl1_steps), "token": mean(tok_steps)}


def reference(obj, b: Batch, *, terms="both", **kw) -> torch.Tensor:
    """CE + lambda_next_h * SmoothL1 and/or lambda_kl * token-level term, as ``terms`` says."""
    p = reference_parts(obj, b, **kw)
    loss = p["ce"]
    if terms in ("both", "smooth_l1"):
        loss = loss + obj.lambda_next_h * p["smooth_l1"]
    if terms in ("both", "kl"):
        loss = loss + obj.lambda_kl * p["token"]
    return loss


def ref_kw(token_term="kl", stop_grad="both", **more) -> dict:
    return {"token_term": token_term, "detach_target": DETACH_TARGET[stop_grad],
            "freeze_head": FREEZE_HEAD[stop_grad], **more}


def assert_same_grads(a: dict, b: dict):
    for n in a:
        torch.testing.assert_close(a[n], b[n], msg=n)


def assert_grads_differ(a: dict, b: dict, what: str, names=None):
    names = names or list(a)
    assert any(not torch.allclose(a[n], b[n], rtol=1e-5, atol=1e-9) for n in names), f"{what}: same gradients"


# --- defaults: the paper's loss ------------------------------------------------------------
def test_defaults_are_the_paper_loss_and_reproduce_it_exactly():
    obj, b = make(), batch()
    s = obj.settings
    assert (s.terms, s.token_term, s.stop_grad) == ("both", "kl", "both")
    out = obj.loss(b)
    ref = reference(obj, b)
    torch.testing.assert_close(out.loss, ref)
    assert_same_grads(grads_of(obj, obj.loss(b).loss), grads_of(obj, reference(obj, b)))
    # naming the defaults changes nothing, bit for bit
    spelled = make(terms="both", token_term="kl", stop_grad="both")
    assert torch.equal(spelled.loss(b).loss, out.loss)
    # the reference has teeth: each term is really in the loss
    p = reference_parts(obj, b)
    assert p["smooth_l1"] > 1e-3 and p["token"] > 1e-3
    assert out.metrics["next_h"] > 0 and out.metrics["kl"] > 0 and "latent_ce" not in out.metrics


# --- terms -------------------------------------------------------------------------------
@pytest.mark.parametrize("token_term", TOKEN_TERMS)
@pytest.mark.parametrize("terms", TERMS)
def test_terms_loss_and_gradients_equal_reference(terms, token_term):
    obj, b = make(terms=terms, token_term=token_term), batch()
    torch.testing.assert_close(obj.loss(b).loss, reference(obj, b, terms=terms, token_term=token_term))
    assert_same_grads(grads_of(obj, obj.loss(b).loss),
                      grads_of(obj, reference(obj, b, terms=terms, token_term=token_term)))


def test_terms_smooth_l1_is_ce_plus_smooth_l1_and_computes_no_token_term():
    obj, b = make(terms="smooth_l1"), batch()
    p = reference_parts(obj, b)
    out = obj.loss(b)
    torch.testing.assert_close(out.loss, p["ce"] + LAMBDA_H * p["smooth_l1"])
    assert out.metrics["kl"] == 0 and "latent_ce" not in out.metrics
    torch.testing.assert_close(out.metrics["next_h"], p["smooth_l1"].detach())
    for step in obj.forward_terms(b)["steps"]:  # the token-level term (and its head product) is not run
        assert set(step) == {"h_mask", "kl_mask", "next_h"}


def test_terms_smooth_l1_gives_p_psi_no_token_level_gradient():
    """With lambda_next_h = 0, p_psi only learns from the token-level term: none when it is off."""
    b = batch()
    off = make(terms="smooth_l1", lambda_next_h=0.0)
    g_off = grads_of(off, off.loss(b).loss)
    dyn = [n for n in g_off if n.startswith("dynamics.")]
    assert dyn and all(g_off[n].abs().max() == 0 for n in dyn)
    on = make(lambda_next_h=0.0)  # the paper's terms: the KL does train p_psi
    g_on = grads_of(on, on.loss(b).loss)
    assert all(g_on[n].abs().max() > 0 for n in dyn if n.endswith("weight") and ".mlp." in n)


def test_terms_kl_is_ce_plus_token_term_and_computes_no_smooth_l1():
    obj, b = make(terms="kl"), batch()
    p = reference_parts(obj, b)
    out = obj.loss(b)
    torch.testing.assert_close(out.loss, p["ce"] + LAMBDA_TOK * p["token"])
    assert out.metrics["next_h"] == 0
    torch.testing.assert_close(out.metrics["kl"], p["token"].detach())
    for step in obj.forward_terms(b)["steps"]:
        assert "next_h" not in step and "kl" in step


def test_terms_kl_with_ce_token_term():
    obj, b = make(terms="kl", token_term="ce"), batch()
    p = reference_parts(obj, b, token_term="ce")
    out = obj.loss(b)
    torch.testing.assert_close(out.loss, p["ce"] + LAMBDA_TOK * p["token"])
    assert out.metrics["next_h"] == 0 and out.metrics["kl"] == 0
    torch.testing.assert_close(out.metrics["latent_ce"], p["token"].detach())


# --- token_term ------------------------------------------------------------------------------
def test_token_term_ce_is_cross_entropy_of_predicted_latents_against_next_tokens():
    obj, b = make(token_term="ce"), batch()
    p = reference_parts(obj, b, token_term="ce")
    out = obj.loss(b)
    torch.testing.assert_close(out.loss, p["ce"] + LAMBDA_H * p["smooth_l1"] + LAMBDA_TOK * p["token"])
    # reported as latent_ce (the trained term); the KL is not computed
    torch.testing.assert_close(out.metrics["latent_ce"], p["token"].detach())
    torch.testing.assert_close(out.metrics["next_h"], p["smooth_l1"].detach())
    assert out.metrics["kl"] == 0 and not out.metrics["latent_ce"].requires_grad
    for step in obj.forward_terms(b)["steps"]:
        assert "kl" not in step and "latent_ce" in step
    # it is another loss than the KL (the check has teeth) ...
    kl = reference_parts(obj, b)["token"]
    assert (kl - p["token"]).abs() > 1e-3
    # ... and, like the KL, only the token-level term moves: CE and SmoothL1 are the paper's
    paper = reference_parts(obj, b)
    torch.testing.assert_close(p["ce"], paper["ce"])
    torch.testing.assert_close(p["smooth_l1"], paper["smooth_l1"])


def test_latent_ce_logging_equals_the_trained_ce_term():
    """``latent_ce`` logs the CE of head(h-hat) at the token-level term's positions: with
    token_term="kl" it is logged only, with "ce" it is the trained term; same value."""
    b = batch()
    logging = make(latent_ce=True).loss(b)
    trained = make(token_term="ce").loss(b).metrics["latent_ce"]
    torch.testing.assert_close(logging.metrics["latent_ce"], trained)
    assert torch.equal(logging.loss, make().loss(b).loss)  # logged, not added to the loss
    only_logged = make(terms="smooth_l1", latent_ce=True).loss(b)  # logged without training it
    torch.testing.assert_close(only_logged.metrics["latent_ce"], trained)
    torch.testing.assert_close(only_logged.loss, make(terms="smooth_l1").loss(b).loss)


# --- stop_grad -----------------------------------------------------------------------------
@pytest.mark.parametrize("token_term", TOKEN_TERMS)
@pytest.mark.parametrize("stop_grad", STOP_GRADS)
def test_stop_grad_gradients_equal_reference(stop_grad, token_term):
    obj, b = make(stop_grad=stop_grad, token_term=token_term), batch()
    kw = ref_kw(token_term, stop_grad)
    out = obj.loss(b)
    torch.testing.assert_close(out.loss, reference(obj, b, **kw))  # a stop-gradient keeps the value
    torch.testing.assert_close(out.loss, make(token_term=token_term).loss(b).loss)
    assert_same_grads(grads_of(obj, obj.loss(b).loss), grads_of(obj, reference(obj, b, **kw)))


@pytest.mark.parametrize("stop_grad", STOP_GRADS)
def test_smooth_l1_target_gets_gradient_only_without_its_stop_grad(stop_grad):
    """SmoothL1 alone (terms="smooth_l1"): the trunk's gradient differs from the detached
    target's exactly when the variant drops that stop-gradient ("head", "none")."""
    b = batch()
    obj = make(terms="smooth_l1", stop_grad=stop_grad)
    ours = grads_of(obj, obj.loss(b).loss)
    detached = grads_of(obj, reference(obj, b, terms="smooth_l1", detach_target=True))
    through = grads_of(obj, reference(obj, b, terms="smooth_l1", detach_target=False))
    trunk = [n for n in ours if n.startswith("trunk.")]
    if DETACH_TARGET[stop_grad]:
        assert_same_grads(ours, detached)
    else:
        assert_same_grads(ours, through)
        assert_grads_differ(ours, detached, "target not detached", trunk)
    # compared with the paper's placement: the same trunk gradient iff the target is detached
    paper = make(terms="smooth_l1")
    g_paper = grads_of(paper, paper.loss(b).loss)
    same = all(torch.equal(ours[n], g_paper[n]) for n in trunk)
    assert same == DETACH_TARGET[stop_grad]
    assert all(torch.equal(ours[n], g_paper[n]) for n in ours if n.startswith("dynamics."))


@pytest.mark.parametrize("token_term", TOKEN_TERMS)
@pytest.mark.parametrize("stop_grad", STOP_GRADS)
def test_head_gets_gradient_from_token_term_only_when_not_frozen(stop_grad, token_term):
    """The token-level term's share of head.weight.grad: the gradient of the loss minus that
    of the same objective without the term (the CE's share is the same, bit for bit)."""
    b = batch()
    obj = make(stop_grad=stop_grad, token_term=token_term)
    without = make(stop_grad=stop_grad, token_term=token_term, terms="smooth_l1")
    share = grads_of(obj, obj.loss(b).loss)["head.weight"] - grads_of(without, without.loss(b).loss)["head.weight"]
    if FREEZE_HEAD[stop_grad]:
        assert share.abs().max() == 0
    else:
        assert share.abs().max() > 1e-6
        # and it is exactly the reference's head gradient of lambda_kl * token term
        ref = make(stop_grad=stop_grad, token_term=token_term)
        tok = LAMBDA_TOK * reference_parts(ref, b, **ref_kw(token_term, stop_grad))["token"]
        torch.testing.assert_close(share, grads_of(ref, tok)["head.weight"])


@pytest.mark.parametrize("stop_grad", STOP_GRADS)
def test_kl_teacher_never_gets_gradient(stop_grad):
    """softmax(head(h_{t+i})) is the KL's target in every variant: the gradients are those of
    a detached teacher, never those of a trained one."""
    b = batch()
    obj = make(terms="kl", stop_grad=stop_grad)
    ours = grads_of(obj, obj.loss(b).loss)
    kw = ref_kw("kl", stop_grad)
    assert_same_grads(ours, grads_of(obj, reference(obj, b, terms="kl", **kw)))
    trained = grads_of(obj, reference(obj, b, terms="kl", **kw, detach_teacher=False))
    assert_grads_differ(ours, trained, "teacher trained", ["head.weight"])
    assert_grads_differ(ours, trained, "teacher trained", [n for n in ours if n.startswith("trunk.")])


# --- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize("key, value, choices", [
    ("stop_grad", "teacher", STOP_GRADS), ("terms", "all", TERMS), ("token_term", "mse", TOKEN_TERMS)])
def test_invalid_value_is_refused_naming_key_and_choices(key, value, choices):
    with pytest.raises(ValueError) as err:
        build_objective(tiny_model(), {"name": "nextlat", key: value})
    msg = str(err.value)
    assert f"method.{key}={value!r}" in msg and str(choices) in msg and msg.startswith("nextlat")
    props = nlconfig.load_schema()["$defs"]["method_nextlat"]["properties"]
    assert props[key]["enum"] == choices and props[key]["type"] == "string" and props[key]["description"]
    assert props["grid"]["properties"][key]["items"]["enum"] == choices  # sweepable, typed
    with pytest.raises(ConfigError, match=key):
        nlconfig.validate({"name": "nextlat", key: value}, nlconfig.sub_schema("method"))
    nlconfig.validate({"name": "nextlat", key: choices[-1]}, nlconfig.sub_schema("method"))
