"""The one interface every training objective implements.

A method (GPT, NextLat, MTP, JTP, BST, ...) is an ``nn.Module`` that owns its parameters
and answers four questions; the trainer, evaluations and probes only ever ask these:

* ``loss(batch)``           -> :class:`StepOutput` (scalar loss + detached metrics)
* ``logits(tokens, layout)`` -> next-token logits (B, T, V) used for generation and scoring
* ``hidden_states(..., which)`` -> the state the paper probes / measures rank on (B, T, D)
* ``param_counts()``        -> parameters used in training and at inference (Table 4)

Optionally, ``make_cache``/``logits_cached`` let :func:`nextlat.decoding.generate` decode
incrementally with a KV cache (without them it recomputes ``logits`` each step).

To add a method: subclass :class:`Objective`, set ``name``, and register it with
:func:`register`. Nothing in the trainer changes.
"""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.batch import IGNORE, Batch  # noqa: F401  (re-exported: objectives use both)
from ..models.layout import Layout
from ..models.kv_cache import KVCache
from ..models.transformer import ModelConfig, count_params



@dataclass
class StepOutput:
    loss: Tensor
    metrics: dict[str, Tensor] = field(default_factory=dict)


# --- method settings ---------------------------------------------------------------------
# Each objective declares its method keys as a frozen dataclass next to its class: the one
# place for their defaults, types and ranges. The constructor reads ``self.settings`` from
# the method dict (unknown keys are refused) and nextlat.config generates the config
# schema's ``method`` block from the same fields.
_SCHEMA_META = ("minimum", "exclusiveMinimum", "maximum", "enum", "description")
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}


def setting(default: Any = None, *, minimum: float | None = None, exclusive_minimum: float | None = None,
            maximum: float | None = None, enum: list | None = None, description: str | None = None):
    """A settings field with its default and the facts the schema and checks use."""
    meta = {"minimum": minimum, "exclusiveMinimum": exclusive_minimum, "maximum": maximum,
            "enum": enum, "description": description}
    return field(default=default, metadata={k: v for k, v in meta.items() if v is not None})


def _union_args(tp) -> tuple:
    return typing.get_args(tp) if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union else (tp,)


@dataclass(frozen=True)
class MethodSettings:
    """Base of an objective's settings (no fields: a method without settings, like GPT).

    Field types drive coercion (``int``/``float``/``bool``, ``X | None`` keeps None) and the
    schema's JSON types; ``setting(...)`` metadata gives ranges, choices and descriptions,
    checked here as in the schema. ``name``, ``grid`` and ``tasks`` are reserved (the run matrix's).
    """

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            kinds = [t for t in _union_args(hints[f.name]) if t is not type(None)]
            if value is not None and len(kinds) == 1 and kinds[0] in (bool, int, float):
                value = kinds[0](value)
                object.__setattr__(self, f.name, value)
            if value is None:
                continue
            meta = f.metadata
            if "minimum" in meta and value < meta["minimum"]:
                raise ValueError(f"method.{f.name} must be >= {meta['minimum']}, got {value}")
            if "exclusiveMinimum" in meta and value <= meta["exclusiveMinimum"]:
                raise ValueError(f"method.{f.name} must be > {meta['exclusiveMinimum']}, got {value}")
            if "maximum" in meta and value > meta["maximum"]:
                raise ValueError(f"method.{f.name} must be <= {meta['maximum']}, got {value}")
            if "enum" in meta and value not in meta["enum"]:
                raise ValueError(f"method.{f.name}={value!r}; choose from {meta['enum']}")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_method(cls, method: dict, name: str | None = None) -> "MethodSettings":
        """Settings from a method dict (its ``name`` aside); unknown keys are refused."""
        name = name or method.get("name")
        unknown = [k for k in method if k != "name" and k not in cls.keys()]
        if unknown:
            accepts = ", ".join(cls.keys()) or "no settings"
            keys = ("key " if len(unknown) == 1 else "keys ") + ", ".join(map(repr, unknown))
            raise ValueError(f"unknown {keys} for method {name}; {name} accepts {accepts}")
        try:
            return cls(**{k: v for k, v in method.items() if k != "name"})
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name}: {err}") from None

    @classmethod
    def schema_properties(cls) -> dict[str, dict]:
        """JSON schema of each field (type from the annotation, ``setting`` metadata)."""
        hints = typing.get_type_hints(cls)
        out = {}
        for f in fields(cls):
            names = [_JSON_TYPES[t] for t in _union_args(hints[f.name])]
            prop = {"type": names[0] if len(names) == 1 else names}
            prop.update({k: f.metadata[k] for k in _SCHEMA_META if k in f.metadata})
            out[f.name] = prop
        return out

    def row_problem(self, row_len: int) -> str | None:
        """Why no training position of a ``row_len``-token row could use these settings
        (None when some can). Checked at plan time against the benchmark's training rows
        (``model.block_size`` unless its spec's ``row_len`` says otherwise)."""
        return None


