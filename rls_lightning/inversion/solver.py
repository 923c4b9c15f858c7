"""The solver: RLS, then RLS+, on images in memory (paper sec. 3-4), with no disk at all.

``solve(generator, images, *, flow, settings, ...)`` is the whole method as one keyword-only call, in the manner of
NVIDIA's ``projector.project(G, target, *, num_steps)``; ``Solver`` holds it together for callers that need its
parts (the folder job, the studies, the tests).

* RLS runs several images (and several samples per image) in one optimisation; per-image losses are summed,
  so the result equals one-at-a-time runs. RLS+ then refines the same batch together, each image with its own
  generator weights, early stopping and l1 ball, which again equals one-at-a-time runs.
* A non-finite loss, latent or image is caught per image after each stage: that image alone is restarted from the
  stage's start with a learning rate ten times lower, at most ``MAX_RESTARTS`` times, said in its note; after that
  its samples carry ``diverged`` (why), so a NaN never reaches a caller as a result.
* A stop request (SIGINT / SIGTERM, see ``interrupts``) ends the current optimisation after its step; the
  unfinished batch is dropped, finished images have been handed over, and ``Interrupted`` is raised.
* Seeds are derived from the image stem and sample index, so results do not depend on batching or sharding.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import time
from typing import Callable

import lightning as L
import torch

from ..flow.checkpoint import FlowBundle
from ..flow.pulse import pulse_statistics
from ..interrupts import Interrupted, StopRequests
from ..lr_images import LowResImage
from ..runtime import PRECISIONS, true_float32
from ..stylegan import Generator
from ..stylegan.latents import draw_z, stream_seed
from .callbacks import (L1BallProjection, NoiseRenormalization, PerImageEarlyStopping, SphereProjection,
                        StepProgress, StopWhenRequested)
from .latent_search import LatentSearch
from .objective import typical_log_density
from .refinement import Refinement
from .schedules import rising_steps
from .settings import InversionSettings, RefineSettings, SearchSettings

MAX_RESTARTS = 3  # restarts of a diverged image, each at a tenth of the previous learning rate
LR_DROP = 10.0
ON_BALL = 1 - 1e-3  # a row whose l1 distance to the anchor is within 0.1% of the radius is on the boundary

LIGHTNING_PRECISIONS = tuple(p for p in PRECISIONS if p != "auto")  # what a Trainer gets once 'auto' is resolved

OnImage = Callable[[LowResImage, list["SampleResult"]], None]


@dataclasses.dataclass
class TrainerOptions:
    """What the per-stage Trainers are built with (the job's device, precision)."""

    accelerator: str = "cpu"
    devices: list[int] | int = 1
    precision: str = "32-true"

    def __post_init__(self) -> None:
        # Lightning's other spellings ("64", "bf16-true", ...) would skip the float64 copies below and convert the
        # caller's networks in place; "auto" is the caller's to resolve (runtime.resolve_precision)
        if self.precision not in LIGHTNING_PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: must be one of {', '.join(LIGHTNING_PRECISIONS)}")


def stack_noise(per_item: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """One noise list for a batch from one list per item: a layer whose maps are all the same tensor stays one
    shared ``[R, R]`` map, otherwise the maps are stacked to ``[N, 1, R, R]``."""
    stacked = []
    for maps in zip(*per_item):
        if all(m is maps[0] for m in maps):
            stacked.append(maps[0])
        else:
            res = maps[0].shape[-1]
            stacked.append(torch.cat([m.reshape(-1, 1, res, res).expand(1, 1, res, res) for m in maps]))
    return stacked


@dataclasses.dataclass
class SampleResult:
    ws_rls: torch.Tensor
    noise_rls: list[torch.Tensor]
    image_rls: torch.Tensor
    lr_l1_rls: float
    rls_steps: int
    ws: torch.Tensor | None = None
    noise: list[torch.Tensor] | None = None
    image: torch.Tensor | None = None
    lr_l1: float | None = None
    refine_steps: int = 0
    rls_kept_step: int = 0  # the step whose state RLS returned (the lowest objective with keep_best)
    refine_kept_step: int | None = None  # ... and RLS+ (0: the anchor itself)
    terms_rls: dict[str, float] = dataclasses.field(default_factory=dict)  # the objective's terms at the RLS result
    terms_refine: dict[str, float] | None = None  # ... and at the RLS+ result
    ball_reach: float | None = None  # largest row distance ||w_i - anchor_i||_1 / radius (radius sqrt(d) if no ball)
    rows_on_ball: int | None = None  # rows on the ball's boundary (None without a ball)
    seconds: float = 0.0
    notes: list[str] = dataclasses.field(default_factory=list)
    diverged: str | None = None  # why no result could be saved

    def search_finite(self) -> bool:
        return _all_finite(self.ws_rls, self.image_rls, *self.noise_rls) and math.isfinite(self.lr_l1_rls)

    def refinement_finite(self) -> bool:
        return (self.image is not None and _all_finite(self.ws, self.image, *self.noise)
                and self.lr_l1 is not None and math.isfinite(self.lr_l1))


def _terms_of(terms: dict[str, torch.Tensor], i: int) -> dict[str, float]:
    return {name: float(values[i]) for name, values in terms.items()}


def _all_finite(*tensors: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def scaled_search(settings: SearchSettings, scale: float) -> SearchSettings:
    return dataclasses.replace(settings, lr=settings.lr * scale)


def scaled_refinement(settings: RefineSettings, scale: float) -> RefineSettings:
    return dataclasses.replace(settings, lr_w=settings.lr_w * scale, lr_noise=settings.lr_noise * scale,
                               lr_generator=settings.lr_generator * scale)


def float64_copies(generator: Generator, flow: FlowBundle | None) -> tuple[Generator, FlowBundle | None]:
    """Float64 copies of the networks for ``64-true``: Lightning converts a stage's modules to float64 in place,
    which would leave the caller's generator and flow in float64 after the run."""
    generator = copy.deepcopy(generator).double()
    if flow is not None:
        flow = dataclasses.replace(flow, flow=copy.deepcopy(flow.flow).double())
    return generator, flow


class Solver:
    """One preset's RLS and RLS+ over images in memory: the stages, their restarts, batching and seeds."""

    def __init__(self, generator: Generator, flow: FlowBundle | None, settings: InversionSettings, *,
                 batch_size: int = 4, num_samples: int = 1, seed: int = 0, trainer: TrainerOptions | None = None,
                 progress=None, stop: StopRequests | None = None) -> None:
        if settings.needs_flow and flow is None:
            raise ValueError(f"preset {settings.name} needs a flow prior (its mean w and P_w / P_gaussian)")
        self.trainer_options = trainer or TrainerOptions()
        generator = generator.eval().requires_grad_(False)
        if self.trainer_options.precision == "64-true":
            generator, flow = float64_copies(generator, flow)
        self.generator, self.flow = generator, flow
        self._typical_p_w: float | None = None
        self.settings = settings
        self.batch_size = max(1, int(batch_size))
        self.num_samples = max(1, int(num_samples))
        self.seed = int(seed)
        self.progress = progress
        self.stop = stop
        self.tasks = None  # the progress tasks: (finished images, optimiser steps)
        self._pulse_stats = None
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

    # ------------------------------------------------------------------ stages

    def _trainer(self, steps: int, callbacks: list) -> L.Trainer:
        opts = self.trainer_options
        return L.Trainer(accelerator=opts.accelerator, devices=opts.devices, precision=opts.precision,
                         max_steps=steps, max_epochs=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=callbacks)

    def _step_callbacks(self, description: str) -> list:
        callbacks = [StopWhenRequested(lambda: self.stop.requested is not None)] if self.stop is not None else []
        if self.progress is not None:
            callbacks.append(StepProgress(self.progress, self.tasks[1], description))
        return callbacks

    def _fit(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """``trainer.fit`` that turns a stop request into ``Interrupted`` once the current step is done."""
        deferring = self.stop.deferred() if self.stop is not None else contextlib.nullcontext()
        try:
            with deferring, true_float32(self.trainer_options.precision):
                trainer.fit(module)
        except SystemExit:  # Lightning ends fit with SIGTERMException (a SystemExit, status 0) on SIGTERM
            if self.stop is not None and self.stop.requested is not None:
                raise Interrupted(self.stop.requested) from None
            raise
        if self.stop is not None:
            self.stop.check()

    def item_seed(self, stem: str, sample: int) -> int:
        return stream_seed(self.seed, f"{stem}/{sample}")

    def initial_latent(self, stem: str, sample: int) -> torch.Tensor:
        """``[rows, d]``: sample 0 starts at the flow's mean w (paper sec. 4); other samples (diverse solutions,
        Figure 7) at ``mean + sample_spread * (mapping(z) - mean)`` for a seeded z, 0.2 in the official ``rls.py``.
        PULSE starts from Gaussian latents on the sphere."""
        G = self.generator
        s = self.settings.search
        rows = 1 if s.space == "w" else G.num_ws
        if s.init == "pulse-random":
            x = draw_z(G.num_ws, G.w_dim, self.item_seed(stem, sample))
            return x * (math.sqrt(G.w_dim) / x.norm(dim=1, keepdim=True))
        if sample == 0:
            w = self.flow.w_init.float().cpu()
        else:
            with torch.no_grad():
                w = G.mapping(draw_z(1, G.z_dim, self.item_seed(stem, sample)).to(G.mapping.fc0.weight))[0]
            mean = self.flow.w_init.float().cpu() if self.flow is not None else w.cpu()
            w = mean + s.sample_spread * (w.cpu() - mean)
        return w.cpu().reshape(1, -1).expand(rows, -1).clone()

    def pulse_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._pulse_stats is None:
            device = self.generator.mapping.fc0.weight.device
            self._pulse_stats = pulse_statistics(self.generator.mapping, self.generator.z_dim, 100_000,
                                                 stream_seed(0, "pulse-stats"), device)
        return self._pulse_stats

    def run_search(self, items: list[tuple[LowResImage, int]],
                   settings: SearchSettings | None = None) -> list[SampleResult]:
        """RLS (or a baseline's search) for a batch of (image, sample) pairs of one factor."""
        s = settings or self.settings.search
        factor = items[0][0].factor
        targets = torch.stack([image.pixels for image, _ in items])
        latents = torch.stack([self.initial_latent(image.stem, k) for image, k in items])
        flow = self.flow.flow if self.flow is not None else None
        w_stats = (self.flow.flow.w_mean, self.flow.flow.w_std) if self.flow is not None else None
        module = LatentSearch(self.generator, flow, targets, factor, s, latents, w_stats=w_stats,
                              pulse_stats=self.pulse_stats() if s.pulse_sphere else None)
        start = time.perf_counter()
        if self.settings.refine.from_anchor:
            callbacks = [SphereProjection()] if s.pulse_sphere else []
            trainer = self._trainer(s.steps, callbacks + self._step_callbacks(f"RLS  x{factor}, {len(items)} at once"))
            self._fit(trainer, module)
            steps = trainer.global_step
        else:  # "w/o anchor": RLS+ starts from the initial latent itself
            steps = 0
            if self.trainer_options.precision == "64-true":
                module.double()  # what fit's precision plugin would have done: the networks are float64 copies
        out = module.results()
        seconds = (time.perf_counter() - start) / len(items)
        results = [SampleResult(ws_rls=out.ws[i:i + 1],
                                noise_rls=[m[i:i + 1] if m.shape[0] > 1 else m for m in out.noise],
                                image_rls=out.images[i:i + 1], lr_l1_rls=float(out.lr_l1[i]), rls_steps=steps,
                                terms_rls=_terms_of(out.terms, i), rls_kept_step=int(out.kept_step[i]),
                                seconds=seconds)
                   for i in range(len(items))]
        for result in results:
            if note := self.off_prior_note(result.terms_rls.get("P_w")):
                result.notes.append(note)
        return results

    def typical_p_w(self) -> float:
        """The 1st percentile of P_w over mapped w (``objective.typical_log_density``), computed once."""
        if self._typical_p_w is None:
            self._typical_p_w = typical_log_density(self.flow.flow, self.generator.mapping, self.generator.z_dim)
        return self._typical_p_w

    def off_prior_note(self, p_w: float | None) -> str | None:
        """A note when an RLS anchor left the prior's high-density region: its result may carry marks."""
        if p_w is None or p_w >= self.typical_p_w():  # P_w exists only where a flow prior does
            return None
        return (f"RLS anchor outside the prior's high-density region (P_w {p_w:.0f}, below {self.typical_p_w():.0f} "
                "where 99% of mapped w lie): the result may carry marks the face does not have")

    def run_refinement(self, items: list[tuple[LowResImage, int]], results: list[SampleResult],
                       settings: RefineSettings | None = None) -> None:
        """RLS+ for a batch of (image, sample) pairs of one factor, all at once; fills in ``results``."""
        r = settings or self.settings.refine
        targets = torch.stack([image.pixels for image, _ in items])
        anchors = torch.cat([result.ws_rls for result in results])
        module = Refinement(self.generator, targets, items[0][0].factor, anchors,
                            stack_noise([result.noise_rls for result in results]), r)
        callbacks = []
        radius = r.radius(self.generator.w_dim)
        if radius is not None and r.optimize_w:
            callbacks.append(L1BallProjection(radius))
        if r.renormalize_noise:
            callbacks.append(NoiseRenormalization())
        if r.early_stopping_patience is not None:
            callbacks.append(PerImageEarlyStopping(r.early_stopping_patience, rising_steps(r.schedule, r.steps)))
        start = time.perf_counter()
        names = ", ".join(image.stem for image, _ in items)
        trainer = self._trainer(r.steps, callbacks + self._step_callbacks(f"RLS+ {names}"[:60]))
        self._fit(trainer, module)
        out = module.results()
        steps = module.steps_run(trainer.global_step)
        seconds = (time.perf_counter() - start) / len(items)
        distance = (out.ws - anchors).abs().sum(-1)  # [N, rows]: l1 distance of each W+ row to its anchor
        reach = distance / (radius if radius is not None else math.sqrt(self.generator.w_dim))
        for i, result in enumerate(results):
            result.image, result.ws, result.lr_l1 = out.images[i:i + 1], out.ws[i:i + 1], float(out.lr_l1[i])
            result.noise = [m[i:i + 1] if m.shape[0] > 1 else m for m in out.noise]
            result.refine_steps = int(steps[i])
            result.refine_kept_step = int(out.kept_step[i])
            result.terms_refine = _terms_of(out.terms, i)
            result.ball_reach = float(reach[i].max())
            result.rows_on_ball = int((reach[i] >= ON_BALL).sum()) if radius is not None and r.optimize_w else None
            result.seconds += seconds

    # ------------------------------------------------------------------ divergence

    def search_with_restarts(self, items: list[tuple[LowResImage, int]]) -> list[SampleResult]:
        """``run_search``, then each non-finite item alone again at a tenth of the learning rate, at most
        ``MAX_RESTARTS`` times (per-image losses are independent, so the others' results stand)."""
        results = self.run_search(items)
        settings = self.settings.search
        bad = [i for i, r in enumerate(results) if not r.search_finite()]
        for _ in range(MAX_RESTARTS):
            if not bad:
                break
            failed_lr, settings = settings.lr, scaled_search(settings, 1 / LR_DROP)
            retried = self.run_search([items[i] for i in bad], settings)
            for i, result in zip(bad, retried):
                result.notes = results[i].notes + [f"RLS diverged at lr {failed_lr:g}, restarted at {settings.lr:g}"]
                results[i] = result
            bad = [i for i in bad if not results[i].search_finite()]
        for i in bad:
            results[i].diverged = (f"RLS diverged: non-finite loss or latent at lr {settings.lr:g} after "
                                   f"{MAX_RESTARTS} restarts; lower --lr")
        return results

    def refinement_with_restarts(self, items: list[tuple[LowResImage, int]], results: list[SampleResult]) -> None:
        """``run_refinement`` for the items whose RLS is usable, with the same restarts as the search."""
        usable = [i for i, r in enumerate(results) if r.diverged is None]
        if not usable:
            return
        settings = self.settings.refine
        self.run_refinement([items[i] for i in usable], [results[i] for i in usable], settings)
        bad = [i for i in usable if not results[i].refinement_finite()]
        for _ in range(MAX_RESTARTS):
            if not bad:
                break
            failed_lr, settings = settings.lr_generator, scaled_refinement(settings, 1 / LR_DROP)
            self.run_refinement([items[i] for i in bad], [results[i] for i in bad], settings)
            for i in bad:
                results[i].notes.append(f"RLS+ diverged at lr {failed_lr:g}, restarted at {settings.lr_generator:g}")
            bad = [i for i in bad if not results[i].refinement_finite()]
        for i in bad:
            results[i].diverged = (f"RLS+ diverged: non-finite loss or image at lr {settings.lr_generator:g} after "
                                   f"{MAX_RESTARTS} restarts; lower --refine-lr")

    def batches(self, images: list[LowResImage]) -> list[list[tuple[LowResImage, int]]]:
        """(image, sample) pairs of one factor, at most ``batch_size`` per RLS optimisation."""
        batches = []
        for factor in sorted({image.factor for image in images}):
            items = [(image, k) for image in images if image.factor == factor for k in range(self.num_samples)]
            batches += [items[i:i + self.batch_size] for i in range(0, len(items), self.batch_size)]
        return batches

    def start_progress(self, total: int) -> None:
        """The progress tasks the step callbacks advance: finished images (of ``total``) and optimiser steps."""
        if self.progress is not None:
            self.tasks = (self.progress.add_task("images", total=total),
                           self.progress.add_task("steps", total=None))

    def solve(self, images: list[LowResImage], on_image: OnImage | None = None) -> dict[int, list[SampleResult]]:
        """``optimise`` with the progress tasks started and advanced (see the module's ``solve``)."""
        self.start_progress(len(images))
        finished: dict[int, list[SampleResult]] = {}

        def keep(image: LowResImage, samples: list[SampleResult]) -> None:
            finished[id(image)] = samples
            if on_image is not None:
                on_image(image, samples)

        def count(images_finished: int) -> None:  # a batch's images finish together: one advance, one estimate
            if self.progress is not None and images_finished:
                self.progress.advance(self.tasks[0], images_finished)

        self.optimise(images, keep, count)
        return finished

    def optimise(self, images: list[LowResImage], on_image: OnImage,
                 on_batch: Callable[[int], None] | None = None) -> None:
        """RLS, then RLS+ when enabled, over ``images`` batch by batch (restarting diverged items);
        ``on_image(image, samples)`` as soon as all ``num_samples`` samples of an image are done, then
        ``on_batch(n)`` with the number of images the batch finished. Inputs are told apart by identity, not name,
        so that in-memory images sharing a name stay apart."""
        pending: dict[int, list[SampleResult]] = {}
        for items in self.batches(images):
            if self.stop is not None:
                self.stop.check()
            results = self.search_with_restarts(items)
            if self.settings.refine.enabled:
                self.refinement_with_restarts(items, results)
            finished = 0
            for (image, _), result in zip(items, results):
                samples = pending.setdefault(id(image), [])
                samples.append(result)
                if len(samples) == self.num_samples:
                    on_image(image, pending.pop(id(image)))
                    finished += 1
            if on_batch is not None:
                on_batch(finished)


def solve(generator: Generator, images: list[LowResImage], *, flow: FlowBundle | None,
          settings: InversionSettings, batch_size: int = 4, num_samples: int = 1, seed: int = 0,
          trainer: TrainerOptions | None = None, progress=None, stop: StopRequests | None = None,
          on_image: OnImage | None = None) -> dict[int, list[SampleResult]]:
    """RLS then RLS+ (``settings``) on ``images``: ``{id(image): [SampleResult per sample]}`` (inputs with the same
    name stay apart). ``on_image(image, samples)`` is called as soon as each image is finished (a folder job
    writes it then); ``progress`` sees an "images" task advanced once per finished image and a "steps" task
    advanced once per optimiser step."""
    return Solver(generator, flow, settings, batch_size=batch_size, num_samples=num_samples, seed=seed,
                  trainer=trainer, progress=progress, stop=stop).solve(images, on_image)
