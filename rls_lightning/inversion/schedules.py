"""Learning-rate schedules: constant (the paper) and PULSE's "linear 1-cycle drop" (the official RLS code)."""
from __future__ import annotations

import torch


def one_cycle_drop_factor(step: int, total: int) -> float:
    """PULSE's multiplier of the base learning rate at ``step`` of ``total``.

    Over the first 90% of the steps it rises linearly from 0.1 to 1 at half-way and falls back towards 0.1;
    over the last 10% it falls linearly from 0.1 to 0.001.
    """
    x = step / max(total, 1)
    if x < 0.9:
        return (9.0 * (1.0 - abs(x - 0.5) * 2.0) + 1.0) / 10.0
    return 0.1 + (x - 0.9) / 0.1 * (0.001 - 0.1)


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int,
                   groups: list[int] | None = None) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-step scheduler, or None for ``constant``. ``groups``: indices of the parameter groups it drives
    (the others keep their rate, e.g. the generator weights in RLS+)."""
    if schedule == "constant":
        return None
    if schedule != "one-cycle":
        raise ValueError(f"unknown schedule {schedule!r} (constant or one-cycle)")
    driven = set(range(len(optimizer.param_groups)) if groups is None else groups)
    factors = [(lambda s: one_cycle_drop_factor(s, total_steps)) if i in driven else (lambda s: 1.0)
               for i in range(len(optimizer.param_groups))]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factors)
