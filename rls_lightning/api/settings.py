"""A preset and its overrides as keyword arguments: the ``InversionSettings`` of one run.

The names are ``invert.py``'s option names with underscores (``steps``, ``refine_steps``, ``lambda_w``, ...), and
None keeps the preset's value, so ``build_settings("rls+", steps=4)`` is what ``invert.py --steps 4`` runs. Every
value is checked here, before any work; a bad one is a ``SettingsError`` (a ``ValueError``) naming the setting,
the value and what is allowed. Plain Python: no torch, no Lightning.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import typing

from ..inversion.presets import PRESETS, get_preset
from ..inversion.settings import CrossPrior, InversionSettings, LikelihoodReduction, Schedule

SCHEDULES = typing.get_args(Schedule)  # paper (constant) and the official code (PULSE's one-cycle drop)
CROSS_PRIORS = typing.get_args(CrossPrior)
LIKELIHOOD_REDUCTIONS = typing.get_args(LikelihoodReduction)  # paper Eq. 6 (the l1 norm) and the official mean


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting a user can give, described once: the API's keyword and its check, ``invert.py``'s option
    (``--`` + name with dashes) and its help, the page's control (``label``, ``info``, ``page_range``).

    ``kind``: int, float, bool or choice; ``minimum`` / ``above`` (exclusive) / ``maximum`` bound it, ``choices``
    list a choice's values. ``override``: None keeps the preset's value (a preset setting); else ``default`` is
    the value (a run option). ``source``: where the default comes from (paper section, official code).
    """

    name: str
    kind: str
    help: str
    source: str = ""
    minimum: float | None = None
    above: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    override: bool = True
    default: object = None
    label: str = ""
    info: str = ""
    page_range: tuple[float, float] | None = None  # the page's bounds, where tighter than the setting's
    special: str = ""  # what a value outside the plain range means ("negative: no l1 ball")

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def allowed(self) -> str:
        """What the setting accepts, in words (error messages)."""
        return self._range() + (f" ({self.special})" if self.special else "")

    def _range(self) -> str:
        if self.kind == "choice":
            return f"one of {', '.join(self.choices)}"
        if self.kind == "bool":
            return "true or false"
        what = "an integer" if self.kind == "int" else "a number"
        if self.above is not None:
            return f"{what} > {self.above:g}"
        if self.minimum is not None and self.maximum is not None:
            return f"{what} from {self.minimum:g} to {self.maximum:g}"
        if self.minimum is not None:
            return f"{what} >= {self.minimum:g}"
        return what

    def accepts(self, value) -> bool:
        if self.kind == "choice":
            return value in self.choices
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "int" and not _is_int(value) or self.kind == "float" and not _is_number(value):
            return False
        return not ((self.minimum is not None and value < self.minimum)
                    or (self.above is not None and value <= self.above)
                    or (self.maximum is not None and value > self.maximum))

    def help_text(self) -> str:
        """``invert.py``'s help line: what it does, then where its default comes from."""
        return f"{self.help} ({self.source})" if self.source else self.help


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("steps", "int", "RLS Adam steps", "paper sec. 4: 200", minimum=1, label="RLS steps",
            info="Adam steps of the latent search on W+ (paper: 200)", page_range=(1, 2000)),
    Setting("lr", "float", "RLS learning rate (Adam), the peak of the one-cycle schedule", "paper sec. 4: 0.5",
            above=0),
    Setting("lambda_w", "float", "weight of P_w, the flow's log-density of the W+ rows (Eq. 5)",
            "paper sec. 4: 2e-4", minimum=0, label="lambda_w",
            info="weight of the flow's log-density P_w of the latent (paper: 2e-4)"),
    Setting("lambda_g", "float", "weight of P_gaussian, the Gaussianization prior (Eq. 5)", "paper sec. 4: 4e-4",
            minimum=0, label="lambda_g", info="weight of the Gaussianization prior P_gaussian (paper: 4e-4)"),
    Setting("lambda_c", "float", "weight of P_cross, the cross prior keeping the W+ rows close (Eq. 5)",
            "paper sec. 4: 0.05", minimum=0, label="lambda_c",
            info="weight of the cross prior P_cross keeping the W+ rows close (paper: 0.05)"),
    Setting("cross", "choice", "cross prior P_cross on the W+ rows: mean-distance (the official rls.py's mean "
            "pairwise distance, smoothed below 0.01), squared-sum (Eq. 5 written out; next to the mean likelihood "
            "it holds the anchor at the mean face) or mean-squared (Eq. 5's squares averaged over the pairs)",
            "default: mean-distance, official rls.py (the reading under which Tables 1 and 5 hold)",
            choices=CROSS_PRIORS),
    Setting("likelihood_reduction", "choice", "RLS likelihood |y - D(G(w))|: averaged over the LR values (the "
            "official rls.py) or summed (Eq. 6 with sec. 3.1's Laplace scale taken as 1; the priors then stop "
            "acting and anchors leave the flow's high-density region)", "default: mean, official rls.py (Eq. 6 "
            "leaves the scale open)", choices=LIKELIHOOD_REDUCTIONS),
    Setting("schedule", "choice", "learning-rate schedule of RLS and of RLS+'s w and noise (the generator's "
            "weights keep their rate): one-cycle (PULSE's one-cycle drop) or constant",
            "default: one-cycle, the official code; the paper names none", choices=SCHEDULES),
    Setting("keep_best", "bool", "return each stage's lowest-objective state instead of the last or "
            "early-stopped one (RLS+ then never ends worse than its anchor)",
            "default: true, the official code; the paper is silent"),
    Setting("refine_steps", "int", "RLS+ steps (0: RLS only; presets without RLS+ ignore it)",
            "paper sec. 4: 50", minimum=0, special="0: no RLS+", label="RLS+ steps",
            info="steps fine-tuning w, the generator's weights and noise around the RLS result (paper: 50; 0 = RLS "
                 "only; presets without RLS+ ignore it)", page_range=(0, 1000)),
    Setting("refine_lr", "float", "one RLS+ learning rate for w, noise and generator weights alike",
            "default: the generator 1e-4 (paper sec. 4), w and noise 0.1 (the official rls_plus.py; the paper "
            "gives none); 1e-4 for all three is sec. 4 read literally, preset rls+literal", above=0),
    Setting("radius_scale", "float", "l1-ball radius around the anchor in units of sqrt(d); negative: no ball",
            "paper sec. 4: 1", special="negative: no l1 ball", label="l1-ball radius scale",
            info="RLS+ keeps w within an l1 ball of this radius x sqrt(d) around the RLS result (paper: 1; "
                 "negative = no ball)"),
    Setting("trainable_noise", "int", "how many of the first noise maps RLS+ optimises",
            "default: the maps up to 1/16 of the output resolution, i.e. the paper's (sec. 4) and the official "
            "code's first nine on a 1024 px generator, the 4 x 4 map alone at 64 px", minimum=0),
    Setting("patience", "int", "RLS+ early stopping patience in steps; negative: no early stopping",
            "ours: 5, counted from the one-cycle's peak; the paper gives none, the official code does not stop early",
            special="negative: no early stopping"),
    Setting("num_samples", "int", "K results per image from different initialisations (paper Figure 7); K > 1 "
            "also writes their per-pixel standard deviation", minimum=1, override=False, default=1,
            label="samples K", info="K results per image from different starting points; K > 1 also gives their "
            "per-pixel standard-deviation map", page_range=(1, 16)),
    Setting("seed", "int", "seed of the initialisations (sample 0 starts at the flow's mean w, the others at "
            "seeded mapped w)", minimum=0, override=False, default=0, label="seed",
            info="seed of the starting points (sample 1 starts at the mean w, the others at random w)",
            page_range=(0, 2**31 - 1)),
)}
# The settings of a preset that a run may override (None keeps the preset's value): invert.py's options of the
# same names, the API's keyword arguments.
OVERRIDES = {name: setting.allowed() for name, setting in SETTINGS.items() if setting.override}


