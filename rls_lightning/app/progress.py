"""A running job's live progress (``StepUpdate`` s from ``JobProgress``) and its stopping (``Cancellation``).

The page's status line says, besides the stage and step, how long the job has run and about how long it has left,
in the words of ``invert.py``'s log lines (``progress_lines``): ``0:00:40 elapsed, about 0:02:00 left``. The
estimate comes from finished work only: the mean time of the job's steps so far times the steps it has left (of
``planned_steps``), or else the mean time per finished image; until there is either it says ``estimating...``.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import signal
import time
from typing import Callable

import numpy as np
import torch

from ..interrupts import StopRequests
from ..progress_lines import clock

PREVIEW_EVERY = 5  # steps between two renderings of the current estimate


@dataclasses.dataclass
class StepUpdate:
    stage: str  # e.g. "RLS  x8, 1 at once" or "RLS+ demo00" (the job's own descriptions)
    step: int
    steps: int | None
    loss: float | None  # the stage's objective, mean per image
    images_done: int
    images_total: int | None
    preview: np.ndarray | None = None  # uint8 [H, W, 3]: the current estimate of the batch side by side
    job_step: int = 0  # optimiser steps run in this job so far, all stages and batches together
    elapsed: float | None = None  # seconds since the job started
    step_seconds: float | None = None  # mean seconds per step since the job's first step (None before its second)

    def time_left(self, job_steps: int | None = None) -> float | None:
        """Seconds the job has left, from finished work: its steps so far at their mean time when it runs
        ``job_steps`` in all (at least the rest of this stage: restarts run more than planned), else the images it
        has finished; None while neither is known."""
        if job_steps and self.step_seconds is not None:
            rest = max(job_steps - self.job_step, (self.steps - self.step) if self.steps else 0, 0)
            return self.step_seconds * rest
        if self.elapsed is not None and self.images_total and 0 < self.images_done <= self.images_total:
            return self.elapsed / self.images_done * (self.images_total - self.images_done)
        return None

    def timing(self, job_steps: int | None = None) -> str:
        """``0:00:40 elapsed, about 0:02:00 left`` (``estimating...`` instead while there is no basis)."""
        if self.elapsed is None:
            return ""
        left = self.time_left(job_steps)
        return f"{clock(self.elapsed)} elapsed, " + (f"about {clock(left)} left" if left is not None
                                                     else "estimating...")

    def line(self, job_steps: int | None = None) -> str:
        """The page's status line; ``job_steps``: the steps the whole job runs (``planned_steps``), if known."""
        parts = [f"**{self.stage.strip()}**", f"step {self.step}" + (f" / {self.steps}" if self.steps else "")]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.5f}")
        if self.images_total is not None:
            parts.append(f"{self.images_done} of {self.images_total} done")
        if timing := self.timing(job_steps):
            parts.append(timing)
        return " | ".join(parts)


def planned_steps(settings, images: int | None, samples: int = 1, batch_size: int = 4) -> int | None:
    """The optimiser steps a job of ``images`` images runs under ``settings`` (``InversionSettings``): per batch
    of at most ``batch_size`` (image, sample) pairs the search's steps (none for RLS+ "w/o anchor") and RLS+'s.
    Restarts after a divergence run more, images of different LR sizes more batches: an estimate, the least
    number. None without images or steps."""
    if not images:
        return None
    per_batch = ((settings.search.steps if settings.refine.from_anchor else 0)
                 + (settings.refine.steps if settings.refine.enabled else 0))
    batches = math.ceil(images * max(1, int(samples)) / max(1, int(batch_size)))
    return batches * per_batch or None


class JobProgress:
    """The progress object ``InversionJob`` reports to (rich's ``Progress`` interface, plus ``on_step``)."""

    def __init__(self, emit: Callable[[StepUpdate], None], preview_every: int = PREVIEW_EVERY,
                 on_each_step: Callable[[], None] | None = None, now: Callable[[], float] = time.monotonic) -> None:
        self.emit, self.preview_every, self.on_each_step = emit, max(1, int(preview_every)), on_each_step
        self.tasks: dict[int, dict] = {}
        self._ids = itertools.count()
        self.now = now
        self.started = now()  # the job's start: its progress object is made as its work begins
        self.job_step = 0
        self.first_step_at: float | None = None

    def add_task(self, description: str, total=None, **_) -> int:
        task = next(self._ids)
        self.tasks[task] = {"description": description, "total": total, "completed": 0}
        return task

    def reset(self, task, total=None, description=None, **_) -> None:
        self.tasks[task].update(total=total, completed=0)
        if description is not None:
            self.tasks[task]["description"] = description

    def advance(self, task, advance: float = 1) -> None:
        self.tasks[task]["completed"] += advance

    def _images(self) -> tuple[int, int | None]:
        images = self.tasks.get(0, {})
        return int(images.get("completed", 0)), images.get("total")

    @torch.no_grad()
    def on_step(self, task, trainer, pl_module, outputs) -> None:
        state = self.tasks[task]
        step, total = int(state["completed"]), state["total"]
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        n = int(pl_module.targets.shape[0])
        loss = float(loss.detach()) / n if isinstance(loss, torch.Tensor) else None
        preview = None
        if step % self.preview_every == 0 or step == 1 or (total and step >= total):
            # The current state, rendered without touching it (final_state() would: keep_best copies the best).
            images = pl_module.synthesize(pl_module.ws, pl_module.noise.maps()).float().clamp(-1, 1)
            tiles = ((images[:4].cpu() + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            preview = np.concatenate(list(tiles), axis=1)
        done, images_total = self._images()
        now = self.now()
        self.job_step += 1
        if self.first_step_at is None:  # the first step's time holds the stage's set-up: it is left out of the mean
            self.first_step_at = now
        step_seconds = (now - self.first_step_at) / (self.job_step - 1) if self.job_step > 1 else None
        self.emit(StepUpdate(state["description"], step, total, loss, done, images_total, preview,
                             job_step=self.job_step, elapsed=now - self.started, step_seconds=step_seconds))
        if self.on_each_step is not None:
            self.on_each_step()


class Cancellation(StopRequests):
    """``StopRequests`` set by the page (a closed tab, the Stop button) instead of a signal; never installs signal
    handlers, so jobs may run in any thread. The job stops after its current optimiser step."""

    def __enter__(self) -> "Cancellation":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def cancel(self) -> None:
        if self.requested is None:
            self.requested = signal.SIGTERM
