"""FLOP accounting (nextlat.training.flops): the counter on the real step against closed forms."""
import pytest
import torch

from nextlat.models.transformer import ModelConfig
from nextlat.objectives import Batch, build_objective
from nextlat.training.flops import gpt_step_flops, step_flops

B, T = 2, 12


def _batch(cfg: ModelConfig, eos_at: int | None = None) -> Batch:
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, cfg.vocab_size, (B, T + 1), generator=gen)
    if eos_at is not None:  # a document boundary: attention runs with an explicit mask
        tokens[:, eos_at] = cfg.eos_id
    return Batch(tokens, torch.ones_like(tokens, dtype=torch.bool))


@pytest.mark.parametrize("mlp", ["swiglu", "gelu"])
@pytest.mark.parametrize("eos_at", [None, 5])
def test_gpt_count_equals_closed_form(mlp, eos_at):
    cfg = ModelConfig(vocab_size=40, n_layer=2, n_head=2, n_embd=16, block_size=T + 1, mlp=mlp)
    counted = step_flops(build_objective(cfg, {"name": "gpt"}), _batch(cfg, eos_at))
    assert counted["total"] == gpt_step_flops(cfg, B, T)
    assert counted["backward"] > counted["forward"] > 0


def test_nextlat_extra_is_the_rollout_and_frozen_head():
    """NextLat's extra over GPT, written out: per rollout step i on B (T - i) positions, p_psi's
    three products (forward and both backward products) and one head product whose weight is
    frozen (forward and the input's gradient only)."""
    cfg = ModelConfig(vocab_size=40, n_layer=2, n_head=2, n_embd=16, block_size=T + 1)
    D, V, hid, d = cfg.n_embd, cfg.vocab_size, 24, 3
    batch = _batch(cfg)
    gpt = step_flops(build_objective(cfg, {"name": "gpt"}), batch)["total"]
    nextlat = step_flops(build_objective(cfg, {"name": "nextlat", "horizon": d, "dyn_hidden": hid}), batch)["total"]
    dyn = 2 * D * hid + hid * hid + hid * D
    extra = sum(B * (T - i) * (3 * 2 * dyn + 2 * 2 * D * V) for i in range(1, d + 1))
    assert nextlat - gpt == extra


def test_counting_leaves_no_gradients():
    cfg = ModelConfig(vocab_size=40, n_layer=1, n_head=2, n_embd=16, block_size=T + 1)
    obj = build_objective(cfg, {"name": "mtp", "horizon": 2})
    step_flops(obj, _batch(cfg))
    assert all(p.grad is None for p in obj.parameters())
