import pytest
import torch
from conftest import randomized_generator
from support.checkpoint_writers import rosinality_state
from support.reference_stylegan2 import reference_mapping, reference_synthesis

from rls_lightning.stylegan import Generator, GeneratorConfig


@pytest.mark.parametrize("resolution,num_ws", [(4, 2), (8, 4), (64, 10), (256, 14), (1024, 18)])
def test_num_ws_and_noise_layout_follow_the_resolution(resolution, num_ws):
    config = GeneratorConfig(img_resolution=resolution)
    assert config.num_ws == num_ws
    G = Generator(config, channel_base=64 * resolution, channel_max=8, z_dim=8, w_dim=8, mapping_layers=1)
    sizes = [n.shape[-1] for n in G.noise_inputs]
    # rosinality: noise_j has resolution 2^((j+5)//2), 2 log2(R) - 3 of them.
    assert sizes == [2 ** ((j + 5) // 2) for j in range(num_ws - 1)]


def test_channel_layout():
    config = GeneratorConfig(img_resolution=1024, channel_base=16384, channel_max=512)
    assert [config.channels(r) for r in (4, 32, 64, 128, 1024)] == [512, 512, 256, 128, 16]


@pytest.mark.parametrize("resolution,conv_clamp", [(16, None), (32, None), (16, 0.7)])
def test_synthesis_matches_an_independent_reference(resolution, conv_clamp):
    G = randomized_generator(seed=resolution, img_resolution=resolution, conv_clamp=conv_clamp)
    sd = rosinality_state(G)
    torch.manual_seed(1)
    ws = G.w_avg + 0.5 * torch.randn(3, G.num_ws, G.w_dim)
    with torch.no_grad():
        ours = G.synthesis(ws, noise_mode="const")
    noises = [n.reshape(1, 1, *n.shape[-2:]) for n in G.noise_inputs]
    expected = reference_synthesis(sd, ws, noises, clamp=conv_clamp)
    assert ours.abs().max() > 1.0  # not a degenerate image
    torch.testing.assert_close(ours.double(), expected, atol=1e-4, rtol=0)
    if conv_clamp is not None:  # the clamp must actually bite in this case
        assert (reference_synthesis(sd, ws, noises) - expected).abs().max() > 1e-2


def test_mapping_matches_reference():
    G = randomized_generator(mapping_layers=3)
    z = torch.randn(4, G.z_dim)
    with torch.no_grad():
        w = G.mapping(z)
    torch.testing.assert_close(w.double(), reference_mapping(rosinality_state(G), z, 3), atol=1e-5, rtol=0)


def test_noise_modes_and_explicit_noise(tiny_generator):
    G = tiny_generator
    ws = G.w_avg.expand(2, G.num_ws, -1).clone()
    with torch.no_grad():
        const = G.synthesis(ws, noise_mode="const")
        none = G.synthesis(ws, noise_mode="none")
        zeros = G.synthesis(ws, noise=[torch.zeros_like(n) for n in G.noise_inputs])
        same_as_const = G.synthesis(ws, noise_mode="none", noise=[n.clone() for n in G.noise_inputs])
        random1 = G.synthesis(ws, noise_mode="random")
        random2 = G.synthesis(ws, noise_mode="random")
    torch.testing.assert_close(zeros, none)
    torch.testing.assert_close(same_as_const, const)
    assert (const - none).abs().max() > 1e-2
    assert (random1 - random2).abs().max() > 1e-2
    # random noise is drawn per sample: identical ws give different images
    assert (random1[0] - random1[1]).abs().max() > 1e-2
    # per-sample noise [N,1,R,R] in the override
    per_sample = [torch.stack([n, torch.zeros_like(n)])[:, None] for n in G.noise_inputs]
    with torch.no_grad():
        mixed = G.synthesis(ws, noise=per_sample)
    torch.testing.assert_close(mixed[0], const[0])
    torch.testing.assert_close(mixed[1], none[1])


def test_bad_inputs_are_reported(tiny_generator):
    G = tiny_generator
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(torch.zeros(1, G.num_ws + 1, G.w_dim))
    with pytest.raises(ValueError, match="one per layer"):
        G.synthesis(torch.zeros(1, G.num_ws, G.w_dim), noise=[None])
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(torch.zeros(1, G.num_ws, G.w_dim), noise_mode="fixed")


def test_gradients_reach_ws_noise_and_weights(tiny_generator):
    G = tiny_generator
    ws = (G.w_avg + torch.randn(2, G.num_ws, G.w_dim)).requires_grad_(True)
    noise = [n.clone().requires_grad_(True) for n in G.noise_inputs]
    G.synthesis(ws, noise=noise).square().mean().backward()
    assert ws.grad.abs().sum() > 0
    assert all(n.grad is not None and n.grad.abs().sum() > 0 for n in noise)
    grads = {name: p.grad for name, p in G.synthesis.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert sum(float(g.abs().sum() > 0) for g in grads.values()) == len(grads)


def test_gradient_wrt_ws_matches_finite_differences():
    G = randomized_generator(img_resolution=8).double()
    ws = (G.w_avg + 0.3 * torch.randn(1, G.num_ws, G.w_dim, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: G.synthesis(x).sum(), (ws,), eps=1e-6, atol=1e-5)


def test_unfused_path_equals_fused(tiny_generator):
    G = tiny_generator
    ws = G.w_avg + torch.randn(3, G.num_ws, G.w_dim)
    with torch.no_grad():
        fused = G.synthesis(ws)
        G.synthesis.fused_modconv = False
        unfused = G.synthesis(ws)
    torch.testing.assert_close(unfused, fused, atol=1e-4, rtol=0)


def test_runs_under_autocast(tiny_generator):
    G = tiny_generator
    ws = G.w_avg + torch.randn(2, G.num_ws, G.w_dim)
    with torch.no_grad():
        full = G.synthesis(ws)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = G.synthesis(ws)
    assert torch.isfinite(low).all()
    assert ((low.float() - full).norm() / full.norm()) < 0.05


def test_truncation_moves_towards_w_avg(tiny_generator):
    G = tiny_generator
    z = torch.randn(5, G.z_dim)
    with torch.no_grad():
        w = G.mapping(z)
        w_half = G.mapping(z, truncation_psi=0.5)
    torch.testing.assert_close(w_half, G.w_avg + 0.5 * (w - G.w_avg))


@pytest.mark.parametrize("fused", [False, True])
def test_channels_last_changes_the_layout_not_the_result(tiny_generator, fused):
    G = tiny_generator
    G.synthesis.fused_modconv = fused
    ws = torch.randn(3, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(0))
    features = []
    hook = G.synthesis.blocks[-1].conv1.register_forward_hook(lambda module, args, out: features.append(out))
    try:
        with torch.no_grad():
            plain = G.synthesis(ws)
            G.synthesis.channels_last = True
            nhwc = G.synthesis(ws)
    finally:
        G.synthesis.channels_last = False
        hook.remove()
    torch.testing.assert_close(nhwc, plain, atol=1e-5, rtol=0)
    assert not features[0].is_contiguous(memory_format=torch.channels_last)
    # Shared weights keep NHWC through every layer; the grouped (fused) path regroups the batch into channels,
    # which needs NCHW again.
    assert features[1].is_contiguous(memory_format=torch.channels_last) == (not fused)
