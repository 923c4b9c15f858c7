import itertools
import math

import numpy as np
import pytest
import torch
from scipy import optimize

from rls_lightning.flow.maf import FlowConfig, LatentFlow
from rls_lightning.inversion import objective
from rls_lightning.inversion.l1_ball import project_onto_l1_ball, project_rows_onto_ball
from rls_lightning.inversion.presets import PRESETS, get_preset
from rls_lightning.inversion.schedules import one_cycle_drop_factor
from rls_lightning.inversion.settings import RefineSettings


def test_likelihoods_are_on_the_unit_scale():
    """Images are held in [-1, 1]; the likelihoods are those of the same images mapped to [0, 1] (paper, official)."""
    a, b = torch.rand(3, 3, 4, 4) * 2 - 1, torch.rand(3, 3, 4, 4) * 2 - 1
    a01, b01 = (a.numpy() + 1) / 2, (b.numpy() + 1) / 2
    for n in range(3):
        assert objective.l1_likelihood(a, b)[n].item() == pytest.approx(np.abs(a01[n] - b01[n]).mean(), 1e-6)
        assert objective.l2_likelihood(a, b)[n].item() == pytest.approx(((a01[n] - b01[n]) ** 2).mean(), 1e-6)
        # Eq. 6's ||y - D(G(w))||_1: the l1 norm, a sum over the 3 x 4 x 4 LR values
        l1_norm = sum(abs(float(a01[n, c, y, x] - b01[n, c, y, x]))
                      for c in range(3) for y in range(4) for x in range(4))
        assert objective.l1_likelihood(a, b, "sum")[n].item() == pytest.approx(l1_norm, 1e-6)


def test_cross_priors_against_loops():
    ws = torch.randn(2, 5, 4, dtype=torch.float64)
    for n in range(2):
        pairs = list(itertools.combinations(range(5), 2))
        sq = sum(float(((ws[n, i] - ws[n, j]) ** 2).sum()) for i, j in pairs)
        # the official cdist distance, smoothed below 0.01 (objective.CROSS_SMOOTHING)
        dist = np.mean([math.sqrt(float((ws[n, i] - ws[n, j]).norm()) ** 2 + 1e-4) for i, j in pairs])
        cos = sum(1 - float(ws[n, i] @ ws[n, j] / (ws[n, i].norm() * ws[n, j].norm())) for i, j in pairs)
        assert objective.cross_prior(ws)[n].item() == pytest.approx(-sq)  # Eq. 5
        assert objective.mean_squared_cross_prior(ws)[n].item() == pytest.approx(-sq / len(pairs))
        assert objective.mean_distance_cross_prior(ws)[n].item() == pytest.approx(-dist)
        assert objective.cosine_cross_prior(ws)[n].item() == pytest.approx(cos)
        geo = np.mean([(2 * math.atan2(float((ws[n, i] - ws[n, j]).norm()), float((ws[n, i] + ws[n, j]).norm())))
                       ** 2 for i, j in pairs])
        assert objective.geocross(ws)[n].item() == pytest.approx(geo)
    # the geodesic angle of orthogonal unit vectors is pi/2
    e = torch.eye(2, dtype=torch.float64)[None]
    assert objective.geocross(e).item() == pytest.approx((math.pi / 2) ** 2)


def test_flow_priors_average_over_rows():
    torch.manual_seed(0)
    flow = LatentFlow(FlowConfig(features=4, hidden_features=8, num_blocks=1)).double().eval()
    ws = torch.randn(2, 3, 4, dtype=torch.float64)
    p_w, p_gaussian = objective.flow_priors(flow, ws)
    for n in range(2):
        logp = [flow.log_prob(ws[n, i:i + 1]).item() for i in range(3)]
        gauss = [-(flow.to_gaussian(ws[n, i:i + 1]).norm().item() - 2.0) ** 2 for i in range(3)]
        assert p_w[n].item() == pytest.approx(np.mean(logp))  # P_w, Eq. 5
        assert p_gaussian[n].item() == pytest.approx(np.mean(gauss))  # P_gaussian
        assert objective.flow_log_density(flow, ws)[n].item() == pytest.approx(np.mean(logp))
        assert objective.gaussianization_prior(flow, ws)[n].item() == pytest.approx(np.mean(gauss))


def test_gaussian_w_prior():
    ws = torch.randn(2, 3, 4)
    mean, std = torch.randn(4), torch.rand(4) + 0.5
    expected = (((ws - mean) / std) ** 2).mean(dim=(1, 2))
    torch.testing.assert_close(objective.gaussian_w_prior(ws, mean, std), expected)


def _brute_force_projection(v: np.ndarray, radius: float) -> np.ndarray:
    """argmin ||x - v||^2 s.t. ||x||_1 <= r, by SLSQP on the split x = p - q with p, q >= 0."""
    d = len(v)
    fun = lambda pq: float(((pq[:d] - pq[d:] - v) ** 2).sum())  # noqa: E731
    cons = [{"type": "ineq", "fun": lambda pq: radius - pq.sum()}]
    x0 = np.concatenate([np.clip(v, 0, None), np.clip(-v, 0, None)]) * 0.5
    res = optimize.minimize(fun, x0, bounds=[(0, None)] * (2 * d), constraints=cons, method="SLSQP",
                            options={"ftol": 1e-14, "maxiter": 500})
    return res.x[:d] - res.x[d:]


