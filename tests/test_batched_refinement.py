"""Batched RLS+ (one weight offset per image) against one-image-at-a-time runs and a plain PyTorch loop."""
import copy
import math

import pytest
import torch
from support.inversion_fixtures import known_latents, quiet_trainer, toy_generator
from torch.func import functional_call

from rls_lightning.degradations import downsample_bicubic
from rls_lightning.inversion.callbacks import L1BallProjection, PerImageEarlyStopping
from rls_lightning.inversion.l1_ball import project_rows_onto_ball
from rls_lightning.inversion.refinement import Refinement
from rls_lightning.inversion.settings import RefineSettings

FACTOR = 4
# Adam's first steps are about lr * sign(gradient), so float rounding (grouped vs plain convolutions) flips a few
# near-zero gradients of generator weights and noise; 5e-4 on [-1, 1] images is 1/16 of an 8-bit level.
IMAGE_ATOL = 5e-4


@pytest.mark.parametrize("fused", [False, True])
def test_per_sample_weights_render_like_separate_generators(fused):
    generators = [toy_generator(seed) for seed in (0, 1, 2)]
    for G in generators:
        G.synthesis.fused_modconv = fused
    ws = torch.cat([known_latents(G, 1, seed=i) for i, G in enumerate(generators)])
    noise = [torch.randn(3, 1, n.shape[-1], n.shape[-1]) for n in generators[0].noise_inputs]
    stacked = {name: torch.stack([dict(G.synthesis.named_parameters())[name] for G in generators])
               for name, _ in generators[0].synthesis.named_parameters()}
    with torch.no_grad():
        together = functional_call(generators[0].synthesis, stacked, (ws,), {"noise": noise})
        for i, G in enumerate(generators):
            alone = G.synthesis(ws[i:i + 1], noise=[n[i:i + 1] for n in noise])
            torch.testing.assert_close(together[i:i + 1], alone, atol=2e-5, rtol=0)


@pytest.fixture(scope="module")
def problem():
    """Three LR targets and anchors; image 1's anchor is so close to its truth that the first steps overshoot and
    it stops early. (Not exactly at the truth: the l1 gradient at a zero residual is the sign of rounding noise.)"""
    G = toy_generator()
    truth = known_latents(G, 3, seed=11)
    with torch.no_grad():
        targets = downsample_bicubic(G.synthesis(truth), FACTOR)
    anchors = truth + 0.3 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(3))
    anchors[1] = truth[1] + 0.03 * torch.randn(truth[1].shape, generator=torch.Generator().manual_seed(4))
    return G, targets, anchors


SETTINGS = RefineSettings(steps=12, lr_w=2e-2, lr_noise=2e-2, lr_generator=2e-3, trainable_noise=3,
                          radius_scale=0.5 / math.sqrt(16), early_stopping_patience=3, schedule="constant",
                          keep_best=False)  # as the plain loop: the early-stopped state


def run_refinement(G, targets, anchors, settings: RefineSettings):
    module = Refinement(G, targets, FACTOR, anchors, list(G.noise_inputs), settings)
    callbacks = [L1BallProjection(settings.radius(G.w_dim)), PerImageEarlyStopping(settings.early_stopping_patience)]
    trainer = quiet_trainer(max_steps=settings.steps, max_epochs=1, callbacks=callbacks)
    trainer.fit(module)
    return module.results(), module.steps_run(trainer.global_step)


def plain_loop(G, target, anchor, settings: RefineSettings):
    """RLS+ for one image written out by hand: a private generator copy, Adam, projection, early stopping."""
    G = copy.deepcopy(G).requires_grad_(True)
    ws = anchor.clone().requires_grad_(True)
    noise = [n.detach().clone().reshape(1, 1, *n.shape) for n in G.noise_inputs]
    tuned_noise = noise[:settings.trainable_noise]
    for n in tuned_noise:
        n.requires_grad_(True)
    optimizer = torch.optim.Adam([{"params": [ws], "lr": settings.lr_w},
                                  {"params": tuned_noise, "lr": settings.lr_noise},
                                  {"params": list(G.synthesis.parameters()), "lr": settings.lr_generator}])
    best, wait, step = math.inf, 0, 0
    while step < settings.steps:
        # Eq. 7 on the [0, 1] scale (images in [-1, 1]): Adam's epsilon makes the scale matter a little
        loss = 0.5 * (downsample_bicubic(G.synthesis(ws, noise=noise), FACTOR) - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        with torch.no_grad():
            ws.copy_(project_rows_onto_ball(ws, anchor, settings.radius(G.w_dim)))
        best, wait = (loss.item(), 0) if loss.item() < best else (best, wait + 1)
        if wait >= settings.early_stopping_patience:
            break
    with torch.no_grad():
        return ws.detach(), G.synthesis(ws, noise=noise), step


@pytest.mark.slow
def test_batched_refinement_equals_each_image_alone(problem):
    G, targets, anchors = problem
    together, steps = run_refinement(G, targets, anchors, SETTINGS)
    assert steps[1] == SETTINGS.early_stopping_patience + 1  # the stalled image stopped early...
    assert steps.max() > steps[1]  # ...while the others went on
    for i in range(3):
        alone, alone_steps = run_refinement(G, targets[i:i + 1], anchors[i:i + 1], SETTINGS)
        assert alone_steps[0] == steps[i]
        torch.testing.assert_close(together.ws[i], alone.ws[0], atol=1e-4, rtol=0)
        torch.testing.assert_close(together.images[i], alone.images[0], atol=IMAGE_ATOL, rtol=0)
        for a, b in zip(together.noise[:3], alone.noise[:3]):
            torch.testing.assert_close(a[i], b[0], atol=IMAGE_ATOL, rtol=0)


@pytest.mark.slow
def test_refinement_matches_a_plain_pytorch_loop(problem):
    G, targets, anchors = problem
    result, steps = run_refinement(G, targets, anchors, SETTINGS)
    for i in range(3):
        ws, image, loop_steps = plain_loop(G, targets[i:i + 1], anchors[i:i + 1], SETTINGS)
        assert loop_steps == steps[i]
        torch.testing.assert_close(result.ws[i:i + 1], ws, atol=1e-4, rtol=0)
        torch.testing.assert_close(result.images[i:i + 1], image, atol=IMAGE_ATOL, rtol=0)
        assert (result.ws[i] - anchors[i]).abs().sum(-1).max() <= 0.5 + 1e-5  # the ball of radius 0.5


def test_keep_best_is_decided_per_image(problem):
    G, targets, anchors = problem
    settings = RefineSettings(steps=6, lr_w=0.5, lr_noise=0.0, lr_generator=0.0, radius_scale=None,
                              early_stopping_patience=None, keep_best=True)  # a step size that overshoots
    module = Refinement(G, targets, FACTOR, anchors, list(G.noise_inputs), settings)
    losses = []

    class Record(L1BallProjection):  # records the loss of every step's starting point
        def on_train_batch_end(self, trainer, pl_module, *args):
            losses.append(pl_module.last_loss.clone())

    quiet_trainer(max_steps=6, max_epochs=1, callbacks=[Record(1.0)]).fit(module)
    result = module.results()
    with torch.no_grad():
        final = 0.5 * (downsample_bicubic(G.synthesis(result.ws), FACTOR) - targets).abs().flatten(1).mean(1)
    torch.testing.assert_close(final, result.lr_l1)
    best_seen = torch.stack(losses).min(0).values
    assert (result.lr_l1 <= best_seen + 1e-6).all()  # both on the [0, 1] scale
