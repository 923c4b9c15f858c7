"""Progress without a terminal: plain lines as the work happens (one per finished image, every few steps of a long
stage), with the time so far and an estimate of the rest."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from support.inversion_fixtures import known_latents, toy_generator

from rls_lightning.degradations import downsample_bicubic
from rls_lightning.image_io import to_uint8
from rls_lightning.progress_lines import LineProgress, clock
from rls_lightning.stylegan import save_generator

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_say_what_is_done_and_estimate_the_rest():
    out, now = io.StringIO(), Clock()
    progress = LineProgress(out, every=50, now=now)
    images = progress.add_task("images", total=8)
    steps = progress.add_task("steps", total=None)
    progress.reset(steps, total=200, description="RLS  x8, 4 at once")
    for step in range(1, 201):
        now.now = 0.2 * step  # 0.2 s per step
        progress.advance(steps)
    now.now = 40.0
    progress.advance(images)
    progress.advance(images)
    progress.reset(steps, total=30, description="RLS+ a, b")  # a short stage: no step lines
    for _ in range(30):
        progress.advance(steps)
    lines = out.getvalue().splitlines()
    assert lines == [
        "RLS  x8, 4 at once: step 50 of 200 (0:00:10 in this stage, about 0:00:30 left in it)",
        "RLS  x8, 4 at once: step 100 of 200 (0:00:20 in this stage, about 0:00:20 left in it)",
        "RLS  x8, 4 at once: step 150 of 200 (0:00:30 in this stage, about 0:00:10 left in it)",
        "images: 1 of 8 done (0:00:40 elapsed, about 0:04:40 left)",  # 40 s per image, 7 to go
        "images: 2 of 8 done (0:00:40 elapsed, about 0:02:00 left)",
    ]
    assert clock(3725.4) == "1:02:05"


def test_a_redirected_run_logs_each_image_as_it_finishes(tmp_path):
    G = toy_generator()
    save_generator(G, tmp_path / "G.pt")
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    with torch.no_grad():
        lr = downsample_bicubic(G.synthesis(known_latents(G, 2, seed=7)), 4).clamp(-1, 1)
    for i in range(2):
        Image.fromarray(to_uint8(lr[i])).save(lr_dir / f"face{i}.png")
    process = subprocess.Popen([sys.executable, str(ROOT / "invert.py"), "--lr-dir", str(lr_dir), "--generator",
                                str(tmp_path / "G.pt"), "--preset", "pulse", "--batch-size", "1", "--steps", "12"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "RLS_PROGRESS_EVERY": "5"})
    seen = []  # (line, whether the run was still going when it arrived)
    start = time.monotonic()
    for line in process.stderr:
        seen.append((line.rstrip("\n"), process.poll() is None))
        assert time.monotonic() - start < 600
    process.wait(timeout=60)
    assert process.returncode == 0, "\n".join(line for line, _ in seen)[-3000:]
    lines = [line for line, _ in seen]
    assert not any("━" in line or "\r" in line for line in lines)  # no bar drawn into a log
    first = next(i for i, line in enumerate(lines) if line.startswith("images: 1 of 2 done"))
    assert seen[first][1]  # the first image's line arrived while the second was still being worked on
    assert re.fullmatch(r"images: 1 of 2 done \(\d+:\d\d:\d\d elapsed, about \d+:\d\d:\d\d left\)", lines[first])
    assert re.fullmatch(r"images: 2 of 2 done \(\d+:\d\d:\d\d elapsed\)", lines[first + 3])
    step_lines = [line for line in lines if " of 12 " in line]  # PULSE (no flow needed): one stage per image
    assert step_lines[2:] == lines[first + 1:first + 3]
    for line, step in zip(step_lines, [5, 10, 5, 10]):
        assert re.fullmatch(rf"RLS  x4, 1 at once: step {step} of 12 \(\d+:\d\d:\d\d in this stage, about "
                            r"\d+:\d\d:\d\d left in it\)", line)
    assert lines[-1].startswith("done: 2 of 2 image(s) super-resolved")


def test_a_bad_progress_interval_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "invert.py"), "--lr-dir", str(tmp_path)],
                            capture_output=True, text=True, env={**os.environ, "RLS_PROGRESS_EVERY": "0"}, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: RLS_PROGRESS_EVERY='0': must be a whole number of steps >= 1"


def test_a_slow_stage_is_never_silent_for_more_than_30_seconds():
    out, now = io.StringIO(), Clock()
    progress = LineProgress(out, every=50, now=now)
    steps = progress.add_task("steps", total=None)
    progress.reset(steps, total=50, description="RLS+ a")  # the paper's 50 RLS+ steps, 7 s each (1024 px on a CPU)
    for step in range(1, 51):
        now.now = 7.0 * step
        progress.advance(steps)
    lines = out.getvalue().splitlines()
    # brute force: a line is due at the first step 30 s or more after the stage's previous line
    expected, last = [], 0.0
    for step in range(1, 50):
        if 7.0 * step - last >= 30:
            expected.append(step)
            last = 7.0 * step
    assert expected == [5, 10, 15, 20, 25, 30, 35, 40, 45]
    assert [int(re.search(r"step (\d+) of 50", line).group(1)) for line in lines] == expected
    assert lines[0] == "RLS+ a: step 5 of 50 (0:00:35 in this stage, about 0:05:15 left in it)"


def test_the_images_of_one_batch_are_counted_together():
    """Four images finished by one batch after 4 minutes: one line, estimating 1 min per image for the 4 left (the
    old per-image lines said 0:12:00, then 0:04:00, 0:01:20, 0:00:00 within the same second)."""
    from rls_lightning.inversion.solver import Solver

    out, now = io.StringIO(), Clock()
    progress = LineProgress(out, every=50, now=now)
    solver = Solver.__new__(Solver)  # only its bookkeeping of finished images is exercised here
    solver.progress, solver.num_samples, solver.stop = progress, 1, None
    solver.start_progress(8)
    solver.batches = lambda images: [[(image, 0) for image in images[:4]], [(image, 0) for image in images[4:]]]
    solver.settings = type("S", (), {"refine": type("R", (), {"enabled": False})()})()

    def search(items):
        now.now += 240.0
        return [object() for _ in items]

    solver.search_with_restarts = search
    solver.solve([f"image{i}" for i in range(8)])
    assert out.getvalue().splitlines() == ["images: 4 of 8 done (0:04:00 elapsed, about 0:04:00 left)",
                                           "images: 8 of 8 done (0:08:00 elapsed)"]