def test_l1_projection_matches_a_brute_force_solver():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(20, 6)) * rng.uniform(0.1, 3, size=(20, 1))
    radius = 2.0
    ours = project_onto_l1_ball(torch.from_numpy(vectors), radius).numpy()
    for v, p in zip(vectors, ours):
        np.testing.assert_allclose(p, _brute_force_projection(v, radius), atol=1e-6)
        assert np.abs(p).sum() <= radius + 1e-9
        if np.abs(v).sum() <= radius:
            np.testing.assert_array_equal(p, v)
        else:
            assert np.abs(p).sum() == pytest.approx(radius)


def test_projection_of_w_plus_rows_around_an_anchor():
    anchor = torch.randn(1, 6, 512)
    ws = anchor + torch.randn(1, 6, 512)  # l1 deviation about 400 per row, far outside sqrt(512)
    projected = project_rows_onto_ball(ws, anchor, math.sqrt(512))
    assert torch.allclose((projected - anchor).abs().sum(-1), torch.full((1, 6), math.sqrt(512)), atol=1e-3)
    near = anchor + 1e-3 * torch.randn(1, 6, 512)
    torch.testing.assert_close(project_rows_onto_ball(near, anchor, math.sqrt(512)), near)


def test_one_cycle_schedule_follows_pulse():
    assert one_cycle_drop_factor(0, 100) == pytest.approx(0.1)
    assert one_cycle_drop_factor(45, 100) == pytest.approx(1.0)  # the peak at half of the first 90%
    assert one_cycle_drop_factor(18, 100) == pytest.approx(0.46)  # (9 * (1 - |0.2 - 0.5| * 2) + 1) / 10
    assert one_cycle_drop_factor(89, 100) == pytest.approx(0.12)  # continuous into the drop...
    assert one_cycle_drop_factor(90, 100) == pytest.approx(0.1)
    assert one_cycle_drop_factor(95, 100) == pytest.approx(0.0505)  # ...which is linear
    assert one_cycle_drop_factor(100, 100) == pytest.approx(0.001)


def test_presets_carry_the_documented_numbers():
    rls = get_preset("rls+")
    assert (rls.search.steps, rls.search.lr, rls.search.lambda_w, rls.search.lambda_g, rls.search.lambda_c) == \
        (200, 0.5, 2e-4, 4e-4, 0.05)  # paper sec. 4
    # RLS+: 50 steps, generator at 1e-4 (sec. 4); w and noise at the official 0.1 with its one-cycle schedule
    assert (rls.refine.steps, rls.refine.lr_generator, rls.refine.lr_w, rls.refine.lr_noise, rls.refine.schedule) == \
        (50, 1e-4, 0.1, 0.1, "one-cycle")
    assert rls.refine.radius(512) == pytest.approx(math.sqrt(512))
    # "the first nine" noise maps of a 1024 px generator (4, 8, 8, ..., 64, 64): those up to 1/16 of the output
    maps_1024 = [4] + [r for r in (8, 16, 32, 64, 128, 256, 512, 1024) for _ in range(2)]
    assert rls.refine.trainable_noise_maps(maps_1024, 1024) == 9
    assert rls.refine.trainable_noise_maps(maps_1024[:9], 64) == 1  # 64 px: the 4 x 4 map only
    assert rls.refine.trainable_noise_maps(maps_1024[:13], 256) == 5  # up to 16 x 16
    assert RefineSettings(trainable_noise=3).trainable_noise_maps(maps_1024[:9], 64) == 3
    literal = get_preset("rls+literal").refine
    assert (literal.steps, literal.lr_w, literal.lr_noise, literal.lr_generator, literal.schedule) == \
        (50, 1e-4, 1e-4, 1e-4, "constant")
    # the official rls.py's reading of Eq. 5-6 (mean residual, mean row distance): Tables 1 and 5 hold under it
    assert (rls.search.likelihood_reduction, rls.search.cross) == ("mean", "mean-distance")
    assert get_preset("rls+mean-squared-cross").search.cross == "mean-squared"
    assert (get_preset("rls+l1-sum").search.likelihood_reduction, get_preset("rls+eq5-cross").search.cross) == \
        ("sum", "squared-sum")
    official = get_preset("rls+official")
    assert official.search.likelihood_reduction == "mean"  # rls.py: 10 * the mean absolute error
    assert {get_preset(p).search.likelihood_reduction for p in ("pulse", "brgm", "rls+authors-readme")} == {"mean"}
    # the official weights are the paper's x10, next to 10 * L1
    assert official.search.likelihood_weight * rls.search.lambda_w == pytest.approx(official.search.lambda_w)
    # BRGM: 0.001 * MSE on 0-255 pixels = 0.001 * 255^2 * MSE on [0, 1]
    assert get_preset("brgm").search.likelihood_weight == pytest.approx(0.001 * 255 ** 2)
    assert get_preset("no-l1-ball").refine.radius(512) is None
    assert not get_preset("rls").refine.enabled and get_preset("w-only").search.space == "w"
    assert all(p.description for p in PRESETS.values())
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("rls++")