class SettingsError(ValueError):
    """A preset or setting that cannot be used; one line naming it, its value and what is allowed
    (``setting=value: reason``). ``setting``, ``value`` and ``reason`` let a command or the page word it its own
    way (``--refine-steps 0: ...``, ``RLS+ steps 0: ...``)."""

    def __init__(self, setting: str, value, reason: str, shown: str | None = None) -> None:
        self.setting, self.value, self.reason = setting, value, reason
        super().__init__(f"{setting}={shown if shown is not None else repr(value)}: {reason}")


def plain_number(value):
    """A numpy (or other) integer or real scalar as Python's ``int`` or ``float``, as ``invert.py`` would parse
    it; anything else as it is (bools stay bools, and are refused where a number is wanted)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value) if isinstance(value, numbers.Real) else value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def check_overrides(overrides: dict) -> None:
    """Every key a known setting and every value of its kind (None: the preset's value)."""
    for name, value in overrides.items():
        if name not in OVERRIDES:
            guess = difflib.get_close_matches(name, OVERRIDES, n=1)
            hint = f"did you mean {guess[0]}?" if guess else f"settings: {', '.join(OVERRIDES)}"
            raise SettingsError(name, value, f"unknown setting ({hint})")
        if value is not None and not SETTINGS[name].accepts(value):
            raise SettingsError(name, value, f"must be {SETTINGS[name].allowed()}")


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
    overrides = {name: plain_number(value) for name, value in overrides.items()}
    check_overrides(overrides)
    given = {name: value for name, value in overrides.items() if value is not None}
    search = {name: given[name] for name in ("steps", "lr", "lambda_w", "lambda_g", "lambda_c", "schedule", "cross",
                                             "likelihood_reduction", "keep_best") if name in given}
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
