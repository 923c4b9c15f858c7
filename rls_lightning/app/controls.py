"""The page's controls (one per ``invert.py`` option it exposes), made from the settings' one description
(``api.settings.SETTINGS``: label, explanation, range), and the values a preset gives them."""
from __future__ import annotations

import dataclasses

from ..api.settings import PRESETS, SETTINGS, get_preset


@dataclasses.dataclass(frozen=True)
class Control:
    name: str  # the JobRequest field (and invert.py option, with dashes)
    label: str
    info: str  # the one-line explanation shown under it
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None


def _control(name: str) -> Control:
    setting = SETTINGS[name]
    low, high = setting.page_range or (setting.minimum, setting.maximum)
    return Control(name, setting.label, setting.info, setting.kind == "int", low, high)


CONTROLS = tuple(_control(name) for name in ("steps", "refine_steps", "radius_scale", "lambda_w", "lambda_g",
                                             "lambda_c", "num_samples", "seed"))


def preset_values(preset: str) -> dict[str, float | int]:
    """What each control shows for ``preset`` (its own settings; the sampling controls at invert.py's defaults)."""
    settings = get_preset(preset)
    s, r = settings.search, settings.refine
    return {"steps": s.steps, "refine_steps": r.steps if r.enabled else 0,
            "radius_scale": -1.0 if r.radius_scale is None else r.radius_scale,
            "lambda_w": s.lambda_w, "lambda_g": s.lambda_g, "lambda_c": s.lambda_c,
            "num_samples": SETTINGS["num_samples"].default, "seed": SETTINGS["seed"].default}


def preset_description(preset: str) -> str:
    return PRESETS[preset].description if preset in PRESETS else ""
