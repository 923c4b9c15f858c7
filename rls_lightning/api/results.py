"""What the API returns: the results of one image (``SuperResolution``) and of one photograph (``PhotoRestoration``),
in memory. The pixels are exactly those ``invert.py`` writes for the same settings and seed (``<stem>.png`` is
``image``, ``<stem>_rls.png`` is ``rls_image``); the W+ codes, noise maps and objective terms are those of its
``<stem>.pt``, and ``lr_consistency`` that of its ``results.csv``. Plain data: no Lightning.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..image_io import to_uint8
from ..inversion.job import SampleResult


def _pil(image: torch.Tensor) -> Image.Image:
    """A ``[1, C, H, W]`` or ``[C, H, W]`` image in [-1, 1] (C = 3, or 1: mode L) as the 8-bit picture
    ``invert.py`` saves of it."""
    pixels = to_uint8(image.reshape(-1, *image.shape[-2:]))
    return Image.fromarray(pixels[:, :, 0] if pixels.shape[-1] == 1 else pixels)


@dataclasses.dataclass
class SuperResolution:
    """One input's result. With ``num_samples`` K > 1, ``image`` and every single-valued field are those of the
    first sample (started from the flow's mean w, as with K = 1), and ``samples`` / ``pixel_std`` hold all K."""

    name: str  # the input's file stem, or image<i>
    factor: int  # the generator's size / the input's size
    image: Image.Image | None  # RLS+ result (RLS result when RLS+ is off); None when the image diverged
    rls_image: Image.Image | None  # the RLS anchor (paper Eq. 6)
    tensor: torch.Tensor | None  # ``image`` before 8-bit rounding: [C, H, W] float in [0, 1] (C: the generator's)
    ws: torch.Tensor | None  # [K, num_ws, w_dim]: W+ of each sample's result
    ws_rls: torch.Tensor | None  # [K, num_ws, w_dim]: W+ of each sample's RLS anchor
    noise: list[list[torch.Tensor]]  # per sample, the noise maps of its result
    lr_consistency: float | None  # mean |D(x) - y| on the [0, 1] scale of the result
    lr_consistency_rls: float | None  # ... of the RLS anchor
    terms_rls: dict[str, float]  # the RLS objective's terms at the anchor (likelihood, priors, total)
    terms_refine: dict[str, float] | None  # the RLS+ objective's terms at the result (None without RLS+)
    ball_reach: float | None  # largest W+ row distance to its anchor / the l1 ball's radius
    rows_on_ball: int | None  # W+ rows on the ball's boundary (None without a ball)
    rls_steps: int
    refine_steps: int
    seconds: float
    notes: list[str]
    samples: list[Image.Image] | None = None  # K > 1: every sample's result
    pixel_std: torch.Tensor | None = None  # K > 1: [H, W] per-pixel std over the samples, on the [0, 1] scale
    diverged: str | None = None  # why there is no result (the loss stayed non-finite after every restart)
    sample_results: list[SampleResult] = dataclasses.field(default_factory=list, repr=False)

    @classmethod
    def from_samples(cls, name: str, factor: int, samples: list[SampleResult], note: str = "") -> "SuperResolution":
        """The result of one input from its K ``SampleResult`` s (``InversionJob``'s per-sample outcomes)."""
        first = samples[0]
        notes = ([note] if note else []) + [line for s in samples for line in s.notes]
        common = dict(name=name, factor=factor, noise=[], terms_rls=dict(first.terms_rls),
                      terms_refine=None if first.terms_refine is None else dict(first.terms_refine),
                      ball_reach=first.ball_reach, rows_on_ball=first.rows_on_ball, rls_steps=first.rls_steps,
                      refine_steps=first.refine_steps, seconds=sum(s.seconds for s in samples), notes=notes,
                      sample_results=samples)
        reasons = [s.diverged for s in samples if s.diverged]
        if reasons:
            return cls(image=None, rls_image=None, tensor=None, ws=None, ws_rls=None, lr_consistency=None,
                       lr_consistency_rls=None, diverged=reasons[0], **common)
        finals = [s.image if s.image is not None else s.image_rls for s in samples]
        common["noise"] = [[m.clone() for m in (s.noise if s.noise is not None else s.noise_rls)] for s in samples]
        result = cls(image=_pil(finals[0]), rls_image=_pil(first.image_rls),
                     tensor=(0.5 * (finals[0][0].float() + 1)).clamp(0, 1),
                     ws=torch.cat([s.ws if s.ws is not None else s.ws_rls for s in samples]),
                     ws_rls=torch.cat([s.ws_rls for s in samples]),
                     lr_consistency=first.lr_l1 if first.lr_l1 is not None else first.lr_l1_rls,
                     lr_consistency_rls=first.lr_l1_rls, **common)
        if len(samples) > 1:
            stack = torch.cat(finals).float().clamp(-1, 1)  # [K, C, H, W], as the sample PNGs are drawn
            result.samples = [_pil(image) for image in stack]
            result.pixel_std = (0.5 * stack).std(dim=0, unbiased=True).mean(dim=0)  # invert.py's <stem>_std map
        return result


@dataclasses.dataclass
class RestoredFace:
    """One face found in a photograph: where it is, and its result when it was super-resolved."""

    index: int  # k of <photo>_face<k>, largest face first
    score: float  # the detector's face probability
    box: np.ndarray  # (x0, y0, x1, y1) in photo pixels
    photo_to_crop: np.ndarray  # [2, 3] affine: photo pixel coordinates -> LR crop pixel coordinates
    lr_size: int  # the side of the aligned LR crop
    crop: Image.Image | None  # the aligned LR crop the inversion was given (None for a face left as it was)
    result: SuperResolution | None  # None for a face left as it was
    pasted: bool  # whether the result went into the restored photo (it reproduces its input)
    kept: str | None = None  # why the face was left as the plain enlargement


@dataclasses.dataclass
class PhotoRestoration:
    """One photograph: the restored photo (its enlargement with every usable face pasted back) and its faces."""

    image: Image.Image | None  # None when the photo could not be restored (see notes)
    upscale: int  # how many times the photo was enlarged
    faces: list[RestoredFace]
    notes: list[str]
    source: Path | None = None
