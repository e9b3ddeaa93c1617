"""Training objectives behind one interface; importing this registers all of them."""
from .base import Batch, Objective, StepOutput, available, build_objective, generate, register
from . import gpt, nextlat  # noqa: F401  (registration)

__all__ = ["Batch", "Objective", "StepOutput", "available", "build_objective", "generate", "register"]
