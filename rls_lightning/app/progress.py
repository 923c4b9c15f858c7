"""A running job's live progress (``StepUpdate`` s from ``JobProgress``) and its stopping (``Cancellation``)."""
from __future__ import annotations

import dataclasses
import itertools
import signal
from typing import Callable

import numpy as np
import torch

from ..interrupts import StopRequests

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

    def line(self) -> str:
        parts = [f"**{self.stage.strip()}**", f"step {self.step}" + (f" / {self.steps}" if self.steps else "")]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.5f}")
        if self.images_total is not None:
            parts.append(f"{self.images_done} of {self.images_total} done")
        return " | ".join(parts)


class JobProgress:
    """The progress object ``InversionJob`` reports to (rich's ``Progress`` interface, plus ``on_step``)."""

    def __init__(self, emit: Callable[[StepUpdate], None], preview_every: int = PREVIEW_EVERY,
                 on_each_step: Callable[[], None] | None = None) -> None:
        self.emit, self.preview_every, self.on_each_step = emit, max(1, int(preview_every)), on_each_step
        self.tasks: dict[int, dict] = {}
        self._ids = itertools.count()

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
        self.emit(StepUpdate(state["description"], step, total, loss, done, images_total, preview))
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
