"""Running ``InversionJob`` (the engine of ``invert.py``) on images in memory: the same batches, the same RLS and
RLS+ optimisations with the same restarts of diverged images, the same seeds, but nothing written to disk.

``invert.py`` runs ``InversionJob.run``, which hands each image finished by ``InversionJob.optimise`` to
``finish_image`` (saved to disk); here the same ``optimise`` hands them back instead, so that for the same
settings, seed and batch size the pixels are the ones ``invert.py`` saves.
"""
from __future__ import annotations

from typing import Callable

from ..inversion.job import InversionJob, SampleResult
from ..lr_images import LowResImage


def run_in_memory(job: InversionJob, images: list[LowResImage],
                  on_image: Callable[[LowResImage, list[SampleResult]], None] | None = None
                  ) -> dict[int, list[SampleResult]]:
    """``{id(image): [SampleResult per sample]}`` for ``images`` (inputs with the same name stay apart).

    The job's progress object, when it has one, sees the same tasks as under ``InversionJob.run``: an "images"
    task advanced once per finished image and a "steps" task advanced once per optimiser step.
    """
    job.total, job.done = len(images), 0
    job.start_progress(len(images))
    finished: dict[int, list[SampleResult]] = {}

    def keep(image: LowResImage, samples: list[SampleResult]) -> None:
        finished[id(image)] = samples
        job.done += 1
        if job.progress is not None:
            job.progress.advance(job._tasks[0])
        if on_image is not None:
            on_image(image, samples)

    job.optimise(images, keep)
    return finished
