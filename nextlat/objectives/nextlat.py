"""NextLat: next-token prediction plus next-latent prediction (paper section 1, App. C).

A latent dynamics model p_psi predicts h_{t+1} from (h_t, x_{t+1}); rolled out d steps
with teacher-forced tokens, its predictions are pulled towards the detached trunk states
(SmoothL1) and, through the frozen output head, towards the trunk's next-token
distribution (KL). Inference is plain next-token decoding; p_psi is training-only
(and a self-speculative drafter).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.layout import Layout
from ..models.transformer import ModelConfig, Transformer, init_weights, make_norm
from .base import Batch, Objective, StepOutput, register, token_accuracy, token_ce


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


@register
class NextLat(Objective):
    name = "nextlat"

    def __init__(self, model: ModelConfig, method: dict):
        super().__init__(model, method)
        self.horizon = int(method.get("horizon", 1))
        if self.horizon < 1:
            raise ValueError(f"method.horizon must be >= 1 for nextlat, got {self.horizon}")
        self.lambda_next_h = float(method.get("lambda_next_h", 1.0))
        self.lambda_kl = float(method.get("lambda_kl", 1.0))
        self.latent_ce = bool(method.get("latent_ce", False))
        self.trunk = Transformer(model)
        self.head = nn.Linear(model.n_embd, model.vocab_size, bias=False)
        self.dynamics = LatentDynamics(model, int(method.get("dyn_hidden") or model.n_embd))
        init_weights(self)

    def logits(self, tokens: Tensor, layout: Layout | None = None) -> Tensor:
        return self.head(self.trunk(tokens, layout))

    def hidden_states(self, tokens: Tensor, layout: Layout | None = None) -> Tensor:
        return self.trunk(tokens, layout)

    def inference_modules(self) -> list[nn.Module]:
        return [self.trunk, self.head]  # p_psi is not needed to generate

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

    def loss(self, batch: Batch) -> StepOutput:
        inputs, targets = batch.inputs, batch.targets
        layout = batch.layout(self.model_cfg.eos_id)
        emb = self.trunk.embed(inputs)  # E[x_t], shared with the trunk (not detached)
        h = self.trunk(inputs, layout, emb=emb)
        logits = self.head(h)
        ce = token_ce(logits, targets)

        d = min(self.horizon, inputs.size(1) - 1)
        h_target = h.detach()  # SmoothL1 targets carry no gradient
        teacher_logp = F.log_softmax(logits.detach().float(), dim=-1)  # softmax(head(sg(h)))
        frozen_head = self.head.weight.detach()  # KL reaches p_psi and the trunk, not the head
        supervised = targets != -100  # token mask: target x_{t+1} is trained

        next_h = kl = latent_ce = h.new_zeros((), dtype=torch.float32)
        for i, pred in enumerate(self.rollout(h, emb, d), start=1):
            # Term (t, i) read tokens x_{t+1..t+i}; drop it if any of them opened a new document.
            same_doc = layout.same_doc(i)
            valid = torch.ones_like(supervised[:, i:]) & same_doc  # (B, T-i); next-h ignores prompts
            n_valid = valid.sum().clamp(min=1)
            sl1 = F.smooth_l1_loss(pred.float(), h_target[:, i:].float(), reduction="none", beta=1.0)
            next_h = next_h + (sl1 * valid[..., None]).sum() / (n_valid * pred.size(-1))

            student_logits = pred @ frozen_head.t()
            # teacher at t+i predicts x_{t+i+1}: a token loss, masked like that target.
            tok_valid = valid & supervised[:, i:]
            student_logp = F.log_softmax(student_logits.float(), dim=-1)
            kl_t = (teacher_logp[:, i:].exp() * (teacher_logp[:, i:] - student_logp)).sum(-1)
            kl = kl + (kl_t * tok_valid).sum() / tok_valid.sum().clamp(min=1)
            if self.latent_ce:  # logging only (the official code computes it always; it costs)
                with torch.no_grad():
                    tgt = targets[:, i:].masked_fill(~tok_valid, -100)
                    latent_ce = latent_ce + token_ce(student_logits.detach(), tgt)

        next_h, kl = next_h / max(d, 1), kl / max(d, 1)
        loss = ce + self.lambda_next_h * next_h + self.lambda_kl * kl
        metrics = {"ce": ce.detach(), "acc": token_accuracy(logits.detach(), targets),
                   "next_h": next_h.detach(), "kl": kl.detach()}
        if self.latent_ce:
            metrics["latent_ce"] = latent_ce / max(d, 1)
        return StepOutput(loss, metrics)
