"""The benchmark registry, found by discovery.

Every sub-package of this folder is a benchmark slice whose ``__init__`` registers a
:class:`~nextlat.benchmarks.base.Benchmark` with :func:`register`. Importing this package
imports each slice's ``__init__`` (light: no torch, no stage code), so adding a benchmark
is adding a folder; nothing shared changes. See ``base.py`` for what a slice holds.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from .base import DEFAULT_DATA_OUTPUTS, DEFAULT_EVAL_OUTPUTS, Benchmark, Output, Resources

_REGISTRY: dict[str, Benchmark] = {}


def register(cls: type[Benchmark]) -> type[Benchmark]:
    if cls.name in _REGISTRY and type(_REGISTRY[cls.name]) is not cls:
        raise ValueError(f"two benchmarks are named {cls.name!r}")
    _REGISTRY[cls.name] = cls()
    return cls


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> Benchmark:
    if name not in _REGISTRY:
        raise KeyError(f"unknown benchmark {name!r}; known: {names()}")
    return _REGISTRY[name]


def schema_file(name: str) -> Path:
    """A slice's block of the config schema."""
    return Path(__file__).parent / name / "schema.yaml"


for _mod in pkgutil.iter_modules(__path__):
    if _mod.ispkg:
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["Benchmark", "Output", "Resources", "DEFAULT_DATA_OUTPUTS", "DEFAULT_EVAL_OUTPUTS",
           "register", "names", "get", "schema_file"]
