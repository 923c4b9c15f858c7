"""A preset and its overrides as keyword arguments: the ``InversionSettings`` of one run.

The names are ``invert.py``'s option names with underscores (``steps``, ``refine_steps``, ``lambda_w``, ...), and
None keeps the preset's value, so ``build_settings("rls+", steps=4)`` is what ``invert.py --steps 4`` runs. Every
value is checked here, before any work; a bad one is a ``SettingsError`` (a ``ValueError``) naming the setting,
the value and what is allowed. Plain Python: no torch, no Lightning.
"""
from __future__ import annotations

import difflib
import math

from ..inversion.presets import PRESETS, get_preset
from ..inversion.settings import InversionSettings

SCHEDULES = ("constant", "one-cycle")  # paper (constant) and the official code (PULSE's one-cycle drop)
CROSS_PRIORS = ("squared-sum", "mean-distance")  # paper Eq. 5 and the official code's mean distance
# The overrides of a preset, with what each accepts; the ranges are those of invert.py's options.
OVERRIDES = {
    "steps": "an integer >= 1",
    "lr": "a number > 0",
    "lambda_w": "a number >= 0",
    "lambda_g": "a number >= 0",
    "lambda_c": "a number >= 0",
    "cross": f"one of {', '.join(CROSS_PRIORS)}",
    "schedule": f"one of {', '.join(SCHEDULES)}",
    "keep_best": "true or false",
    "refine_steps": "an integer >= 0 (0: no RLS+)",
    "refine_lr": "a number > 0",
    "radius_scale": "a number (negative: no l1 ball)",
    "trainable_noise": "an integer >= 0",
    "patience": "an integer (negative: no early stopping)",
}


class SettingsError(ValueError):
    """A preset or setting that cannot be used; one line naming it, its value and what is allowed
    (``setting=value: reason``). ``setting``, ``value`` and ``reason`` let a command or the page word it its own
    way (``--refine-steps 0: ...``, ``RLS+ steps 0: ...``)."""

    def __init__(self, setting: str, value, reason: str, shown: str | None = None) -> None:
        self.setting, self.value, self.reason = setting, value, reason
        super().__init__(f"{setting}={shown if shown is not None else repr(value)}: {reason}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def _acceptable(name: str, value) -> bool:
    if name in ("steps",):
        return _is_int(value) and value >= 1
    if name in ("refine_steps", "trainable_noise"):
        return _is_int(value) and value >= 0
    if name in ("patience",):
        return _is_int(value)
    if name in ("lr", "refine_lr"):
        return _is_number(value) and value > 0
    if name in ("lambda_w", "lambda_g", "lambda_c"):
        return _is_number(value) and value >= 0
    if name == "radius_scale":
        return _is_number(value)
    if name == "cross":
        return value in CROSS_PRIORS
    if name == "schedule":
        return value in SCHEDULES
    return isinstance(value, bool)  # keep_best


def check_overrides(overrides: dict) -> None:
    """Every key a known setting and every value of its kind (None: the preset's value)."""
    for name, value in overrides.items():
        if name not in OVERRIDES:
            guess = difflib.get_close_matches(name, OVERRIDES, n=1)
            hint = f"did you mean {guess[0]}?" if guess else f"settings: {', '.join(OVERRIDES)}"
            raise SettingsError(name, value, f"unknown setting ({hint})")
        if value is not None and not _acceptable(name, value):
            raise SettingsError(name, value, f"must be {OVERRIDES[name]}")


def build_settings(preset: str = "rls+", **overrides) -> InversionSettings:
    """The settings of ``preset`` with ``overrides`` (see ``OVERRIDES``; None keeps the preset's value).

    ``refine_steps=0`` switches RLS+ off; a negative ``radius_scale`` removes the l1 ball (ablation "w/o l1-ball",
    paper Table 2) and a negative ``patience`` the early stopping; ``refine_lr`` sets the rate of w, noise and
    generator weights alike; ``schedule`` and ``keep_best`` apply to both stages.
    """
    if preset not in PRESETS:
        guess = difflib.get_close_matches(str(preset), PRESETS, n=1)
        raise SettingsError("preset", preset, f"must be one of {', '.join(PRESETS)}"
                            + (f" (did you mean {guess[0]}?)" if guess else ""))
    check_overrides(overrides)
    given = {name: value for name, value in overrides.items() if value is not None}
    search = {name: given[name] for name in ("steps", "lr", "lambda_w", "lambda_g", "lambda_c", "schedule", "cross",
                                             "keep_best") if name in given}
    refine = {field: given[name] for name, field in (("refine_steps", "steps"), ("schedule", "schedule"),
                                                     ("keep_best", "keep_best"),
                                                     ("trainable_noise", "trainable_noise")) if name in given}
    if "refine_lr" in given:
        refine.update(lr_w=given["refine_lr"], lr_noise=given["refine_lr"], lr_generator=given["refine_lr"])
    if "radius_scale" in given:
        refine["radius_scale"] = None if given["radius_scale"] < 0 else given["radius_scale"]
    if "patience" in given:
        refine["early_stopping_patience"] = None if given["patience"] < 0 else given["patience"]
    if given.get("refine_steps") == 0:
        refine = {"enabled": False}
    settings = get_preset(preset).replace(search=search, refine=refine)
    if not settings.refine.from_anchor and not settings.refine.enabled:
        raise SettingsError("refine_steps", 0, f"preset {settings.name} skips RLS, so it needs RLS+ steps (at least 1)")
    return settings