def horizon_problem(horizon: int, row_len: int) -> str | None:
    """Horizon d at position t trains a target d+1 tokens ahead (x_{t+1+d}: MTP's last head,
    JTP's last slot, NextLat's d-th rollout step and its KL), so a row needs d+2 tokens."""
    if horizon + 2 > row_len:
        return (f"horizon {horizon} needs rows of at least {horizon + 2} tokens (x_0 and a "
                f"target {horizon + 1} tokens ahead), but training rows are {row_len} tokens "
                f"(model.block_size, or for tagged rows their inputs + 1); use horizon <= {row_len - 2}")
    return None


class Objective(nn.Module):
    name: ClassVar[str] = "base"
    settings_cls: ClassVar[type[MethodSettings]] = MethodSettings  # this method's keys
    # Why this method cannot train on tagged rows (input/target pairs, see data.batch.Batch);
    # None: it can. Checked at plan time against a benchmark whose rows are tagged.
    tagged_problem: ClassVar[str | None] = None

    def __init__(self, model: ModelConfig, method: dict):
        super().__init__()
        self.model_cfg = model
        self.method_cfg = dict(method)
        self.settings = self.settings_cls.from_method(method, self.name)

    # --- the interface ---------------------------------------------------------------
    def loss(self, batch: Batch) -> StepOutput:
        raise NotImplementedError

    def logits(self, tokens: Tensor, layout: Layout | None = None) -> Tensor:
        raise NotImplementedError

    def hidden_states(self, tokens: Tensor, layout: Layout | None = None, which: str = "probe") -> Tensor:
        """The paper's per-method state: ``which="probe"`` for linear probes (F.4),
        ``"rank"`` for effective rank (F.1). They differ only for MTP and JTP."""
        raise NotImplementedError

    def inference_modules(self) -> list[nn.Module]:
        """Modules used by plain next-token generation (for the inference param count)."""
        raise NotImplementedError

    # --- incremental decoding (optional; see nextlat.decoding.generate) -----------------
    def make_cache(self, batch_size: int, max_len: int, device) -> KVCache | None:
        """A cache for ``logits_cached`` if this objective implements it; else None, and
        decoding recomputes ``self.logits`` on the whole prefix at every step (right for any
        model)."""
        if type(self).logits_cached is Objective.logits_cached:
            return None
        return KVCache(batch_size, max_len, device)

    def logits_cached(self, tokens: Tensor, cache: KVCache) -> Tensor:
        """Next-token logits (B, T, V) of single-document rows for new ``tokens`` (B, T)
        placed at ``cache.positions(T)``; stores their keys/values and advances the cache.
        Must equal ``self.logits`` on the whole prefix up to float rounding."""
        raise NotImplementedError

    def param_counts(self) -> dict[str, int]:
        seen: set[int] = set()
        inference = 0
        for mod in self.inference_modules():
            for p in mod.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    inference += p.numel()
        return {"training": count_params(self), "inference": inference}

    def forward(self, batch: Batch) -> StepOutput:  # so Fabric/DDP wrap the loss computation
        return self.loss(batch)


def upcast(x: Tensor) -> Tensor:
    """At least float32 for losses (bf16 logits lose too much); float64 stays float64."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def token_ce(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy over non-ignored targets (0 when none is supervised)."""
    flat = targets.reshape(-1)
    n = (flat != IGNORE).sum()
    total = F.cross_entropy(upcast(logits.reshape(-1, logits.size(-1))), flat,
                            ignore_index=IGNORE, reduction="sum")
    return total / n.clamp(min=1)


def token_accuracy(logits: Tensor, targets: Tensor) -> Tensor:
    valid = targets != IGNORE
    correct = (logits.argmax(-1) == targets) & valid
    return correct.sum().float() / valid.sum().clamp(min=1)


_REGISTRY: dict[str, type[Objective]] = {}


def register(cls: type[Objective]) -> type[Objective]:
    settings = cls.settings_cls
    if not (isinstance(settings, type) and issubclass(settings, MethodSettings) and is_dataclass(settings)
            and settings.__dataclass_params__.frozen):
        raise TypeError(f"{cls.__name__}.settings_cls must be a frozen dataclass subclassing MethodSettings")
    reserved = {"name", "grid", "tasks"} & set(settings.keys())
    if reserved:
        raise TypeError(f"{settings.__name__} may not define {sorted(reserved)} (reserved by the run matrix)")
    _REGISTRY[cls.name] = cls
    return cls


def available() -> list[str]:
    return sorted(_REGISTRY)


def settings_of(name: str) -> type[MethodSettings]:
    """The settings dataclass of the registered objective ``name``."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; available: {available()}")
    return _REGISTRY[name].settings_cls


def tagged_problem(name: str) -> str | None:
    """Why the registered objective ``name`` cannot train on tagged rows (None: it can)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; available: {available()}")
    return _REGISTRY[name].tagged_problem


def build_objective(model: ModelConfig | dict, method: dict) -> Objective:
    """Build the objective named ``method["name"]`` for a model config."""
    if isinstance(model, dict):
        model = ModelConfig.from_dict(model)
    name = method.get("name")
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; available: {available()}")
    return _REGISTRY[name](model, method)
