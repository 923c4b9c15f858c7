"""Learning-rate schedules: constant (the paper) and PULSE's "linear 1-cycle drop" (the official RLS code)."""
from __future__ import annotations

import torch


def one_cycle_drop_factor(step: int, total: int) -> float:
    """PULSE's "linear1cycledrop" multiplier of the base learning rate at ``step`` of ``total``.

    One linear cycle over the first 90% of the steps (0.1, up to 1 at 45%, back to 0.1 at 90%), then a linear
    drop from 0.1 to 0.001 over the last 10%.
    """
    total = max(total, 1)
    if step < 0.9 * total:
        return (9.0 * (1.0 - abs(step / (0.9 * total) - 0.5) * 2.0) + 1.0) / 10.0
    return 0.1 + (step - 0.9 * total) / (0.1 * total) * (0.001 - 0.1)


def rising_steps(schedule: str, total_steps: int) -> int:
    """How many steps the learning rate climbs: up to the one-cycle's peak at 45% of the steps, none if constant."""
    return int(0.45 * total_steps) if schedule == "one-cycle" else 0


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
