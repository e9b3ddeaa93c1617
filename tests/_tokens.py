"""Shared helpers for the objective tests: a tiny vocabulary, random rows, packed rows."""
import torch

from nextlat.objectives import Batch

V, EOS = 23, 22


def model_cfg(**kw):
    return {**dict(vocab_size=V, n_layer=2, n_head=2, n_embd=32, block_size=64, eos_id=EOS), **kw}


def rand_tokens(B=3, L=20, seed=1):
    """Random non-EOS tokens: one document per row."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, EOS, (B, L), generator=g)


def full(x):
    """A batch where every target is supervised."""
    return Batch(x, torch.ones_like(x, dtype=torch.bool))


def packed_row():
    """Three EOS-led documents, the middle one a single token: EOS at 0, 9 and 12."""
    row = rand_tokens(1, 24, seed=3)[0]
    for i in (0, 9, 12):
        row[i] = EOS
    return row[None]
