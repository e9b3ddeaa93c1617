"""NextLat: next-token prediction plus next-latent prediction (paper section 1, App. C).

A latent dynamics model p_psi predicts h_{t+1} from (h_t, x_{t+1}); rolled out d steps
with teacher-forced tokens, its predictions are pulled towards the detached trunk states
(SmoothL1) and, through the frozen output head, towards the trunk's next-token
distribution (KL). Inference is plain next-token decoding; p_psi is training-only
(and a self-speculative drafter).

The paper's loss ablations are settings whose defaults are the paper's loss: ``terms``
(which latent terms are trained), ``token_term`` (KL or cross-entropy as the token-level
latent term) and ``stop_grad`` (where the stop-gradients sit); see :class:`NextLatSettings`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.transformer import ModelConfig, head_logits, init_weights, make_norm
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
    lambda_kl: float = setting(1.0, minimum=0)  # weight of the token-level latent term
    dyn_hidden: int | None = setting(None, minimum=1, description=(
        "Hidden width of the latent dynamics MLP (Table 5)."))  # None: model.n_embd
    latent_ce: bool = setting(False, description=(
        "NextLat: log CE of predicted latents (costs time; off by default)."))
    # --- loss ablations (paper Figs. 12-14); the defaults are the paper's loss ---------------
    terms: str = setting("both", enum=["both", "smooth_l1", "kl"], description=(
        "NextLat loss ablation: the latent terms trained: both (the paper), smooth_l1 only, or "
        "kl only. 'kl' names the token-level latent term, whichever token_term picks; a term "
        "that is off is not computed."))
    token_term: str = setting("kl", enum=["kl", "ce"], description=(
        "NextLat loss ablation: the token-level latent term. kl (the paper): "
        "KL(softmax(head(h_{t+i})) || softmax(head(h-hat_{t+i}))) from the model's own "
        "next-token distribution; ce: cross-entropy of head(h-hat_{t+i}) against the actual "
        "token x_{t+i+1}, logged as latent_ce. Same positions either way (supervised targets "
        "in the same document)."))
    stop_grad: str = setting("both", enum=["both", "target", "head", "none"], description=(
        "NextLat loss ablation: stop-gradients. both (the paper): the SmoothL1 target h_{t+i} "
        "is detached and the output head is frozen in the token-level latent term; target: "
        "only the SmoothL1 target detached (the head learns from that term); head: only the "
        "head frozen (the trunk gets gradient through the SmoothL1 target); none: neither. "
        "The KL's teacher distribution softmax(head(h_{t+i})) is a target: always detached."))

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
        self.terms, self.token_term, self.stop_grad = s.terms, s.token_term, s.stop_grad
        self.train_next_h = s.terms in ("both", "smooth_l1")  # the SmoothL1 term
        self.train_token = s.terms in ("both", "kl")  # the token-level latent term (KL or CE)
        self.detach_target = s.stop_grad in ("both", "target")  # SmoothL1 target sg(h_{t+i})
        self.freeze_head = s.stop_grad in ("both", "head")  # head frozen in the token-level term
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

    # --- the latent dynamics model run alone as a recurrent network (paper Figure 10) -------
    def recurrent_logits(self, tokens: Tensor) -> Tensor:
        """Logits (B, T, V) of p_psi run as an RNN over the inputs: the transformer encodes
        the first token alone (h_1); from there h-hat_{t+1} = p_psi(h-hat_t, E[x_{t+1}]) for
        each later input, and the output head reads every state out. Nothing but x_1 ever
        enters the transformer, so its cost per token is one MLP step, whatever the length
        (no positions, no block_size limit)."""
        emb = self.trunk.embed(tokens)
        state = self.trunk(tokens[:, :1])  # (B, 1, D): h_1, the only transformer call
        states = [state]
        for t in range(1, tokens.size(1)):
            state = self.dynamics(state, emb[:, t:t + 1])
            states.append(state)
        return self.head(torch.cat(states, dim=1))

    def forward_terms(self, batch: Batch) -> dict:
        """Everything the loss is made of, unreduced (tests inspect single positions).

        Returns ``logits``, ``targets`` and ``steps``: for i = 1..d a dict with the masks
        ``h_mask`` (the latent terms at (t, i) may be trained) and ``kl_mask`` (also: the
        token-level term's target x_{t+i+1} is supervised), and the per-position terms that
        are trained: ``next_h`` (B, T-i), SmoothL1 summed over D; the token-level term,
        ``kl`` or (``token_term="ce"``) ``latent_ce``, (B, T-i) and 0 where ``kl_mask`` is
        False (it is only computed where it is trained). A term that is off is absent. With
        ``latent_ce`` logging, ``student_logits``/``student_targets`` at the ``kl_mask``
        positions come along.
        """
        inputs, targets = batch.inputs, batch.targets
        layout = batch.layout(self.model_cfg.eos_id)
        emb = self.trunk.embed(inputs)  # E[x_t], shared with the trunk (not detached)
        h = self.trunk(inputs, layout, emb=emb)
        logits = self.head(h)

        # Stop-gradients (``stop_grad``; the paper detaches both). The KL's teacher
        # softmax(head(sg(h))) is a target in every variant, so it is always detached.
        h_target = h.detach() if self.detach_target else h
        student_head = self.head.weight.detach() if self.freeze_head else self.head.weight
        use_kl = self.train_token and self.token_term == "kl"
        if use_kl:
            # KL(p || q) = sum p log p - sum p log q. The first sum depends on the teacher only, so
            # it is taken once per position here, not once per rollout step (d passes over V).
            teacher_logp = F.log_softmax(upcast(logits.detach()), dim=-1)
            teacher_p = teacher_logp.exp()
            teacher_negent = (teacher_p * teacher_logp).sum(-1)  # (B, T): sum_x p log p
            del teacher_logp
        supervised = targets != -100  # target x_{t+1} is trained (not prompt, not padding)
        need_student = self.train_token or self.latent_ce

        steps = []
        d = min(self.horizon, inputs.size(1) - 1)
        for i, pred in enumerate(self.rollout(h, emb, d), start=1):
            # Term (t, i) read tokens x_{t+1..t+i}: drop it if any of them opened a new
            # document. Next-h is not masked on prompts; the token-level term scores x_{t+i+1}.
            h_mask = torch.ones_like(supervised[:, i:]) & layout.same_doc(i)
            kl_mask = h_mask & supervised[:, i:]
            step = {"h_mask": h_mask, "kl_mask": kl_mask}
            if self.train_next_h:
                sl1 = F.smooth_l1_loss(upcast(pred), upcast(h_target[:, i:]), reduction="none", beta=1.0)
                step["next_h"] = sl1.sum(-1)
            if need_student:
                # The (positions x V) head product is the costly part of the token-level term:
                # run it only where the term is trained (on prompt-and-answer tasks most
                # positions are prompt), and without a graph when it is only logged.
                sel = kl_mask.nonzero(as_tuple=True)
                with torch.set_grad_enabled(self.train_token and torch.is_grad_enabled()):
                    student_logits = head_logits(pred[sel], student_head)
                step.update(student_logits=student_logits, student_targets=targets[:, i:][sel])
            if use_kl:  # KL(softmax(head(sg h_{t+i})) || softmax(head(h-hat_{t+i})))
                cross = (teacher_p[:, i:][sel] * F.log_softmax(upcast(student_logits), dim=-1)).sum(-1)
                kl = teacher_negent[:, i:][sel] - cross
                step["kl"] = kl.new_zeros(kl_mask.shape).index_put(sel, kl)
            elif self.train_token:  # token_term="ce": CE of head(h-hat_{t+i}) against x_{t+i+1}
                ce = F.cross_entropy(upcast(student_logits), targets[:, i:][sel], reduction="none")
                step["latent_ce"] = ce.new_zeros(kl_mask.shape).index_put(sel, ce)
            steps.append(step)
        return {"logits": logits, "targets": targets, "steps": steps}

    def loss(self, batch: Batch) -> StepOutput:
        out = self.forward_terms(batch)
        logits, targets, steps = out["logits"], out["targets"], out["steps"]
        ce = token_ce(logits, targets)
        D = self.model_cfg.n_embd
        zero = upcast(logits.new_zeros(()))
        next_h, kl, latent_ce = zero, zero, zero  # a term that is off stays 0 (and untrained)
        for s in steps:
            # SmoothL1 is a mean over every valid element (positions x D); the token-level
            # term (KL, or CE against x_{t+i+1}) a mean over its positions.
            n_tok = s["kl_mask"].sum().clamp(min=1)
            if "next_h" in s:
                next_h = next_h + (s["next_h"] * s["h_mask"]).sum() / (s["h_mask"].sum().clamp(min=1) * D)
            if "kl" in s:
                kl = kl + (s["kl"] * s["kl_mask"]).sum() / n_tok
            if "latent_ce" in s:  # trained (token_term="ce")
                latent_ce = latent_ce + (s["latent_ce"] * s["kl_mask"]).sum() / n_tok
            elif self.latent_ce:  # logging only (the official code always computes it; it costs)
                with torch.no_grad():
                    latent_ce = latent_ce + token_ce(s["student_logits"], s["student_targets"])
        d = max(len(steps), 1)
        next_h, kl, latent_ce = next_h / d, kl / d, latent_ce / d
        token_level = latent_ce if self.token_term == "ce" else kl
        loss = ce
        if self.train_next_h:
            loss = loss + self.lambda_next_h * next_h
        if self.train_token:
            loss = loss + self.lambda_kl * token_level
        metrics = {"ce": ce.detach(), "acc": token_accuracy(logits.detach(), targets),
                   "next_h": next_h.detach(), "kl": kl.detach()}
        if self.latent_ce or (self.train_token and self.token_term == "ce"):
            metrics["latent_ce"] = latent_ce.detach()
        return StepOutput(loss, metrics)
