"""Training: LR schedules, atomic/verified checkpoints and the Fabric training loop."""
from .checkpoint import (CheckpointError, CheckpointMismatchError, config_fingerprint, load_checkpoint,
                         load_model, save_checkpoint)
from .schedules import lr_lambda
from .trainer import train_run

__all__ = ["CheckpointError", "CheckpointMismatchError", "config_fingerprint", "load_checkpoint",
           "load_model", "lr_lambda", "save_checkpoint", "train_run"]
