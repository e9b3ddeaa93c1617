"""How a global batch splits over devices and micro-batches (torch-free: the config checks
use it at plan time, the trainer at run time, so both refuse the same settings)."""
from __future__ import annotations


def per_device_batch(train: dict, world: int) -> tuple[int, int]:
    """(rows per device per step, rows per forward pass) of a ``train`` config block on
    ``world`` devices; ValueError naming the key when they do not divide."""
    bs = int(train["batch_size"])
    if bs % world:
        raise ValueError(f"train.batch_size={bs} is not divisible by runtime.devices={world}")
    local = bs // world
    micro = int(train.get("micro_batch_size") or local)
    if micro > local or local % micro:
        raise ValueError(f"train.micro_batch_size={micro} must divide the per-device batch "
                         f"{local} (= train.batch_size {bs} / {world} devices)")
    return local, micro
