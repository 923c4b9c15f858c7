"""Running ``InversionJob`` (the engine of ``invert.py``) on images in memory: the same batches, the same RLS and
RLS+ optimisations with the same restarts of diverged images, the same seeds, but nothing written to disk.

``invert.py`` runs ``InversionJob.run``, which for each batch of ``InversionJob.batches`` calls
``search_with_restarts`` and then ``refinement_with_restarts`` and saves each finished image; here the same calls
are made and the per-sample results handed back instead, so that for the same settings, seed and batch size the
pixels are the ones ``invert.py`` saves.
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
    if job.progress is not None:
        job._tasks = (job.progress.add_task("images", total=len(images)),  # the job's own step callbacks read it
                      job.progress.add_task("steps", total=None))
    finished: dict[int, list[SampleResult]] = {}
    pending: dict[int, list[SampleResult]] = {}
    for items in job.batches(images):
        if job.stop is not None:
            job.stop.check()
        results = job.search_with_restarts(items)
        if job.settings.refine.enabled:
            job.refinement_with_restarts(items, results)
        for (image, _), result in zip(items, results):
            samples = pending.setdefault(id(image), [])
            samples.append(result)
            if len(samples) == job.num_samples:
                finished[id(image)] = pending.pop(id(image))
                job.done += 1
                if job.progress is not None:
                    job.progress.advance(job._tasks[0])
                if on_image is not None:
                    on_image(image, finished[id(image)])
    return finished
