"""Named settings for ``invert.py --preset``: the paper's method, its ablations, the official code, the baselines.

Sources: the paper (sections 3-4, Tables 2 and 5, Figures 5 and 9) and the public repositories of the official
code (mgheisar/RLS_PLUS: ``rls.py``, ``rls_plus.py``), PULSE (alex-damian/pulse: ``PULSE.py``,
``SphericalOptimizer.py``) and BRGM (razvanmarinescu/brgm-pytorch: ``projector.py``).
"""
from __future__ import annotations

from .settings import InversionSettings, RefineSettings, SearchSettings

_RLS = SearchSettings()
_RLS_PLUS = RefineSettings()
_NO_REFINE = RefineSettings(enabled=False)

PRESETS: dict[str, InversionSettings] = {}


def _add(name: str, search: SearchSettings, refine: RefineSettings, description: str) -> None:
    PRESETS[name] = InversionSettings(name, search, refine, description)


_add("rls+", _RLS, _RLS_PLUS,
     "RLS then RLS+ with the paper's values (sec. 4): 200 Adam steps at lr 0.5 on W+ from the mean of 100k "
     "mapped w with lambda_w=2e-4, lambda_g=4e-4, lambda_c=0.05 next to the mean absolute LR residual on [0, 1] "
     "and P_cross as the mean pairwise row distance (the official rls.py's reading of Eq. 5-6, the one under "
     "which Tables 1 and 5 hold), the one-cycle schedule of the official rls.py and its lowest-objective step kept; "
     "then 50 steps on w, generator weights and the noise maps up to 1/16 of the output (the paper's first nine "
     "at 1024 px), w in an l1 ball of radius sqrt(d) around "
     "the anchor, early stopping (patience 5 from the schedule's peak) that keeps the best state (never worse than "
     "the anchor); the generator at lr 1e-4 (sec. 4), w and noise at the official lr 0.1 with its one-cycle "
     "schedule (the paper gives none; with 1e-4 the ball could never bind, contradicting Table 2).")
_add("rls+literal", _RLS, RefineSettings(lr_w=1e-4, lr_noise=1e-4, schedule="constant"),
     "RLS+ with sec. 4's sentence read literally: one learning rate, 1e-4, for w, noise and generator weights "
     "(constant). w then moves at most ~50 * 1e-4 per coordinate, so the l1 ball never binds.")
_add("rls", _RLS, _NO_REFINE, "RLS alone (Eq. 6), the anchor of RLS+.")
_add("rls+official", SearchSettings(
    steps=500, schedule="one-cycle", likelihood_reduction="mean", likelihood_weight=10.0, lambda_w=0.002,
    lambda_g=0.004, lambda_c=0.5, cross="mean-distance", keep_best=True), RefineSettings(
    steps=200, lr_w=0.1, lr_noise=0.1, lr_generator=1e-4, schedule="one-cycle", early_stopping_patience=None,
    keep_best=True, renormalize_noise=True),
    "What the official scripts run by default (rls.py, rls_plus.py): 500 + 200 steps, one-cycle schedules, "
    "loss 10*L1 (on [0, 1]) + 0.002*NLL + 0.004*gauss + 0.5*mean pairwise distance, w/noise lr 0.1, best step kept, "
    "noise renormalised, no early stopping.")
_add("rls+authors-readme", PRESETS["rls+official"].search, RefineSettings(
    steps=50, lr_w=1e-4, lr_noise=1e-4, lr_generator=1e-4, schedule="one-cycle", early_stopping_patience=None,
    keep_best=True, renormalize_noise=True),
    "The commands of the official README: rls.py --steps 500 --lr 0.5, then rls_plus.py --steps 50 --lr 0.0001 "
    "(w and noise at 1e-4 with the one-cycle schedule, generator weights at 1e-4, best step kept, noise "
    "renormalised, no early stopping). With w at 1e-4 the l1 ball cannot bind in 50 steps (see rls+literal).")
