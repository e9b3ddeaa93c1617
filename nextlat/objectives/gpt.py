"""GPT: the plain next-token baseline."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from ..models.layout import Layout
from ..models.transformer import KVCache, ModelConfig, OutputHead, Transformer, init_weights
from .base import Batch, MethodSettings, Objective, StepOutput, register, token_accuracy, token_ce


@dataclass(frozen=True)
class GPTSettings(MethodSettings):
    """GPT takes no method keys besides ``name``."""


@register
class GPT(Objective):
    name = "gpt"
    settings_cls = GPTSettings

    def __init__(self, model: ModelConfig, method: dict):
        super().__init__(model, method)
        self.trunk = Transformer(model)
        self.head = OutputHead(model)  # untied from tok_emb
        init_weights(self)

    def logits(self, tokens: Tensor, layout: Layout | None = None) -> Tensor:
        return self.head(self.trunk(tokens, layout))

    def logits_cached(self, tokens: Tensor, cache: KVCache) -> Tensor:
        out = self.head(self.trunk.forward_cached(tokens, cache))
        cache.advance(tokens.size(1))
        return out

    def hidden_states(self, tokens: Tensor, layout: Layout | None = None, which: str = "probe") -> Tensor:
        return self.trunk(tokens, layout)  # final-layer (normed) states, for probes and rank

    def inference_modules(self) -> list[nn.Module]:
        return [self.trunk, self.head]

    def loss(self, batch: Batch) -> StepOutput:
        logits = self.logits(batch.inputs, batch.layout(self.model_cfg.eos_id))
        targets = batch.targets
        ce = token_ce(logits, targets)
        return StepOutput(ce, {"ce": ce.detach(), "acc": token_accuracy(logits.detach(), targets)})
