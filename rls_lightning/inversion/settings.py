"""Every knob of the two stages, with where its default comes from.

Defaults are the paper's (section 4); where the paper is silent they are the official code's
(mgheisar/RLS_PLUS), said so below; the official code's departures from the paper are options (see presets).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal

Schedule = Literal["constant", "one-cycle"]


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """RLS, Eq. 6: ``min_w  c * lik(y, D(G(w))) - lambda_w P_w - lambda_g P_gaussian - lambda_c P_cross``."""

    steps: int = 200  # paper sec. 4 (official: 500)
    lr: float = 0.5  # paper sec. 4 (Adam)
    schedule: Schedule = "constant"  # paper: none stated; official: PULSE's one-cycle drop
    space: Literal["w+", "w"] = "w+"  # "w": one w shared by all layers (ablation "w/o W+", Table 5)
    init: Literal["flow-mean", "pulse-random"] = "flow-mean"  # paper: mean of 100,000 mapped w
    likelihood: Literal["l1", "l2"] = "l1"  # paper sec. 3.1: Laplace noise
    likelihood_weight: float = 1.0  # official: 10 (with all lambdas x10, the same optimum)
    lambda_w: float = 2e-4  # paper sec. 4
    lambda_g: float = 4e-4  # paper sec. 4
    lambda_c: float = 0.05  # paper sec. 4
    cross: Literal["squared-sum", "mean-distance"] = "squared-sum"  # paper Eq. 5; official: mean distance
    keep_best: bool = False  # official: return the lowest-loss step
    trainable_noise: int = 0  # RLS does not optimise noise (official); PULSE: the first 5 maps
    # Baselines (see presets): PULSE's sphere in its Gaussianised space and GEOCROSS; BRGM's priors.
    pulse_sphere: bool = False
    geocross_weight: float = 0.0
    gaussian_prior_weight: float = 0.0
    cosine_cross_weight: float = 0.0
    cosine_cross_weight_above_16x: float | None = None

    @property
    def uses_flow(self) -> bool:
        return self.lambda_w != 0 or self.lambda_g != 0


@dataclasses.dataclass(frozen=True)
class RefineSettings:
    """RLS+, Eq. 7: ``min_{w, theta, eta} |y - D(G(w, theta, eta))|_1`` with w in an l1 ball around the anchor."""

    enabled: bool = True
    steps: int = 50  # paper sec. 4 (official: 200)
    lr_w: float = 1e-4  # paper sec. 4: one learning rate (official: 0.1 for w and noise, one-cycle)
    lr_generator: float = 1e-4  # paper sec. 4 (official: 1e-4)
    lr_noise: float = 1e-4  # paper sec. 4
    schedule: Schedule = "constant"  # for w and noise; official: one-cycle
    optimize_w: bool = True  # ablation "w/o w"
    optimize_generator: bool = True  # ablation "w/o g"
    optimize_noise: bool = True  # ablation "w/o noise"
    trainable_noise: int = 9  # "only the first nine input layers are optimized" = the first 9 noise maps (official)
    radius_scale: float | None = 1.0  # radius = scale * sqrt(d) (paper sec. 4); None: no ball ("w/o l1-ball")
    from_anchor: bool = True  # False: start from the flow mean, skipping RLS ("w/o anchor")
    early_stopping_patience: int | None = 5  # paper: "early stopping", patience not given; official: none
    keep_best: bool = False  # official: keep the best-loss image
    renormalize_noise: bool = False  # official: noise maps renormalised to zero mean, unit std every step

    def radius(self, w_dim: int) -> float | None:
        return None if self.radius_scale is None else self.radius_scale * math.sqrt(w_dim)


@dataclasses.dataclass(frozen=True)
class InversionSettings:
    name: str
    search: SearchSettings
    refine: RefineSettings
    description: str = ""

    def replace(self, search: dict | None = None, refine: dict | None = None) -> "InversionSettings":
        return dataclasses.replace(self, search=dataclasses.replace(self.search, **(search or {})),
                                   refine=dataclasses.replace(self.refine, **(refine or {})))