_add("pulse", SearchSettings(
    steps=100, lr=0.4, schedule="one-cycle", init="pulse-random", likelihood="l2", likelihood_reduction="mean",
    likelihood_weight=100.0,
    lambda_w=0.0, lambda_g=0.0, lambda_c=0.0, pulse_sphere=True, geocross_weight=0.05, trainable_noise=5,
    keep_best=True), _NO_REFINE,
    "PULSE (Menon et al. 2020) on a StyleGAN2: 18 x d Gaussian latents kept on the sphere of radius sqrt(d), "
    "mapped to W+ by lrelu_0.2(x * std + mean) with the statistics of lrelu_5(w); 100 steps, Adam lr 0.4, one-cycle "
    "drop; loss 100 * MSE + 0.05 * GEOCROSS; first 5 noise maps trainable. Unlike PULSE, a result is always written "
    "(its 'no face within epsilon' failure is reported in results.csv instead).")
_add("brgm", SearchSettings(
    steps=501, lr=0.1, schedule="constant", keep_best=False, likelihood="l2", likelihood_reduction="mean",
    likelihood_weight=0.001 * 255.0 ** 2, lambda_w=0.0, lambda_g=0.0,
    lambda_c=0.0, gaussian_prior_weight=100.0, cosine_cross_weight=0.1, cosine_cross_weight_above_16x=1.0),
    _NO_REFINE,
    "BRGM (Marinescu et al. 2021): 501 steps, Adam lr 0.1, W+ from the mean w, noise fixed; pixel MSE on the "
    "0-255 scale (weight 0.001, i.e. 0.001 * 255^2 on our [0, 1] MSE), Gaussian prior 100 * mean(((w - mean) / "
    "std)^2), cosine cross prior 0.1 (1 above 16x). BRGM's VGG16 perceptual term is left out: it needs pretrained weights that cannot be downloaded here.")
_add("rls+eq5-cross", SearchSettings(cross="squared-sum"), _RLS_PLUS,
     "rls+ with Eq. 5's P_cross written out, the sum of squared pairwise row distances, at lambda_c=0.05: next "
     "to the mean likelihood it holds every anchor at the mean face (rows 0.005 apart).")
_add("rls+mean-squared-cross", SearchSettings(cross="mean-squared"), _RLS_PLUS,
     "rls+ with Eq. 5's squared pairwise row distances averaged over the pairs (as Eq. 5 averages P_w and "
     "P_gaussian over the rows): the same fidelity as the default, the rows 0.138 apart instead of 0.009.")
_add("rls+l1-sum", SearchSettings(likelihood_reduction="sum", cross="squared-sum"), _RLS_PLUS,
     "rls+ with Eq. 6's l1 norm summed over the LR values (Laplace scale 1) and Eq. 5's squared P_cross: the "
     "priors stop acting, anchors leave the flow's high-density region and many faces carry marks.")
# Ablations of RLS (Table 5, Figure 9).
_add("no-prior", SearchSettings(lambda_w=0.0, lambda_g=0.0, lambda_c=0.0), _NO_REFINE,
     "'w/o Regu.' (Table 5): the latent search without any prior.")
_add("no-cross", SearchSettings(lambda_c=0.0), _NO_REFINE, "'w/o P_cross' (Table 5).")
_add("w-only", SearchSettings(space="w"), _NO_REFINE, "'w/o W+' (Table 5): one w shared by all layers.")
# Ablations of RLS+ (Table 2, Figure 5).
_add("no-anchor", _RLS, RefineSettings(from_anchor=False),
     "'w/o anchor' (Table 2): RLS+ started from the mean w instead of the RLS result (ball centred there).")
_add("no-noise", _RLS, RefineSettings(optimize_noise=False), "'w/o noise' (Table 2).")
_add("no-g", _RLS, RefineSettings(optimize_generator=False), "'w/o g' (Table 2).")
_add("no-w", _RLS, RefineSettings(optimize_w=False), "'w/o w' (Table 2): w fixed at the anchor.")
_add("no-l1-ball", _RLS, RefineSettings(radius_scale=None), "'w/o l1-ball' (Table 2).")


def get_preset(name: str) -> InversionSettings:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
