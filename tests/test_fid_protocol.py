"""FID / KID are the literature's: torch-fidelity's FID Inception, fed exactly as torch-fidelity feeds it."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from scipy import linalg

from rls_lightning.metrics.feature_networks import fid_inception


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    from support.metric_weights import random_fid_inception_state

    path = tmp_path_factory.mktemp("fid") / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(random_fid_inception_state(), path)
    return path


def _torch_fidelity_features(path, images: torch.Tensor) -> torch.Tensor:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
    with torch.no_grad():
        return net(images)[0]


@pytest.mark.parametrize("size", [(64, 64), (75, 93)])
@pytest.mark.slow
def test_our_features_equal_torch_fidelitys_own_on_the_same_weights(inception_file, size):
    images = torch.randint(0, 256, (2, 3, *size), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = fid_inception(inception_file)(images)
    theirs = _torch_fidelity_features(inception_file, images)
    assert ours.shape == (2, 2048)
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-6 * theirs.abs().max().item())
    # torchmetrics' default (antialiased resize) would not be torch-fidelity's protocol: the difference is real.
    from torchmetrics.image.fid import NoTrainInceptionV3

    antialiased = NoTrainInceptionV3("inception-v3-compat", ["2048"], str(inception_file), antialias=True)
    with torch.no_grad():
        assert (antialiased(images) - theirs).abs().max() > 1e-3 * theirs.abs().max()


@pytest.mark.slow
def test_evaluate_fid_is_the_frechet_distance_of_torch_fidelity_features(fake_weights, tmp_path):
    from rls_lightning.metrics.evaluator import Evaluator

    rng = torch.Generator().manual_seed(2)
    hr = torch.rand(4, 3, 32, 32, generator=rng)
    sr = (hr + 0.2 * torch.rand(4, 3, 32, 32, generator=rng)).clamp(0, 1)
    evaluator = Evaluator(fake_weights)
    evaluator.score_batch(sr, hr)
    fid = evaluator.set_metrics()["FID"]
    path = fake_weights / "weights-inception-2015-12-05-6726825d.pth"
    real = _torch_fidelity_features(path, (hr * 255).round().to(torch.uint8)).double().numpy()
    fake = _torch_fidelity_features(path, (sr * 255).round().to(torch.uint8)).double().numpy()
    # Sigma = A A^T with A the centred features / sqrt(n - 1) (2048 x n), so the eigenvalues of Sigma1 Sigma2 are
    # those of the n x n matrix A1^T A2 A2^T A1: the trace term exactly, without a 2048-d matrix square root.
    a1 = (real - real.mean(0)).T / np.sqrt(len(real) - 1)
    a2 = (fake - fake.mean(0)).T / np.sqrt(len(fake) - 1)
    small = a1.T @ a2 @ a2.T @ a1
    trace_sqrt = np.sqrt(np.clip(linalg.eigvalsh((small + small.T) / 2), 0, None)).sum()
    expected = (((real.mean(0) - fake.mean(0)) ** 2).sum() + (a1 ** 2).sum() + (a2 ** 2).sum() - 2 * trace_sqrt)
    assert fid == pytest.approx(expected, rel=1e-3, abs=1e-6)


class _Boom:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_tampered_inception_file_cannot_run_code(inception_file, tmp_path, capsys):
    evil = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    state = torch.load(inception_file, weights_only=True)
    state["extra"] = _Boom()
    torch.save(state, evil)
    with pytest.raises(pickle.UnpicklingError):
        fid_inception(evil)
    assert "this must never run" not in capsys.readouterr().out
