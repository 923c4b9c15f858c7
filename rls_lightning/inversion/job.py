"""The directory job: batches of LR images through RLS, then through RLS+, with outputs users can trust.

* RLS runs several images (and several samples per image) in one optimisation; per-image losses are summed,
  so the result equals one-at-a-time runs. RLS+ then refines the same batch together, each image with its own
  generator weights, early stopping and l1 ball, which again equals one-at-a-time runs.
* Every output is written atomically. An image counts as finished once its row file ``.progress/<stem>.json``
  says ``ok`` (it is first written as ``incomplete``, listing the files about to be written, and replaced last);
  a new run over the same folder skips finished images.
  Output names never collide and only our own outputs are ever replaced or deleted (``outputs``).
* A non-finite loss, latent or image is caught per image after each stage: that image alone is restarted from the
  stage's start with a learning rate ten times lower, at most ``MAX_RESTARTS`` times, said in its note; after that
  it is marked ``diverged`` and nothing of it is saved, so a NaN never reaches a PNG or a row marked ``ok``.
* A stop request (SIGINT / SIGTERM, see ``interrupts``) ends the current optimisation after its step; the
  unfinished batch is dropped, finished images are kept, and ``Interrupted`` is raised for the caller.
* With several ranks each runs every world-th image (``run(..., shard=(rank, world))``, after the refusals,
  which all ranks decide alike on the whole list); seeds are derived from the image stem and sample index, so
  the outputs do not depend on batching or sharding.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import hashlib
import io
import json
import logging
import math
import time
from pathlib import Path
from typing import Callable

import lightning as L
import numpy as np
import torch

from ..atomic import atomic_write_path, torch_save_atomic
from ..fingerprint import tensor_digest
from ..flow.checkpoint import FlowBundle
from ..flow.report import pulse_statistics
from ..flow.sampling import draw_z, stream_seed
from ..image_io import save_png_atomic, to_uint8
from ..interrupts import Interrupted, StopRequests
from ..lr_images import LowResImage, Rejected
from ..stylegan import Generator
from .callbacks import (L1BallProjection, NoiseRenormalization, PerImageEarlyStopping, SphereProjection,
                        StepProgress, StopWhenRequested)
from .latent_search import LatentSearch
from ..names import name_bytes, name_max, printable
from .outputs import (PROGRESS_DIR, check_progress_folder, claim_output_names, foreign_files, output_names,
                      read_record, recorded_outputs,
                      remove_stale_temporaries)
from .refinement import Refinement
from .settings import InversionSettings, RefineSettings, SearchSettings

RESULT_COLUMNS = ["file", "status", "factor", "preset", "samples", "lr_l1_rls", "lr_l1_final", "ball_reach",
                  "rows_on_ball", "rls_steps", "refine_steps", "seconds", "note"]
FACE_COLUMNS = ["photo", "face", "score", "box", "lr_size"]  # rows of faces cut from photos (invert.py --photos)
STD_MAP_FULL_SCALE = 0.25  # a per-pixel std of 0.25 (on the [0, 1] scale) is drawn white
MAX_RESTARTS = 3  # restarts of a diverged image, each at a tenth of the previous learning rate
LR_DROP = 10.0
# what a file system says of a name it will not store (too long; bytes it cannot encode, e.g. on exFAT or SMB)
NAME_ERRORS = (errno.ENAMETOOLONG, errno.EILSEQ)
ON_BALL = 1 - 1e-3  # a row whose l1 distance to the anchor is within 0.1% of the radius is on the boundary


@dataclasses.dataclass
class TrainerOptions:
    """What the per-stage Trainers are built with (the job's device, precision)."""

    accelerator: str = "cpu"
    devices: list[int] | int = 1
    precision: str = "32-true"


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


def _stack_terms(per_sample: list[dict[str, float]]) -> dict[str, torch.Tensor]:
    """``{term: tensor [K]}`` from one ``{term: value}`` per sample (terms every sample has)."""
    names = [name for name in per_sample[0] if all(name in terms for terms in per_sample)]
    return {name: torch.tensor([terms[name] for terms in per_sample], dtype=torch.float64) for name in names}


def _all_finite(*tensors: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def scaled_search(settings: SearchSettings, scale: float) -> SearchSettings:
    return dataclasses.replace(settings, lr=settings.lr * scale)


def scaled_refinement(settings: RefineSettings, scale: float) -> RefineSettings:
    return dataclasses.replace(settings, lr_w=settings.lr_w * scale, lr_noise=settings.lr_noise * scale,
                               lr_generator=settings.lr_generator * scale)


class InversionJob:
    """Runs one preset over a list of LR images into ``out_dir``."""

    def __init__(self, generator: Generator, flow: FlowBundle | None, settings: InversionSettings, out_dir: Path,
                 *, batch_size: int = 4, num_samples: int = 1, seed: int = 0,
                 trainer: TrainerOptions | None = None, progress=None,
                 log: Callable[[str], None] = print, writes_summary: bool = True,
                 stop: StopRequests | None = None, save_inputs: bool = False) -> None:
        self.generator = generator.eval().requires_grad_(False)
        self.flow = flow
        self.settings = settings
        self.out_dir = Path(out_dir)
        self.batch_size = max(1, int(batch_size))
        self.num_samples = max(1, int(num_samples))
        self.seed = int(seed)
        self.trainer_options = trainer or TrainerOptions()
        self.progress = progress
        self.log = log
        self.writes_summary = writes_summary  # with several ranks, only rank 0 rewrites results.csv
        self.stop = stop
        self.save_inputs = save_inputs  # also write each input as <stem>_lr.png (inputs made here, e.g. face crops)
        self.extras: dict[str, dict] = {}  # per stem: {"row": {...}, "payload": {...}} added to its outputs
        self.total = 0  # images of this run (finished before or now), for "N of M done"
        self.done = 0
        self._tasks = None
        self._pulse_stats = None
        if (settings.search.uses_flow or settings.search.init == "flow-mean"
                or settings.search.gaussian_prior_weight) and flow is None:
            raise ValueError(f"preset {settings.name} needs a flow checkpoint (its mean w and prior)")
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

    # ------------------------------------------------------------------ bookkeeping

    @property
    def progress_dir(self) -> Path:
        return self.out_dir / PROGRESS_DIR

    @property
    def fingerprint(self) -> str:
        """What decides the result of an image: settings, seed, samples, generator and flow weights."""
        described = {"settings": dataclasses.asdict(self.settings), "seed": self.seed, "samples": self.num_samples,
                     "generator": tensor_digest(self.generator.state_dict().items()),
                     "flow": tensor_digest(self.flow.flow.state_dict().items()) if self.flow is not None else None}
        return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def is_finished(self, image: LowResImage) -> bool:
        """Finished by an earlier run with the same fingerprint (other settings redo the image)."""
        if not (self.out_dir / f"{image.stem}.png").is_file():
            return False
        row = read_record(self.out_dir, image.stem)
        return row is not None and row.get("status", "ok") == "ok" and row.get("fingerprint") == self._fingerprint

    def write_results_csv(self, rejected: list[Rejected] = ()) -> Path | None:
        """Rebuild ``results.csv`` from the per-image rows (and the skipped files), atomically."""
        if not self.writes_summary:
            return None
        rows = []
        for row_path in sorted(self.progress_dir.glob("*.json")):
            try:
                rows.append(json.loads(row_path.read_text()))
            except (OSError, json.JSONDecodeError):
                continue
        rows += [{"file": r.path.name, "status": "skipped", "note": r.reason} for r in rejected]
        # names may hold bytes that are not UTF-8 or newlines: each row stays one readable line of a UTF-8 file
        rows = [{key: printable(value) if isinstance(value, str) else value for key, value in row.items()}
                for row in rows]
        rows.sort(key=lambda r: r["file"])
        buffer = io.StringIO()
        columns = RESULT_COLUMNS[:1] + FACE_COLUMNS + RESULT_COLUMNS[1:] \
            if any("photo" in row for row in rows) else RESULT_COLUMNS
        writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        path = self.out_dir / "results.csv"
        with atomic_write_path(path) as tmp:
            tmp.write_text(buffer.getvalue())
        return path

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
            callbacks.append(StepProgress(self.progress, self._tasks[1], description))
        return callbacks

    def _fit(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """``trainer.fit`` that turns a stop request into ``Interrupted`` once the current step is done."""
        deferring = self.stop.deferred() if self.stop is not None else contextlib.nullcontext()
        try:
            with deferring:
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
                w = G.mapping(draw_z(1, G.z_dim, self.item_seed(stem, sample)).to(G.mapping.fc0.weight.device))[0]
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
        out = module.results()
        seconds = (time.perf_counter() - start) / len(items)
        return [SampleResult(ws_rls=out.ws[i:i + 1], noise_rls=[m[i:i + 1] if m.shape[0] > 1 else m for m in out.noise],
                             image_rls=out.images[i:i + 1], lr_l1_rls=float(out.lr_l1[i]), rls_steps=steps,
                             terms_rls=_terms_of(out.terms, i), rls_kept_step=int(out.kept_step[i]),
                             seconds=seconds)
                for i in range(len(items))]

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
            callbacks.append(PerImageEarlyStopping(r.early_stopping_patience))
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

    # ------------------------------------------------------------------ outputs

    def _write_row(self, image: LowResImage, row: dict) -> None:
        with atomic_write_path(self.progress_dir / f"{image.stem}.json") as tmp:
            tmp.write_text(json.dumps(row))

    def _base_row(self, image: LowResImage, samples: list[SampleResult]) -> dict:
        first = samples[0]
        notes = [image.note] if image.note else []
        notes += [note for s in samples for note in s.notes]
        return {**self.extras.get(image.stem, {}).get("row", {}), "file": image.path.name, "factor": image.factor, "preset": self.settings.name,
                "samples": len(samples), "rls_steps": first.rls_steps, "refine_steps": first.refine_steps,
                "seconds": round(sum(s.seconds for s in samples), 2), "note": "; ".join(notes),
                "fingerprint": self._fingerprint}

    def _remove_outputs(self, stem: str, keep) -> None:
        """Delete the files an earlier run recorded as its outputs of ``stem``, except ``keep``."""
        for name in recorded_outputs(read_record(self.out_dir, stem), stem) - set(keep):
            (self.out_dir / name).unlink(missing_ok=True)  # a plain name of ours (read_record); a link is unlinked

    def write_diverged(self, image: LowResImage, samples: list[SampleResult]) -> dict:
        """The row of an image without a usable result; our outputs of it from an earlier run with other settings
        are removed, so that every result in the folder matches its row."""
        row = self._base_row(image, samples)
        reasons = [s.diverged for s in samples if s.diverged]
        row.update(status="diverged", note="; ".join(filter(None, [reasons[0], row["note"]])), files=[])
        self._remove_outputs(image.stem, keep=())
        self._write_row(image, row)
        return row

    def write_outputs(self, image: LowResImage, samples: list[SampleResult]) -> dict:
        out = self.out_dir
        names = output_names(image.stem, len(samples), self.save_inputs)
        earlier = recorded_outputs(read_record(out, image.stem), image.stem)
        # Claimed before the first write, so that files left by a write that fails (a full disk) are known to be
        # ours on the rerun; the image only counts as finished once the final row replaces this one.
        self._write_row(image, {"file": image.path.name, "status": "incomplete", "files": sorted(earlier | set(names))})
        final = [s.image if s.image is not None else s.image_rls for s in samples]
        save_png_atomic(to_uint8(final[0][0]), out / f"{image.stem}.png")
        save_png_atomic(to_uint8(samples[0].image_rls[0]), out / f"{image.stem}_rls.png")
        if self.save_inputs:
            save_png_atomic(to_uint8(image.pixels), out / f"{image.stem}_lr.png")
        payload = {
            **self.extras.get(image.stem, {}).get("payload", {}),
            "preset": self.settings.name, "factor": image.factor, "source": image.path.name,
            "ws": torch.cat([s.ws if s.ws is not None else s.ws_rls for s in samples]),
            "ws_rls": torch.cat([s.ws_rls for s in samples]),
            # the final value of each term of the objectives, per sample, as the optimiser saw it (likelihoods on
            # the [0, 1] scale): RLS (Eq. 6) at ws_rls, RLS+ (Eq. 7) at ws
            "objective_rls": _stack_terms([s.terms_rls for s in samples]),
            # after how many optimizer steps each stage's returned state was reached, per sample (RLS+: 0 = anchor)
            "rls_kept_step": torch.tensor([s.rls_kept_step for s in samples]),
            # clone: a map may be a view of the whole batch's tensor
            "noise": [[m.clone() for m in (s.noise if s.noise is not None else s.noise_rls)] for s in samples],
        }
        if all(s.terms_refine is not None for s in samples):
            payload["objective_refine"] = _stack_terms([s.terms_refine for s in samples])
            payload["refine_kept_step"] = torch.tensor([s.refine_kept_step for s in samples])
        if len(samples) > 1:
            stack = torch.cat(final).clamp(-1, 1)  # [K, C, H, W], as saved in the PNGs
            for k in range(len(samples)):
                save_png_atomic(to_uint8(stack[k]), out / f"{image.stem}_s{k}.png")
            pixel_std = (0.5 * stack).std(dim=0, unbiased=True).mean(dim=0)  # [H, W] on the [0, 1] scale
            payload["pixel_std"] = pixel_std
            std_map = np.clip(pixel_std.numpy() / STD_MAP_FULL_SCALE * 255.0, 0, 255).round().astype(np.uint8)
            save_png_atomic(std_map[:, :, None], out / f"{image.stem}_std.png")
        torch_save_atomic(payload, out / f"{image.stem}.pt")
        self._remove_outputs(image.stem, keep=names)  # e.g. the _s<k>.png of an earlier run with more samples
        first = samples[0]
        row = self._base_row(image, samples)
        row.update(status="ok", lr_l1_rls=round(first.lr_l1_rls, 6),
                   lr_l1_final=round(first.lr_l1 if first.lr_l1 is not None else first.lr_l1_rls, 6), files=names,
                   ball_reach=None if first.ball_reach is None else round(first.ball_reach, 4),
                   rows_on_ball=first.rows_on_ball)
        self._write_row(image, row)
        return row

    # ------------------------------------------------------------------ driver

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
            self._tasks = (self.progress.add_task("images", total=total),
                           self.progress.add_task("steps", total=None))

    def optimise(self, images: list[LowResImage],
                 on_image: Callable[[LowResImage, list[SampleResult]], None]) -> None:
        """RLS, then RLS+ when enabled, over ``images`` batch by batch (restarting diverged items);
        ``on_image(image, samples)`` as soon as all ``num_samples`` samples of an image are done. Inputs are told
        apart by identity, not name, so that in-memory images sharing a name stay apart."""
        pending: dict[int, list[SampleResult]] = {}
        for items in self.batches(images):
            if self.stop is not None:
                self.stop.check()
            results = self.search_with_restarts(items)
            if self.settings.refine.enabled:
                self.refinement_with_restarts(items, results)
            for (image, _), result in zip(items, results):
                samples = pending.setdefault(id(image), [])
                samples.append(result)
                if len(samples) == self.num_samples:
                    on_image(image, pending.pop(id(image)))

    def refuse_unsafe(self, images: list[LowResImage]) -> tuple[list[LowResImage], list[Rejected]]:
        """Inputs whose outputs would collide with another input's or overwrite a file that is not ours."""
        collisions = claim_output_names([image.stem for image in images], self.num_samples, self.save_inputs)
        usable, refused, limit = [], [], name_max(self.out_dir)
        for image in images:
            if image.stem in collisions:
                refused.append(Rejected(image.path, collisions[image.stem]))
            elif too_long := self.name_too_long(image.stem, limit):
                refused.append(Rejected(image.path, too_long))
            elif foreign := foreign_files(self.out_dir, image.stem, self.num_samples, self.save_inputs, self.log):
                refused.append(Rejected(image.path, f"{printable(self.out_dir / foreign[0])} exists and was not "
                                                    "written by this tool; move it or choose another --out-dir"))
            else:
                usable.append(image)
        return usable, refused

    def name_too_long(self, stem: str, limit: int) -> str | None:
        """Why the outputs of ``stem`` cannot be named in a folder whose names hold ``limit`` bytes (None when they
        can)."""
        names = [f"{stem}.json", *output_names(stem, self.num_samples, self.save_inputs)]
        longest = max(names, key=name_bytes)
        if name_bytes(longest) <= limit:
            return None
        return (f"its output name would be {name_bytes(longest)} bytes long, more than the {limit} the file "
                "system allows; shorten the input's name")

    def finish_image(self, image: LowResImage, samples: list[SampleResult], rejected: list[Rejected]) -> dict:
        if any(s.diverged for s in samples):
            row = self.write_diverged(image, samples)
            self.log(f"{printable(image.path)}: {row['note']}")
        else:
            try:
                row = self.write_outputs(image, samples)
            except OSError as err:
                if err.errno not in NAME_ERRORS:  # a full disk or a lost folder stops the run; a name stops one
                    raise
                refused = Rejected(image.path, f"the file system refuses its output names ({err.strerror})")
                self.log(str(refused))
                rejected.append(refused)
                self.write_results_csv(rejected)
                return {"file": image.path.name, "status": "skipped", "note": refused.reason}
            self.done += 1
        self.write_results_csv(rejected)
        if self.progress is not None:
            self.progress.advance(self._tasks[0])
        return row

    def run(self, images: list[LowResImage], rejected: list[Rejected] = (), shard: tuple[int, int] = (0, 1)
            ) -> list[dict]:
        """Process ``images`` (skipping finished ones) and return their result rows; with ``shard=(rank, world)``
        only every world-th image from rank on (the refusals below are decided on the whole list, so that all
        ranks agree). ``rejected`` gains the inputs refused for their output names."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        check_progress_folder(self.out_dir)
        if self.writes_summary:
            remove_stale_temporaries(self.out_dir)
        self._fingerprint = self.fingerprint
        images, refused = self.refuse_unsafe(images)
        for item in refused:
            self.log(str(item))
        if isinstance(rejected, list):
            rejected.extend(refused)
        else:
            rejected = [*rejected, *refused]
        rank, world = shard
        images = images[rank::world]
        todo = [image for image in images if not self.is_finished(image)]
        self.total, self.done = len(images), len(images) - len(todo)
        self.log(f"{len(images)} image(s) to super-resolve with preset '{self.settings.name}' "
                 f"({', '.join(sorted({f'x{i.factor}' for i in images}))}) into {self.out_dir}")
        if self.done:
            self.log(f"resuming: {self.done} image(s) already done in {self.out_dir}")
        self.start_progress(len(todo))
        rows = []
        self.optimise(todo, lambda image, samples: rows.append(self.finish_image(image, samples, rejected)))
        self.write_results_csv(rejected)
        return rows
