"""Learning-rate multipliers for ``torch.optim.lr_scheduler.LambdaLR``.

``LambdaLR`` calls the function with the index of the optimizer step about to be taken
(0 for the first step), and the lr used at that step is ``base_lr * f(step)``.

* ``constant``: 1, after an optional linear warmup.
* ``wsd`` (warmup-stable-decay): linear warmup, then flat, then a linear decay over the
  last ``decay_steps`` steps ending exactly at ``min_lr_ratio`` on the final step.
"""
from __future__ import annotations

from typing import Callable

SCHEDULES = ("constant", "wsd")


def lr_lambda(schedule_cfg: dict | None, total_steps: int) -> Callable[[int], float]:
    cfg = dict(schedule_cfg or {})
    name = cfg.get("name", "constant")
    warmup = int(cfg.get("warmup_steps") or 0)
    if name not in SCHEDULES:
        raise ValueError(f"train.schedule.name={name!r}; expected one of {SCHEDULES}")
    if warmup < 0 or warmup > total_steps:
        raise ValueError(f"train.schedule.warmup_steps={warmup} must lie in [0, train.steps={total_steps}]")

    def warm(step: int) -> float:
        # (step + 1) / warmup so that the very first step does not run at lr = 0.
        return min(1.0, (step + 1) / warmup) if warmup else 1.0

    if name == "constant":
        return warm

    decay = int(cfg.get("decay_steps") or 0)
    min_ratio = float(cfg.get("min_lr_ratio", 0.0))
    if decay < 0 or warmup + decay > total_steps:
        raise ValueError(f"train.schedule: warmup_steps ({warmup}) + decay_steps ({decay}) "
                         f"exceed train.steps ({total_steps})")
    if not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"train.schedule.min_lr_ratio={min_ratio} must lie in [0, 1]")
    decay_start = total_steps - decay

    def wsd(step: int) -> float:
        if step < warmup:
            return warm(step)
        if step < decay_start:
            return 1.0
        done = min(1.0, (step - decay_start + 1) / decay)  # reaches 1 on the last step
        return 1.0 - (1.0 - min_ratio) * done

    return wsd
