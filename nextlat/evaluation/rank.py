"""Effective rank of hidden states (Roy & Vetterli 2007), the paper's measure of how compact a
model's latent space is (Table 1: lower means the states occupy fewer dimensions)."""
from __future__ import annotations

import torch
from torch import Tensor

from ..models.layout import Layout


def effective_rank(matrix, tol: float = 1e-12) -> float:
    """Roy & Vetterli's effective rank: exp of the Shannon entropy of sigma / sum(sigma),
    singular values (float64) below ``tol`` dropped. 0 for a matrix with none left."""
    x = torch.as_tensor(matrix).double()
    sigma = torch.linalg.svdvals(x)
    sigma = sigma[sigma >= tol]
    if sigma.numel() == 0:
        return 0.0
    p = sigma / sigma.sum()
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def latent_rank(objective, rows: Tensor, eos_id: int, batch_size: int = 256, tol: float = 1e-12,
                device="cpu") -> float:
    """Effective rank of the objective's ``which="rank"`` states at every position of packed
    rows (N, L), stacked into an (N * L, D) matrix (paper: 256 rows of 256 tokens)."""
    device = torch.device(device)
    states = []
    for start in range(0, rows.size(0), batch_size):
        x = rows[start:start + batch_size].to(device)
        h = objective.hidden_states(x, Layout.packed(x, eos_id), which="rank")
        states.append(h.reshape(-1, h.size(-1)).double())
    return effective_rank(torch.cat(states), tol)
