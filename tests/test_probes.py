"""Linear probes on frozen hidden states (nextlat.evaluation.probes): the target masking, the
per-offset loss, a frozen model, independent probes, learning what is predictable, the
in-order held-out score and the settings."""
import csv
import json
import math

import pytest
import torch
import torch.nn.functional as F

from nextlat.data.batch import IGNORE, Batch
from nextlat.data.dataset import TokenDataset, batch_indices
from nextlat.evaluation.probes import (LinearProbes, ProbeSettings, evaluate_probes, offset_ce, probe_targets,
                                       train_probes)
from nextlat.objectives import build_objective

pytestmark = pytest.mark.usefixtures("one_thread_module")

EOS, V, BLOCK = 0, 12, 16


def tiny_gpt(seed: int = 0, n_embd: int = 16):
    torch.manual_seed(seed)
    return build_objective({"vocab_size": V, "n_layer": 1, "n_head": 2, "n_embd": n_embd, "block_size": BLOCK,
                            "dropout": 0.1, "eos_id": EOS}, {"name": "gpt"})


def packed_rows(n: int, seed: int, unsupervised: float = 0.1) -> TokenDataset:
    """Random rows of BLOCK + 1 tokens with EOS boundaries sprinkled in, some targets unsupervised."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, V, (n, BLOCK + 1), generator=g)
    tokens[torch.rand(n, BLOCK + 1, generator=g) < 0.2] = EOS
    mask = torch.rand(n, BLOCK + 1, generator=g) >= unsupervised
    return TokenDataset(tokens, mask, packed=True)


def reference_targets(tokens: list[int], mask: list[bool], K: int, packed: bool) -> list[list[int]]:
    """The masking rule, spelled out position by position."""
    T = len(tokens) - 1
    out = [[IGNORE] * K for _ in range(T)]
    for t in range(T):
        for k in range(1, K + 1):
            j = t + k
            if j > T or not mask[j]:
                continue
            if packed and any(tokens[i] == EOS for i in range(t + 1, j)):
                continue
            out[t][k - 1] = tokens[j]
    return out


# --- targets -----------------------------------------------------------------------------------
def test_probe_targets_follow_the_masking_rule():
    row = torch.tensor([[EOS, 3, 4, EOS, 5, 6, 7, EOS, 8]])  # T = 8
    batch = Batch(row, torch.ones_like(row, dtype=torch.bool), packed=True)
    targets, valid = probe_targets(batch, EOS, max_offset=10)
    assert targets.shape == (1, 8, 10) and valid.equal(targets != IGNORE)
    assert targets[0, 2, 0] == EOS  # k = 1 predicts the EOS that ends the document
    assert targets[0, 2, 1] == IGNORE  # k = 2 would read past it
    assert targets[0, 3, 3] == EOS and targets[0, 3, 4] == IGNORE  # from an EOS: up to the next one
    assert targets[0, 7, 0] == 8  # an EOS predicts its document's first token
    assert targets[0, 6, 2] == IGNORE  # x_9 is past the row end
    assert (targets[0, :, 8:] == IGNORE).all()  # offsets longer than the row
    # Unpacked rows have no boundaries; unsupervised targets are masked.
    mask = torch.ones_like(row, dtype=torch.bool)
    mask[0, 5] = False
    targets, _ = probe_targets(Batch(row, mask, packed=False), EOS, max_offset=10)
    assert targets[0, 2, 1] == 5 and targets[0, 0, 7] == 8
    assert (targets[0, 5 - torch.arange(1, 6), torch.arange(0, 5)] == IGNORE).all()  # every offset onto x_5


@pytest.mark.parametrize("packed", [True, False])
def test_probe_targets_match_a_loop(packed):
    data = packed_rows(8, seed=1)
    batch = Batch(data.tokens, data.loss_mask, packed)
    K = 20  # longer than the row: the tail offsets are all masked
    targets, _ = probe_targets(batch, EOS, K)
    want = [reference_targets(r.tolist(), m.tolist(), K, packed) for r, m in zip(data.tokens, data.loss_mask)]
    assert targets.tolist() == want


# --- the loss ------------------------------------------------------------------------------------
def random_probes(K: int, D: int, seed: int = 0) -> LinearProbes:
    torch.manual_seed(seed)
    probes = LinearProbes(K, D, V)
    with torch.no_grad():
        probes.weight.normal_()
        probes.bias.normal_()
        probes.mean.normal_()
        probes.std.uniform_(0.5, 2.0)
    return probes


def test_loss_per_offset_matches_an_independent_loop():
    K, D = 5, 7
    data = packed_rows(6, seed=2)
    batch = data.batch(range(6))
    probes = random_probes(K, D)
    h = torch.randn(6, BLOCK, D)
    sums, counts = offset_ce(probes, h, probe_targets(batch, EOS, K)[0])
    (sums / counts).sum().backward()  # the training loss: sum of each probe's own mean CE
    for k in range(1, K + 1):
        want = [reference_targets(r.tolist(), m.tolist(), K, True) for r, m in zip(batch.tokens, batch.loss_mask)]
        tgt = torch.tensor(want)[:, :, k - 1]
        keep = tgt != IGNORE
        w = probes.weight.detach()[k - 1].clone().requires_grad_(True)
        x = (h[keep] - probes.mean) / probes.std  # the fixed standardisation
        ce = F.cross_entropy(x @ w.T + probes.bias.detach()[k - 1], tgt[keep])
        ce.backward()
        assert counts[k - 1] == keep.sum()
        assert torch.allclose(sums[k - 1] / counts[k - 1], ce, atol=1e-5)
        assert torch.allclose(probes.weight.grad[k - 1], w.grad, atol=1e-6)  # k's gradient is its own


def test_targets_behind_a_boundary_never_count():
    """Changing the token right after an EOS moves k = 1 (from the EOS) but no offset that
    would reach it across the boundary."""
    K, D = 6, 5
    row = torch.tensor([[4, 5, 6, 7, EOS, 9, 3, 2, 1, 8, 4, 5, 6, 7, 3, 2, 1]])
    changed = row.clone()
    changed[0, 5] = 10
    probes, h = random_probes(K, D), torch.randn(1, BLOCK, D)
    ones = torch.ones_like(row, dtype=torch.bool)
    before = offset_ce(probes, h, probe_targets(Batch(row, ones, True), EOS, K)[0])[0]
    after = offset_ce(probes, h, probe_targets(Batch(changed, ones, True), EOS, K)[0])[0]
    assert not torch.equal(before[0], after[0])
    assert torch.equal(before[1:], after[1:])
    # An unsupervised token is no target either.
    mask = ones.clone()
    mask[0, 12] = False
    changed = row.clone()
    changed[0, 12] = 1
    a = offset_ce(probes, h, probe_targets(Batch(row, mask, True), EOS, K)[0])[0]
    b = offset_ce(probes, h, probe_targets(Batch(changed, mask, True), EOS, K)[0])[0]
    assert torch.equal(a, b)


# --- training ----------------------------------------------------------------------------------
def quick(**kw) -> ProbeSettings:
    base = {"offsets": 4, "steps": 6, "batch_size": 8, "lr": 1e-2, "eval_blocks": 16, "log_every": 2, "seed": 3}
    return ProbeSettings(**{**base, **kw})


def test_the_model_stays_frozen(monkeypatch, tmp_path):
    model = tiny_gpt()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    real = model.hidden_states

    def spy(tokens, layout=None, which="probe"):
        seen.append((which, model.training, torch.is_grad_enabled(), any(p.requires_grad for p in model.parameters())))
        return real(tokens, layout, which)

    monkeypatch.setattr(model, "hidden_states", spy)
    result = train_probes(model, packed_rows(32, 4), packed_rows(16, 5), quick(micro_batch_size=3), EOS,
                          log_csv=tmp_path / "curve.csv")
    assert seen and all(s == ("probe", False, False, False) for s in seen)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    assert model.training and all(p.requires_grad for p in model.parameters())  # flags put back
    assert result.probes.weight.abs().sum() > 0  # the probes did train

    record = json.loads(json.dumps(result.to_record()))
    assert record["offsets"] == [1, 2, 3, 4] and record["steps"] == 6 and len(record["ce"]) == 4
    assert record["counts"] == result.val_counts and all(c > 0 for c in record["counts"])
    assert record["settings"]["micro_batch_size"] == 3
    with open(tmp_path / "curve.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["step"]), int(r["offset"])) for r in rows] == [(s, k) for s in (2, 4, 6) for k in (1, 2, 3, 4)]
    assert [float(r["ce"]) for r in rows[-4:]] == pytest.approx(result.train_ce)


@pytest.mark.parametrize("grad_clip", [1e-3, None])
def test_probes_train_as_if_alone(grad_clip):
    model, train, val = tiny_gpt(), packed_rows(32, 6), packed_rows(8, 7)
    settings = quick(grad_clip=grad_clip, steps=8, weight_decay=0.1)
    joint = train_probes(model, train, val, settings, EOS).probes
    for k in range(1, settings.offsets + 1):
        alone = train_probes(model, train, val, settings, EOS, only=[k]).probes
        assert torch.allclose(joint.weight[k - 1], alone.weight[k - 1], atol=1e-6, rtol=0)
        assert torch.allclose(joint.bias[k - 1], alone.bias[k - 1], atol=1e-6, rtol=0)
        others = [j for j in range(settings.offsets) if j != k - 1]  # untrained: still at their start
        start = train_probes(model, train, val, quick(steps=0), EOS).probes
        assert (alone.weight[others] == 0).all() and torch.equal(alone.bias[others], start.bias[others])
    if grad_clip is not None:  # the clip did bind: without it the probes end elsewhere
        free = train_probes(model, train, val, quick(grad_clip=None, steps=8), EOS).probes
        assert not torch.allclose(free.weight, joint.weight, atol=1e-4)


def skip_chain(n: int, seed: int) -> TokenDataset:
    """Triples (a, r, g(a)) of uniform a, r in 1..V-1 and a fixed permutation g; only g(a)
    is a target. From x_t = a, x_{t+2} = g(a) is determined (k = 2), while from x_t = g(a),
    x_{t+3} = g(a') with a' drawn after t is not (k = 3)."""
    g = torch.Generator().manual_seed(seed)
    a, r = torch.randint(1, V, (n, 6), generator=g), torch.randint(1, V, (n, 6), generator=g)
    tokens = torch.stack([a, r, a % (V - 1) + 1], dim=-1).reshape(n, 18)[:, :BLOCK + 1]
    mask = (torch.arange(BLOCK + 1) % 3 == 2).expand(n, -1)
    return TokenDataset(tokens, mask.clone(), packed=False)


def test_probes_learn_what_is_predictable():
    model = tiny_gpt(n_embd=32)
    settings = ProbeSettings(offsets=3, steps=300, batch_size=32, lr=3e-2, weight_decay=0.0, eval_blocks=256,
                             log_every=100)
    result = train_probes(model, skip_chain(1024, 8), skip_chain(256, 9), settings, EOS)
    assert result.val_ce[1] < 0.3, result.val_ce
    assert result.val_ce[2] > 0.9 * math.log(V - 1), result.val_ce  # x_{t+3} is a fresh draw
    assert result.val_counts[1] == 256 * 5 and result.val_counts[2] == 256 * 4


class Scaled(torch.nn.Module):
    """The same model with its probe states scaled and shifted (an MTP-like un-normed state)."""

    def __init__(self, inner, scale, shift):
        super().__init__()
        self.inner, self.scale, self.shift, self.model_cfg = inner, scale, shift, inner.model_cfg

    def hidden_states(self, tokens, layout=None, which="probe"):
        return self.inner.hidden_states(tokens, layout, which) * self.scale + self.shift


def test_standardised_probes_do_not_depend_on_the_states_scale():
    """An affine change of the states changes nothing: the probes standardise them with
    statistics of the first batch, so the same steps give the same held-out CE."""
    model = tiny_gpt(n_embd=32)
    settings = ProbeSettings(offsets=3, steps=40, batch_size=32, lr=3e-2, weight_decay=0.0, eval_blocks=64,
                             log_every=40)
    plain = train_probes(model, skip_chain(256, 8), skip_chain(64, 9), settings, EOS)
    scaled = train_probes(Scaled(model, 300.0, 7.0), skip_chain(256, 8), skip_chain(64, 9), settings, EOS)
    assert scaled.val_ce == pytest.approx(plain.val_ce, rel=1e-3)
    assert plain.val_ce[1] < 0.5 * math.log(V - 1)  # and they learned something


def test_evaluate_scores_the_first_blocks_in_order():
    model, val = tiny_gpt(), packed_rows(12, 10)
    probes = random_probes(3, 16)
    settings = quick(offsets=3, eval_blocks=5, batch_size=2)  # chunks of 2, 2 and 1
    ce, counts = evaluate_probes(model, probes, val, EOS, settings)
    model.eval()
    with torch.no_grad():
        batch = val.batch(range(5))
        sums, n = offset_ce(probes, model.hidden_states(batch.inputs, batch.layout(EOS)),
                            probe_targets(batch, EOS, 3)[0])
    assert counts == n.tolist()
    assert ce == pytest.approx((sums / n).tolist(), rel=1e-5)


# --- settings ----------------------------------------------------------------------------------
def test_each_probe_starts_at_the_log_frequencies_of_its_own_targets():
    model, train = tiny_gpt(), packed_rows(32, 6)
    settings = quick(steps=0, batch_size=8)
    start = train_probes(model, train, packed_rows(8, 7), settings, EOS).probes
    first = train.batch(batch_indices(0, 8, len(train), settings.seed))
    targets = probe_targets(first, EOS, settings.offsets)[0]
    for k in range(settings.offsets):
        t = targets[..., k][targets[..., k] != IGNORE]
        freq = (torch.bincount(t, minlength=V).float() + 1) / (len(t) + V)  # add-one
        assert torch.allclose(start.bias[k], freq.log(), atol=1e-6)
    assert (start.weight == 0).all()


def test_settings_refuse_unknown_keys_and_default_to_the_paper():
    with pytest.raises(ValueError, match="'offset'"):
        ProbeSettings.from_dict({"offset": 3})
    s = ProbeSettings.from_dict({"betas": [0.8, 0.9], "grad_clip": None})
    assert s.betas == (0.8, 0.9) and s.grad_clip is None
    d = ProbeSettings()
    assert (d.offsets, d.steps, d.batch_size, d.lr, d.weight_decay, d.grad_clip, d.betas) == \
        (20, 20_000, 256, 3e-4, 0.1, 1.0, (0.9, 0.95))
    with pytest.raises(ValueError, match="offsets"):
        ProbeSettings(offsets=0)
