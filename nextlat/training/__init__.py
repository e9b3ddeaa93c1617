"""Training: LR schedules, atomic/verified checkpoints and the Fabric training loop.

Names are loaded on first use, so that importing ``nextlat.training.schedules`` (the config
checks do, at every Snakemake plan) does not import Lightning.
"""
import importlib

_WHERE = {"CheckpointError": "checkpoint", "CheckpointMismatchError": "checkpoint",
          "config_fingerprint": "checkpoint", "load_checkpoint": "checkpoint", "load_model": "checkpoint",
          "save_checkpoint": "checkpoint", "lr_lambda": "schedules", "train_run": "trainer"}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
