"""Every knob of the two stages, with where its default comes from.

Defaults are the paper's (section 4); where the paper is silent they are the official code's
(mgheisar/RLS_PLUS), said so below; the official code's departures from the paper are options (see presets).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal

Schedule = Literal["constant", "one-cycle"]
CrossPrior = Literal["squared-sum", "mean-distance", "mean-squared"]  # Eq. 5, official rls.py, Eq. 5 averaged
LikelihoodReduction = Literal["sum", "mean"]  # Eq. 6 (the l1 norm), official rls.py


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """RLS, Eq. 6: ``min_w  c * lik(y, D(G(w))) - lambda_w P_w - lambda_g P_gaussian - lambda_c P_cross``.

    The likelihood's scale. Sec. 3.1 models the LR noise as Laplace(0, lambda_l) and then drops lambda_l, so Eq.
    6's ``||y - D(G(w))||_1`` fixes the weight of the data term only up to that scale; the official ``rls.py``
    takes ``10 * mean`` (every weight 10 times the paper's: the same optimum as the mean with the paper's). The
    l1 *sum* (lambda_l = 1) makes the data term 192 (8x on 64 px) to 49,152 (8x on 1024 px) times the mean and the
    priors stop acting: anchors sit at a flow log-density of -760 where 99% of mapped w are above +32, about half
    the faces carry marks, and RLS matches bicubic and would grow with the LR size, where Table 1 has RLS 9.5 dB
    below bicubic at 8x and no better at 8x than at 64x (18.48 vs 17.97 dB). So the mean is the default
    (first 16 held-out faces, 8x, ``scripts/measure_rls_anchor.py``), as in the official code.

    P_cross. Eq. 5 writes the *sum* of squared row distances; P_w and P_gaussian beside it are *averages* over the
    rows (1/L), and the official code averages its cross term over the row pairs but drops the square. Next to the
    mean likelihood (first 16 held-out faces at 8x):

    - Eq. 5's *sum* of squares (45 pairs at 64 px, 153 at 1024 px) is so stiff that every anchor stays at the
      mean face (rows 0.005 apart, 16.86 dB), which Table 1's best identity score of RLS at 64x rules out;
    - the official *mean distance* (the default) keeps the anchors in the prior's high-density region (log-
      density 191-315) and clean; RLS 1.9 dB below bicubic and RLS+ 1.7 dB above RLS (Table 1's directions); one
      w ("w/o W+") within 0.02 dB of RLS and "w/o P_cross" 1.7 dB more faithful but with artifacts, as Table 5
      (MS-SSIM 0.518 vs 0.521 vs 0.549) and Figure 9 show;
    - the *mean of squares* (``--cross mean-squared``), Eq. 5's square with the averaging of its neighbours, is
      the same in every measure (RLS +0.01 +- 0.08 dB, RLS+ +0.01 +- 0.05, P_w 282 against 278, one face of 48
      moved by the AVX2 kernels as under the default), its rows 0.138 apart instead of 0.009.

    Under each the rows end close beside two mapped w (12 apart): from an 8x8 input the data term hardly tells
    the layers apart, and any cross term pulls them together, so the anchor is one w in effect; only the l1 sum
    (rows 0.2-0.7 apart, anchors off the prior) or no P_cross (11 apart, Figure 9's artifacts) part them.
    ``--cross squared-sum`` (preset ``rls+eq5-cross``), ``--cross mean-squared`` (``rls+mean-squared-cross``) and
    ``--likelihood-reduction sum`` (``rls+l1-sum``) keep the other readings. The mean distance is smoothed below
    0.01 (``objective.mean_distance_cross_prior``) so collapsed rows do not follow rounding.
    """

    steps: int = 200  # paper sec. 4 (official: 500)
    lr: float = 0.5  # paper sec. 4 (Adam)
    schedule: Schedule = "one-cycle"  # paper silent; official rls.py: PULSE's one-cycle drop ("linear1cycledrop")
    space: Literal["w+", "w"] = "w+"  # "w": one w shared by all layers (ablation "w/o W+", Table 5)
    init: Literal["flow-mean", "pulse-random"] = "flow-mean"  # paper: mean of 100,000 mapped w
    likelihood: Literal["l1", "l2"] = "l1"  # paper sec. 3.1: Laplace noise
    likelihood_reduction: LikelihoodReduction = "mean"  # official rls.py; Eq. 6's scale is open (see above)
    likelihood_weight: float = 1.0  # official: 10 on the mean (with all lambdas x10, the same optimum)
    lambda_w: float = 2e-4  # paper sec. 4
    lambda_g: float = 4e-4  # paper sec. 4
    lambda_c: float = 0.05  # paper sec. 4
    cross: CrossPrior = "mean-distance"  # official rls.py (Eq. 5: squared-sum; above)
    keep_best: bool = True  # paper silent; official rls.py: the lowest-loss step is the output
    sample_spread: float = 0.2  # samples k >= 1 start at mean + 0.2 (mapping(z) - mean): official rls.py
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
    """RLS+, Eq. 7: ``min_{w, theta, eta} |y - D(G(w, theta, eta))|_1`` with w in an l1 ball around the anchor.

    Learning rates. Sec. 4 says "for RLS+, we further run for only 50 iterations with a learning rate of 0.0001".
    Read as one rate for w, noise and weights, it contradicts the paper's own ablation: Adam moves a coordinate by
    at most about lr per step, so 50 steps at 1e-4 move a W+ row by at most 50 * 1e-4 * d in l1 (2.6 at d = 512)
    while the ball's radius is sqrt(d) (22.6): the ball could never bind, and "w/o l1-ball" (Table 2: FID 26.84 vs
    28.38, PSNR 23.79 vs 23.52) would equal RLS+ exactly. The reading under which Table 2 can hold is that 1e-4 is
    the rate of the generator's weights, which sec. 3.2 describes as "further training the generator" (and which
    the official ``rls_plus.py`` also uses for them); the paper gives no rate for w and the noise maps, so they take
    the official code's: Adam lr 0.1 with PULSE's one-cycle schedule. Steps (50) and early stopping stay the
    paper's. The literal single-rate reading is the ``rls+literal`` preset.

    Early stopping. Sec. 3.2 stops early "to maintain the generative prior" and gives no patience; the official
    code does not stop. Under the one-cycle schedule the objective rises while the rate climbs (to step 22 of 50),
    so a stop watching from step 0 ended RLS+ at step 5-6 and kept the anchor on 14 of 16 held-out faces (8x, the
    l1-norm RLS anchor). The stop therefore watches from the schedule's peak on (``schedules.rising_steps``): an
    image stops once its objective has not improved for 5 steps there, and the lowest-objective state of the whole
    run, the anchor included, is returned.
    """

    enabled: bool = True
    steps: int = 50  # paper sec. 4 (official: 200)
    lr_w: float = 0.1  # paper silent (see above); official rls_plus.py: 0.1 (literal reading of sec. 4: 1e-4)
    lr_generator: float = 1e-4  # paper sec. 4 (official: 1e-4)
    lr_noise: float = 0.1  # paper silent; official rls_plus.py: 0.1
    schedule: Schedule = "one-cycle"  # for w and noise; paper silent; official: PULSE's one-cycle drop
    optimize_w: bool = True  # ablation "w/o w"
    optimize_generator: bool = True  # ablation "w/o g"
    optimize_noise: bool = True  # ablation "w/o noise"
    trainable_noise: int | None = None  # None: the maps up to 1/16 of the output (see trainable_noise_maps)
    radius_scale: float | None = 1.0  # radius = scale * sqrt(d) (paper sec. 4); None: no ball ("w/o l1-ball")
    from_anchor: bool = True  # False: start from the flow mean, skipping RLS ("w/o anchor")
    early_stopping_patience: int | None = 5  # paper: "early stopping", patience not given (ours; watched from the
    # schedule's peak on, see above); official: none
    keep_best: bool = True  # the lowest-objective state, the anchor (step 0) included: never worse than it
    renormalize_noise: bool = False  # official: noise maps renormalised to zero mean, unit std every step

    def trainable_noise_maps(self, map_resolutions: list[int], output_resolution: int) -> int:
        """How many of the first noise maps RLS+ optimises. Sec. 4: "only the first nine input layers are
        optimized" (the official rls_plus.py: the first 9 noise maps). On the paper's 1024 px generators those
        are the maps up to 64 x 64, 1/16 of the output; on a 64 px generator nine maps are all of them, down to
        single output pixels, where they fit the LR residual with marks (first 16 held-out faces at 8x: the same
        PSNR as with the maps up to 4 x 4 or none, SSIM 0.562 vs 0.571, and visible speckle). So by default the
        rule is the maps up to 1/16 of the output, the paper's nine at 1024 px; ``trainable_noise`` fixes a count.
        """
        if self.trainable_noise is not None:
            return min(self.trainable_noise, len(map_resolutions))
        return sum(1 for r in map_resolutions if r * 16 <= max(output_resolution, 64))

    def radius(self, w_dim: int) -> float | None:
        return None if self.radius_scale is None else self.radius_scale * math.sqrt(w_dim)


@dataclasses.dataclass(frozen=True)
class InversionSettings:
    name: str
    search: SearchSettings
    refine: RefineSettings
    description: str = ""

    @property
    def needs_flow(self) -> bool:
        """Whether these settings read the flow prior: P_w or P_gaussian (Eq. 5), the start at the flow's mean w
        (sec. 4), or BRGM's Gaussian prior on its w statistics. The one statement of the rule; the solver refuses
        to start without a flow, and the API says how to train one."""
        s = self.search
        return s.uses_flow or s.init == "flow-mean" or s.gaussian_prior_weight != 0

    def replace(self, search: dict | None = None, refine: dict | None = None) -> "InversionSettings":
        return dataclasses.replace(self, search=dataclasses.replace(self.search, **(search or {})),
                                   refine=dataclasses.replace(self.refine, **(refine or {})))
