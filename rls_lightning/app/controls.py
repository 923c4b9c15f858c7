"""The page's controls (one per ``invert.py`` option it exposes) and the values a preset gives them."""
from __future__ import annotations

import dataclasses

from ..inversion.presets import PRESETS, get_preset


@dataclasses.dataclass(frozen=True)
class Control:
    name: str  # the JobRequest field (and invert.py option, with dashes)
    label: str
    info: str  # the one-line explanation shown under it
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None


CONTROLS = (
    Control("steps", "RLS steps", "Adam steps of the latent search on W+ (paper: 200)", True, 1, 2000),
    Control("refine_steps", "RLS+ steps", "steps fine-tuning w, the generator's weights and noise around the RLS "
            "result (paper: 50; 0 = RLS only; presets without RLS+ ignore it)", True, 0, 1000),
    Control("radius_scale", "l1-ball radius scale", "RLS+ keeps w within an l1 ball of this radius x sqrt(d) "
            "around the RLS result (paper: 1; negative = no ball)"),
    Control("lambda_w", "lambda_w", "weight of the flow's log-density P_w of the latent (paper: 2e-4)",
            minimum=0),
    Control("lambda_g", "lambda_g", "weight of the Gaussianization prior P_gaussian (paper: 4e-4)", minimum=0),
    Control("lambda_c", "lambda_c", "weight of the cross prior P_cross keeping the W+ rows close (paper: 0.05)",
            minimum=0),
    Control("num_samples", "samples K", "K results per image from different starting points; K > 1 also gives "
            "their per-pixel standard-deviation map", True, 1, 16),
    Control("seed", "seed", "seed of the starting points (sample 1 starts at the mean w, the others at random w)",
            True, 0, 2**31 - 1),
)


def preset_values(preset: str) -> dict[str, float | int]:
    """What each control shows for ``preset`` (its own settings; the sampling controls at invert.py's defaults)."""
    settings = get_preset(preset)
    s, r = settings.search, settings.refine
    return {"steps": s.steps, "refine_steps": r.steps if r.enabled else 0,
            "radius_scale": -1.0 if r.radius_scale is None else r.radius_scale,
            "lambda_w": s.lambda_w, "lambda_g": s.lambda_g, "lambda_c": s.lambda_c, "num_samples": 1, "seed": 0}


def preset_description(preset: str) -> str:
    return PRESETS[preset].description if preset in PRESETS else ""
