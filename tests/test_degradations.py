import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from rls_lightning.degradations import (BicubicDownsample, add_gaussian_noise, add_salt_and_pepper,
                                        downsample_bicubic, gaussian_blur, motion_blur, motion_blur_kernel,
                                        resize_bicubic)


def _smooth_image(size: int, seed: int) -> np.ndarray:
    """A photo-like uint8 RGB image: smooth gradients and blobs plus mild texture, values inside (0, 255)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    channels = []
    for _ in range(3):
        field = sum(rng.uniform(0.2, 1) * np.sin(2 * np.pi * (rng.uniform(0.5, 4) * xx + rng.uniform(0.5, 4) * yy)
                                                  + rng.uniform(0, 6)) for _ in range(4))
        channels.append(field)
    img = np.stack(channels, -1)
    img = (img - img.min()) / (img.max() - img.min())
    img = 20 + 215 * img + rng.normal(0, 3, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size,factor", [(64, 2), (64, 4), (64, 8), (128, 16), (96, 3), (64, 64)])
def test_downsampling_matches_pil_on_uint8_images(size, factor):
    img = _smooth_image(size, seed=size + factor)
    pil = np.asarray(Image.fromarray(img).resize((size // factor,) * 2, Image.BICUBIC)).astype(np.float64)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1  # the generator's [-1, 1] range
    ours = (downsample_bicubic(x, factor)[0].permute(1, 2, 0).numpy() + 1) * 127.5
    assert np.abs(ours - pil).max() <= 1.0  # within 1/255 of the full range


def test_float_resize_equals_pil_float_mode_exactly():
    rng = np.random.default_rng(0)
    for (h, w), (oh, ow) in [((64, 64), (8, 8)), ((30, 45), (10, 9)), ((16, 16), (64, 64)), ((20, 36), (11, 7))]:
        a = rng.random((h, w)).astype(np.float32)
        pil = np.asarray(Image.fromarray(a, mode="F").resize((ow, oh), Image.BICUBIC))
        ours = resize_bicubic(torch.from_numpy(a)[None, None].double(), (oh, ow))[0, 0].numpy()
        np.testing.assert_allclose(ours, pil, atol=1e-5)


def test_downsampling_is_batched_differentiable_and_checks_the_factor():
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64, requires_grad=True)
    y = BicubicDownsample(4)(x)
    assert y.shape == (3, 3, 8, 8)
    torch.testing.assert_close(y[1:2], downsample_bicubic(x[1:2], 4))
    assert torch.autograd.gradcheck(lambda t: downsample_bicubic(t, 4), (x[:1, :1],))
    with pytest.raises(ValueError, match="must divide"):
        downsample_bicubic(torch.zeros(1, 3, 30, 30), 4)


def test_downsampling_preserves_constants():
    x = torch.full((1, 3, 64, 64), 0.3)
    torch.testing.assert_close(downsample_bicubic(x, 8), torch.full((1, 3, 8, 8), 0.3))


def test_gaussian_noise_is_seeded_and_has_the_requested_strength():
    x = torch.zeros(4, 3, 64, 64)
    a = add_gaussian_noise(x, sigma=0.05, seed=7)
    torch.testing.assert_close(a, add_gaussian_noise(x, sigma=0.05, seed=7))
    assert not torch.equal(a, add_gaussian_noise(x, sigma=0.05, seed=8))
    assert abs(a.std().item() - 0.05 * 2) < 0.003  # sigma is a fraction of the [-1, 1] range


def test_salt_and_pepper_hits_the_requested_fraction():
    x = torch.zeros(2, 3, 128, 128)
    y = add_salt_and_pepper(x, amount=0.1, seed=1)
    hit = (y != 0).any(dim=1)
    assert abs(hit.float().mean().item() - 0.1) < 0.005
    assert set(torch.unique(y).tolist()) == {-1.0, 0.0, 1.0}
    assert torch.equal((y == 1).all(1) | (y == -1).all(1), hit)  # all channels of a pixel together
    assert abs((y == 1).all(1).float().sum().item() / hit.sum().item() - 0.5) < 0.03
    torch.testing.assert_close(y, add_salt_and_pepper(x, amount=0.1, seed=1))


def test_gaussian_blur_matches_scipy():
    rng = np.random.default_rng(3)
    img = rng.random((1, 2, 40, 40))
    ours = gaussian_blur(torch.from_numpy(img), sigma=1.5).numpy()
    # radius ceil(3 sigma) = 5 = int(truncate * sigma + 0.5) with truncate = 3; torch 'reflect' = scipy 'mirror'
    ref = np.stack([ndimage.gaussian_filter(img[0, c], 1.5, mode="mirror", truncate=3.0) for c in range(2)])
    np.testing.assert_allclose(ours[0], ref, atol=1e-10)


def test_motion_blur_kernels():
    horizontal = motion_blur_kernel(5, 0.0)
    expected = torch.zeros(5, 5, dtype=torch.float64)
    expected[2] = 0.2
    torch.testing.assert_close(horizontal, expected)
    torch.testing.assert_close(motion_blur_kernel(5, 90.0), expected.T)
    diagonal = motion_blur_kernel(7, 45.0)
    assert abs(diagonal.sum().item() - 1) < 1e-12
    assert diagonal.fliplr().diagonal().sum() > 0.99  # from bottom-left to top-right
    img = np.random.default_rng(0).random((1, 1, 20, 20))
    ours = motion_blur(torch.from_numpy(img), 5, seed=0, angle_degrees=0.0)[0, 0].numpy()
    np.testing.assert_allclose(ours, ndimage.uniform_filter1d(img[0, 0], 5, axis=1, mode="mirror"), atol=1e-12)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(motion_blur(x, 9, seed=4), motion_blur(x, 9, seed=4))
    assert not torch.allclose(motion_blur(x, 9, seed=4), motion_blur(x, 9, seed=5))
