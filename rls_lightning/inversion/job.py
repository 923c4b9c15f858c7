"""The folder job: what ``invert.py`` keeps on disk while the ``solver`` optimises, with outputs users can trust.

* Every output is written atomically as soon as its image is finished. An image counts as finished once its row
  file ``.progress/<stem>.json`` says ``ok`` (it is first written as ``incomplete``, listing the files about to be
  written, and replaced last); a new run over the same folder skips finished images.
  Output names never collide and only our own outputs are ever replaced or deleted (``outputs``).
* An image whose samples diverged (see ``solver``) is marked ``diverged`` and nothing of it is saved, so a NaN never
  reaches a PNG or a row marked ``ok``.
* A stop request ends the current optimisation after its step (``solver``); finished images are kept, and
  ``Interrupted`` reaches the caller.
* With several ranks each runs every world-th image (``run(..., shard=(rank, world))``, after the refusals,
  which all ranks decide alike on the whole list); seeds are derived from the image stem and sample index, so
  the outputs do not depend on batching or sharding.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..atomic import atomic_write_path, read_record_text, torch_save_atomic
from ..fingerprint import tensor_digest
from ..flow.checkpoint import FlowBundle
from ..image_io import save_png_atomic, to_uint8
from ..interrupts import StopRequests
from ..lr_images import LowResImage, Rejected
from ..names import csv_text, name_bytes, name_max, printable
from ..stylegan import Generator
from .outputs import (PROGRESS_DIR, check_folder_outputs, check_progress_folder, claim_output_names, foreign_files,
                      made_from, output_names, read_record, recorded_outputs, remove_stale_temporaries)
from .settings import InversionSettings
from .solver import SampleResult, Solver, TrainerOptions

RESULT_COLUMNS = ["file", "status", "factor", "preset", "samples", "lr_l1_rls", "lr_l1_final", "ball_reach",
                  "rows_on_ball", "anchor_p_w", "rls_steps", "refine_steps", "seconds", "note"]
FACE_COLUMNS = ["photo", "face", "score", "box", "lr_size"]  # rows of faces cut from photos (invert.py --photos)
STD_MAP_FULL_SCALE = 0.25  # a per-pixel std of 0.25 (on the [0, 1] scale) is drawn white
# what a file system says of a name it will not store (too long; bytes it cannot encode, e.g. on exFAT or SMB)
NAME_ERRORS = (errno.ENAMETOOLONG, errno.EILSEQ)


def _stack_terms(per_sample: list[dict[str, float]]) -> dict[str, torch.Tensor]:
    """``{term: tensor [K]}`` from one ``{term: value}`` per sample (terms every sample has)."""
    names = [name for name in per_sample[0] if all(name in terms for terms in per_sample)]
    return {name: torch.tensor([terms[name] for terms in per_sample], dtype=torch.float64) for name in names}


class InversionJob:
    """One preset over a list of LR images into ``out_dir``: the ``Solver`` optimises, this job keeps the folder
    (what is finished, the outputs of each image as it arrives, results.csv)."""

    def __init__(self, generator: Generator, flow: FlowBundle | None, settings: InversionSettings, out_dir: Path,
                 *, batch_size: int = 4, num_samples: int = 1, seed: int = 0,
                 trainer: TrainerOptions | None = None, progress=None,
                 log: Callable[[str], None] = print, writes_summary: bool = True,
                 stop: StopRequests | None = None, save_inputs: bool = False) -> None:
        self.solver = Solver(generator, flow, settings, batch_size=batch_size, num_samples=num_samples, seed=seed,
                             trainer=trainer, progress=progress, stop=stop)
        self.generator, self.flow, self.settings = generator, flow, settings
        self.num_samples, self.seed = self.solver.num_samples, self.solver.seed
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.log = log
        self.writes_summary = writes_summary  # with several ranks, only rank 0 rewrites results.csv
        self.save_inputs = save_inputs  # also write each input as <stem>_lr.png (inputs made here, e.g. face crops)
        self.extras: dict[str, dict] = {}  # per stem: {"row": {...}, "payload": {...}} added to its outputs
        self.total = 0  # images of this run (finished before or now), for "N of M done"
        self.done = 0

    # ------------------------------------------------------------------ bookkeeping

    @property
    def progress_dir(self) -> Path:
        return self.out_dir / PROGRESS_DIR

    @property
    def fingerprint(self) -> str:
        """What decides the result of an image: settings, seed, samples, precision, generator and flow weights."""
        described = {"settings": dataclasses.asdict(self.settings), "seed": self.seed, "samples": self.num_samples,
                     "generator": tensor_digest(self.generator.state_dict().items()),
                     "flow": tensor_digest(self.flow.flow.state_dict().items()) if self.flow is not None else None}
        if (precision := self.solver.trainer_options.precision) != "32-true":  # folders of 32-true runs made
            described["precision"] = precision  # before precision counted here still resume
        return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def is_finished(self, image: LowResImage) -> bool:
        """Finished by an earlier run with the same fingerprint from the same input (other settings, or another
        file or crop under the same name, redo the image; rows written before inputs were recorded count)."""
        if not (self.out_dir / f"{image.stem}.png").is_file():
            return False
        row = read_record(self.out_dir, image.stem)
        return (row is not None and row.get("status", "ok") == "ok" and row.get("fingerprint") == self._fingerprint
                and made_from(self.out_dir, image, row))

    def write_results_csv(self, rejected: list[Rejected] = ()) -> Path | None:
        """Rebuild ``results.csv`` from the per-image rows (and the skipped files), atomically."""
        if not self.writes_summary:
            return None
        rows = []
        for row_path in sorted(self.progress_dir.glob("*.json")):
            try:
                row = json.loads(read_record_text(row_path))
            except (OSError, ValueError):  # unreadable, not UTF-8, not JSON: not a row of ours
                continue
            if isinstance(row, dict) and isinstance(row.get("file"), str):
                rows.append(row)
        rows += [{"file": r.path.name, "status": "skipped", "note": r.reason} for r in rejected]
        rows.sort(key=lambda r: printable(r["file"]))
        columns = RESULT_COLUMNS[:1] + FACE_COLUMNS + RESULT_COLUMNS[1:] \
            if any("photo" in row for row in rows) else RESULT_COLUMNS
        path = self.out_dir / "results.csv"
        self.progress_dir.mkdir(exist_ok=True)  # marks the folder's results.csv as ours (check_folder_outputs)
        with atomic_write_path(path) as tmp:
            tmp.write_text(csv_text(rows, columns))
        return path

    # ------------------------------------------------------------------ outputs

    def _write_row(self, image: LowResImage, row: dict) -> None:
        with atomic_write_path(self.progress_dir / f"{image.stem}.json") as tmp:
            tmp.write_text(json.dumps(row))

    def _base_row(self, image: LowResImage, samples: list[SampleResult]) -> dict:
        first = samples[0]
        notes = [image.note] if image.note else []
        notes += [note for s in samples for note in s.notes]
        p_w = first.terms_rls.get("P_w")
        return {**self.extras.get(image.stem, {}).get("row", {}), "file": image.path.name, "factor": image.factor, "preset": self.settings.name,
                "samples": len(samples), "anchor_p_w": None if p_w is None else round(p_w, 2),
                "rls_steps": first.rls_steps, "refine_steps": first.refine_steps,
                "seconds": round(sum(s.seconds for s in samples), 2), "note": "; ".join(notes),
                "fingerprint": self._fingerprint, "input": image.digest}

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
        return row

    def run(self, images: list[LowResImage], rejected: list[Rejected] = (), shard: tuple[int, int] = (0, 1)
            ) -> list[dict]:
        """Process ``images`` (skipping finished ones) and return their result rows; with ``shard=(rank, world)``
        only every world-th image from rank on (the refusals below are decided on the whole list, so that all
        ranks agree). ``rejected`` gains the inputs refused for their output names."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        check_progress_folder(self.out_dir)
        check_folder_outputs(self.out_dir)
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
        rows = []
        self.solver.solve(todo, lambda image, samples: rows.append(self.finish_image(image, samples, rejected)))
        self.write_results_csv(rejected)
        return rows
