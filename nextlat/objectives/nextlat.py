"""NextLat: next-token prediction plus next-latent prediction (paper section 1, App. C).

A latent dynamics model p_psi predicts h_{t+1} from (h_t, x_{t+1}); rolled out d steps
with teacher-forced tokens, its predictions are pulled towards the detached trunk states
(SmoothL1) and, through the frozen output head, towards the trunk's next-token
distribution (KL). Inference is plain next-token decoding; p_psi is training-only
(and a self-speculative drafter).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.transformer import ModelConfig, init_weights, make_norm
from .base import (Batch, MethodSettings, StepOutput, horizon_problem, register, setting, token_accuracy,
                   token_ce, upcast)
from .gpt import GPT


class LatentDynamics(nn.Module):
    """p_psi(h, x') = h + MLP(Norm([E[x'] ; h])): 3 linear layers, GELU, no bias."""

    def __init__(self, model: ModelConfig, hidden: int):
        super().__init__()
        D = model.n_embd
        self.norm = make_norm(2 * D, model.norm, model.bias)  # joint norm over both halves
        self.mlp = nn.Sequential(
            nn.Linear(2 * D, hidden, bias=False), nn.GELU(),
            nn.Linear(hidden, hidden, bias=False), nn.GELU(),
            nn.Linear(hidden, D, bias=False),
        )

    def forward(self, h: Tensor, next_emb: Tensor) -> Tensor:
        # Embedding first, as in the official code. No output norm: h-hat goes straight
        # to the output head, which was trained on normed h.
        return h + self.mlp(self.norm(torch.cat([next_emb, h], dim=-1)))


@dataclass(frozen=True)
class NextLatSettings(MethodSettings):
    horizon: int = setting(1, minimum=1)  # d: rollout steps of p_psi
    lambda_next_h: float = setting(1.0, minimum=0)
    lambda_kl: float = setting(1.0, minimum=0)
    dyn_hidden: int | None = setting(None, minimum=1, description=(
        "Hidden width of the latent dynamics MLP (Table 5)."))  # None: model.n_embd
    latent_ce: bool = setting(False, description=(
        "NextLat: log CE of predicted latents (costs time; off by default)."))

    def row_problem(self, row_len: int) -> str | None:
        return horizon_problem(self.horizon, row_len)


@register
class NextLat(GPT):
    """GPT's trunk and head (same generation, probes and inference parameters) plus p_psi."""

    name = "nextlat"
    settings_cls = NextLatSettings

    def __init__(self, model: ModelConfig, method: dict):
        super().__init__(model, method)
        s = self.settings
        self.horizon = s.horizon
        self.lambda_next_h = s.lambda_next_h
        self.lambda_kl = s.lambda_kl
        self.latent_ce = s.latent_ce
        self.dynamics = LatentDynamics(model, s.dyn_hidden or model.n_embd)
        init_weights(self.dynamics)  # p_psi is training-only: inference_modules stay GPT's

    def rollout(self, h: Tensor, emb: Tensor, steps: int) -> list[Tensor]:
        """Teacher-forced multi-step predictions.

        Returns ``preds`` with ``preds[i-1][:, t] = h-hat_{t+i}`` for t = 0..T-1-i, where
        h-hat_{t+1} = p(h_t, E[x_{t+1}]) and h-hat_{t+i} = p(h-hat_{t+i-1}, E[x_{t+i}]).
        Each step shifts the states left and the tokens right (Algorithm 1).
        """
        preds, cur = [], h
        for i in range(1, steps + 1):
            cur = self.dynamics(cur[:, :-1], emb[:, i:])
            preds.append(cur)
        return preds

    def forward_terms(self, batch: Batch) -> dict:
        """Everything the loss is made of, unreduced (tests inspect single positions).

        Returns ``logits``, ``targets`` and ``steps``: for i = 1..d a dict with per-position
        ``next_h`` (B, T-i) SmoothL1 summed over D, ``kl`` (B, T-i), and their masks
        ``h_mask`` (term may be trained) and ``kl_mask`` (also: its target is supervised);
        ``kl`` is 0 where ``kl_mask`` is False (it is only computed where it is trained).
        """
        inputs, targets = batch.inputs, batch.targets
        layout = batch.layout(self.model_cfg.eos_id)
        emb = self.trunk.embed(inputs)  # E[x_t], shared with the trunk (not detached)
        h = self.trunk(inputs, layout, emb=emb)
        logits = self.head(h)

        h_target = h.detach()  # SmoothL1 targets carry no gradient
        teacher_logp = F.log_softmax(upcast(logits.detach()), dim=-1)  # softmax(head(sg(h)))
        frozen_head = self.head.weight.detach()  # KL reaches p_psi and the trunk, not the head
        supervised = targets != -100  # target x_{t+1} is trained (not prompt, not padding)

        steps = []
        d = min(self.horizon, inputs.size(1) - 1)
        for i, pred in enumerate(self.rollout(h, emb, d), start=1):
            # Term (t, i) read tokens x_{t+1..t+i}: drop it if any of them opened a new
            # document. Next-h is not masked on prompts; the KL is a token loss on x_{t+i+1}.
            h_mask = torch.ones_like(supervised[:, i:]) & layout.same_doc(i)
            kl_mask = h_mask & supervised[:, i:]
            sl1 = F.smooth_l1_loss(upcast(pred), upcast(h_target[:, i:]), reduction="none", beta=1.0)
            # The (positions x V) head product is the costly part of the KL: run it only where
            # the KL is trained (on prompt-and-answer tasks most positions are prompt).
            sel = kl_mask.nonzero(as_tuple=True)
            student_logits = pred[sel] @ frozen_head.t()
            teacher = teacher_logp[:, i:][sel]
            kl_sel = (teacher.exp() * (teacher - F.log_softmax(upcast(student_logits), dim=-1))).sum(-1)
            kl = kl_sel.new_zeros(kl_mask.shape).index_put(sel, kl_sel)
            steps.append({"next_h": sl1.sum(-1), "kl": kl, "h_mask": h_mask, "kl_mask": kl_mask,
                          "student_logits": student_logits, "student_targets": targets[:, i:][sel]})
        return {"logits": logits, "targets": targets, "steps": steps}

    def loss(self, batch: Batch) -> StepOutput:
        out = self.forward_terms(batch)
        logits, targets, steps = out["logits"], out["targets"], out["steps"]
        ce = token_ce(logits, targets)
        D = self.model_cfg.n_embd
        next_h = kl = latent_ce = upcast(logits.new_zeros(()))
        for s in steps:
            # SmoothL1 is a mean over every valid element (positions x D), KL over positions.
            next_h = next_h + (s["next_h"] * s["h_mask"]).sum() / (s["h_mask"].sum().clamp(min=1) * D)
            kl = kl + (s["kl"] * s["kl_mask"]).sum() / s["kl_mask"].sum().clamp(min=1)
            if self.latent_ce:  # logging only (the official code always computes it; it costs)
                with torch.no_grad():
                    latent_ce = latent_ce + token_ce(s["student_logits"], s["student_targets"])
        d = max(len(steps), 1)
        next_h, kl = next_h / d, kl / d
        loss = ce + self.lambda_next_h * next_h + self.lambda_kl * kl
        metrics = {"ce": ce.detach(), "acc": token_accuracy(logits.detach(), targets),
                   "next_h": next_h.detach(), "kl": kl.detach()}
        if self.latent_ce:
            metrics["latent_ce"] = latent_ce / d
        return StepOutput(loss, metrics)
