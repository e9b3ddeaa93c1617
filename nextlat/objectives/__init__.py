"""Training objectives behind one interface.

Every module in this package that defines an :class:`Objective` subclass decorated with
``@register`` is imported here automatically, so adding a method is adding one file
(and this file, which the workflow tracks as code every run depends on, never changes).
"""
import importlib
import pkgutil

from .base import Batch, Objective, StepOutput, available, build_objective, register

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["Batch", "Objective", "StepOutput", "available", "build_objective", "register"]
