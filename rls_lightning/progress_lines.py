"""Progress for logs: plain lines instead of a live bar, for output that is not a terminal (a scheduler's log,
``nohup``, CI), where a rich bar only appears once the run has ended.

``LineProgress`` offers the part of rich's ``Progress`` interface that ``InversionJob`` and its step callback use
(``add_task``, ``reset``, ``advance``, and use as a context manager). It writes one line per finished image:

    images: 3 of 8 done (0:01:12 elapsed, about 0:02:00 left)

and, within a stage, one line each ``every`` steps (``RLS_PROGRESS_EVERY``, default 50) and whenever
``LINE_SECONDS`` (30 s) have passed since the stage's last line, so that a log is never silent for longer, even in
a short stage of slow steps (RLS+ at 1024 px on a CPU):

    RLS  x8, 4 at once: step 50 of 200 (0:00:20 in this stage, about 0:01:00 left in it)

The estimate of the rest is the mean time per finished image (per step within a stage) times what remains. The
images of one batch finish together and are counted together (the solver advances the task once per batch), so
the estimate is made from finished work, not from the order in which one batch's images are reported. Each line is
flushed at once, so a log shows it as it happens.
"""
from __future__ import annotations

import itertools
import os
import sys
import time
from typing import Callable, TextIO

STEP_LINE_EVERY = 50  # steps between two lines of one stage (the paper's RLS has 200, RLS+ 50)
LINE_SECONDS = 30.0  # the longest a stage goes without a line
EVERY_VARIABLE = "RLS_PROGRESS_EVERY"
IMAGES_TASK = "images"  # the task whose advances are finished images (``InversionJob.run``'s first task)


def step_line_every() -> int:
    """``RLS_PROGRESS_EVERY`` (steps between two lines of a stage), or the default; ``ValueError`` (one line)
    for a value that is not a whole number >= 1."""
    text = os.environ.get(EVERY_VARIABLE, "").strip()
    if not text:
        return STEP_LINE_EVERY
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{EVERY_VARIABLE}={text!r}: must be a whole number of steps >= 1")
    return int(text)


def clock(seconds: float) -> str:
    """``H:MM:SS``."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class LineProgress:
    """rich ``Progress``-like reporter that prints plain lines (see the module's docstring)."""

    def __init__(self, file: TextIO | None = None, every: int | None = None,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.file = file
        self.every = max(1, int(every)) if every is not None else step_line_every()
        self.now = now
        self.tasks: dict[int, dict] = {}
        self._ids = itertools.count()

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def _write(self, line: str) -> None:
        out = self.file if self.file is not None else sys.stderr
        out.write(line + "\n")
        out.flush()

    def add_task(self, description: str, total: float | None = None, **_) -> int:
        task = next(self._ids)
        start = self.now()
        self.tasks[task] = {"description": description, "total": total, "completed": 0, "start": start,
                            "last_line": start}
        return task

    def reset(self, task: int, total: float | None = None, description: str | None = None, **_) -> None:
        start = self.now()
        self.tasks[task].update(total=total, completed=0, start=start, last_line=start)
        if description is not None:
            self.tasks[task]["description"] = description

    def update(self, task: int, **fields) -> None:
        self.tasks[task].update({k: v for k, v in fields.items() if k in ("total", "completed", "description")})

    def advance(self, task: int, advance: float = 1) -> None:
        state = self.tasks[task]
        state["completed"] += advance
        done, total = int(state["completed"]), state["total"]
        elapsed = self.now() - state["start"]
        if state["description"] == IMAGES_TASK:
            left = f", about {clock(elapsed / done * (total - done))} left" if total and done < total else ""
            of = f" of {int(total)}" if total else ""
            state["last_line"] = self.now()
            self._write(f"images: {done}{of} done ({clock(elapsed)} elapsed{left})")
        elif total and done < total and (done % self.every == 0
                                         or self.now() - state["last_line"] >= LINE_SECONDS):
            state["last_line"] = self.now()
            self._write(f"{state['description'].strip()}: step {done} of {int(total)} ({clock(elapsed)} in this "
                        f"stage, about {clock(elapsed / done * (total - done))} left in it)")
