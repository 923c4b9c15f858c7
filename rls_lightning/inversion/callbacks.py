"""Callbacks applied after every optimizer step of the inversion stages."""
from __future__ import annotations

import math

import lightning as L
import torch

from .l1_ball import project_rows_onto_ball


class L1BallProjection(L.Callback):
    """Projected gradient descent for Eq. 7: after each step, every row of ``pl_module.ws`` is put back into the
    l1 ball of ``radius`` centred on the same row of ``pl_module.anchor`` (exact Euclidean projection)."""

    def __init__(self, radius: float) -> None:
        self.radius = float(radius)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with torch.no_grad():
            pl_module.ws.copy_(project_rows_onto_ball(pl_module.ws, pl_module.anchor, self.radius))


class SphereProjection(L.Callback):
    """PULSE's constraint: each latent row rescaled to norm sqrt(d) after each step."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with torch.no_grad():
            latent = pl_module.latent
            latent.mul_(math.sqrt(latent.shape[-1]) / latent.norm(dim=-1, keepdim=True).clamp_min(1e-12))


class NoiseRenormalization(L.Callback):
    """The official RLS+ code's noise renormalisation after each step (``rls+official`` preset)."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        pl_module.noise.renormalize_()


class PerImageEarlyStopping(L.Callback):
    """Lightning's ``EarlyStopping(mode="min", min_delta=0, check_finite=True)`` applied to every image of a
    batched ``Refinement`` on its own: an image whose loss (``pl_module.last_loss``) has not gone below its best for
    ``patience`` steps, or is not finite, is frozen at the current step; the Trainer stops when all are.

    ``watch_from``: the losses of the first steps are not watched (but a non-finite one still stops): while a
    one-cycle schedule raises the rate the objective rises with it, and a stop then would end every run at its
    start (see ``RefineSettings``). The paper asks for early stopping without a patience; 5 is ours."""

    def __init__(self, patience: int, watch_from: int = 0) -> None:
        self.patience, self.watch_from = int(patience), int(watch_from)
        self.best: torch.Tensor | None = None
        self.wait: torch.Tensor | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.best = torch.full_like(pl_module.last_loss, math.inf)
        self.wait = torch.zeros_like(pl_module.last_loss, dtype=torch.long)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = pl_module.last_loss
        if trainer.global_step <= self.watch_from:  # last_loss is that of the state before step global_step
            if not bool(torch.isfinite(loss).all()):
                pl_module.freeze(~torch.isfinite(loss), trainer.global_step)
            return
        improved = loss < self.best
        self.best = torch.where(improved, loss, self.best)
        self.wait = torch.where(improved, 0, self.wait + 1)
        stop = (self.wait >= self.patience) | ~torch.isfinite(loss)
        if stop.any():
            pl_module.freeze(stop, trainer.global_step)
        if bool((pl_module.stopped_at > 0).all()):
            trainer.should_stop = True


class StepProgress(L.Callback):
    """Advances a rich progress task by one per optimizer step (one bar for all the stages of a job).

    A progress object that also has ``on_step(task_id, trainer, pl_module, outputs)`` is called after every step
    as well (the web page shows the loss and the current estimate from there; it must not change the state)."""

    def __init__(self, progress, task_id, description: str) -> None:
        self.progress, self.task_id, self.description = progress, task_id, description

    def on_train_start(self, trainer, pl_module) -> None:
        self.progress.reset(self.task_id, total=trainer.max_steps, description=self.description)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.progress.advance(self.task_id)
        on_step = getattr(self.progress, "on_step", None)
        if on_step is not None:
            on_step(self.task_id, trainer, pl_module, outputs)


class StopWhenRequested(L.Callback):
    """Ends the optimisation after the current step once ``requested()`` is true (a SIGINT / SIGTERM arrived), so
    that a stop never interrupts a step or a write half-way."""

    def __init__(self, requested) -> None:
        self.requested = requested

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.requested():
            trainer.should_stop = True
