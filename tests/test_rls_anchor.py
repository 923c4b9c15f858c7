"""Issue 29: each stage returns its lowest-objective state (RLS+ never ends worse than its anchor), the schedules drive
the groups they should, the cross terms do not amplify rounding, 32-true runs without TF32, and samples start where
the official code does."""
from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from support.inversion_fixtures import known_latents, quiet_trainer, toy_flow, toy_generator

from rls_lightning.degradations import downsample_bicubic
from rls_lightning.flow.sampling import draw_z
from rls_lightning.inversion.job import InversionJob, TrainerOptions
from rls_lightning.inversion.latent_search import LatentSearch
from rls_lightning.inversion.presets import get_preset
from rls_lightning.inversion.refinement import Refinement
from rls_lightning.inversion.settings import RefineSettings, SearchSettings
from rls_lightning.lr_images import LowResImage


@pytest.fixture(scope="module")
def toy():
    G = toy_generator()
    flow = toy_flow(G)
    with torch.no_grad():
        lr = downsample_bicubic(G.synthesis(known_latents(G, 2, seed=3)), 4)
    return G, flow, lr


def official_one_cycle(step: int, total: int) -> float:
    """PULSE's / the official rls.py's "linear1cycledrop" multiplier, as their lambda writes it."""
    if step < 0.9 * total:
        return (9 * (1 - abs(step / (0.9 * total) - 0.5) * 2) + 1) / 10
    return 1 / 10 + (step - 0.9 * total) / (0.1 * total) * (1 / 1000 - 1 / 10)


class LossRecorder(L.Callback):
    """Per step, the per-image objective of the state before that step's update (``last_loss``)."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(pl_module.last_loss.clone())


def _lr_error(G, ws, noise, lr) -> torch.Tensor:
    """Eq. 7's objective written out: mean |D(G(w, eta)) - y| on the [0, 1] scale, with the pretrained weights."""
    with torch.no_grad():
        return 0.5 * (downsample_bicubic(G.synthesis(ws, noise=noise), 4) - lr).abs().flatten(1).mean(1)


@pytest.mark.parametrize("patience", [None, 2])
def test_refinement_never_ends_worse_than_its_anchor(toy, patience):
    """Rates far too large make every step worse than the anchor: the result must be the anchor itself (step 0)."""
    G, flow, lr = toy
    anchor = flow.w_init.expand(2, G.num_ws, -1).clone()
    noise = [n.clone() for n in G.noise_inputs]
    anchor_error = _lr_error(G, anchor, noise, lr)
    settings = RefineSettings(steps=8, lr_w=20.0, lr_noise=20.0, lr_generator=0.5, schedule="constant",
                              early_stopping_patience=patience)
    module = Refinement(G, lr, 4, anchor, noise, settings)
    recorder = LossRecorder()
    from rls_lightning.inversion.callbacks import L1BallProjection, PerImageEarlyStopping

    callbacks = [L1BallProjection(settings.radius(G.w_dim))]
    callbacks += [PerImageEarlyStopping(patience)] if patience is not None else []
    quiet_trainer(max_steps=settings.steps, max_epochs=1, callbacks=[*callbacks, recorder]).fit(module)
    out = module.results()
    losses = torch.stack(recorder.losses)  # [steps, N]
    torch.testing.assert_close(losses[0], anchor_error, rtol=1e-5, atol=1e-7)  # step 0 is the anchor
    assert (losses[1:].min(0).values > anchor_error).all(), "the rates must make every step worse"
    assert (out.lr_l1 <= anchor_error + 1e-6).all(), (out.lr_l1, anchor_error)
    assert out.kept_step.tolist() == [0, 0]
    torch.testing.assert_close(out.ws, anchor)


def test_the_kept_step_is_the_lowest_objective_seen(toy):
    G, flow, lr = toy
    anchor = flow.w_init.expand(2, G.num_ws, -1).clone()
    settings = RefineSettings(steps=12, lr_w=0.3, lr_noise=0.3, lr_generator=3e-3, schedule="constant",
                              early_stopping_patience=None)
    module = Refinement(G, lr, 4, anchor, [n.clone() for n in G.noise_inputs], settings)
    recorder = LossRecorder()
    quiet_trainer(max_steps=settings.steps, max_epochs=1, callbacks=[recorder]).fit(module)
    out = module.results()
    losses = torch.stack(recorder.losses)
    for i in range(2):
        kept = int(out.kept_step[i])
        if kept < settings.steps:  # a recorded state: the lowest of all recorded
            assert kept == int(losses[:, i].argmin()), (kept, losses[:, i])
            torch.testing.assert_close(out.lr_l1[i], losses[kept, i], rtol=1e-4, atol=1e-6)
        else:  # the state after the last update, evaluated once more, beat every recorded one
            assert out.lr_l1[i] < losses[:, i].min()


def test_search_keeps_its_lowest_objective_step(toy):
    G, flow, lr = toy
    settings = SearchSettings(steps=10, lr=3.0, schedule="constant")  # oscillates: the last step is not the best
    init = flow.w_init.expand(2, G.num_ws, -1).clone()
    module = LatentSearch(G, flow.flow, lr, 4, settings, init)
    totals = []

    class Totals(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            with torch.no_grad():
                totals.append(pl_module.per_image_loss()[0].clone())

    quiet_trainer(max_steps=settings.steps, max_epochs=1, callbacks=[Totals()]).fit(module)
    out = module.results()
    totals = torch.stack(totals)
    for i in range(2):
        kept = int(out.kept_step[i])
        assert kept <= settings.steps
        if kept < settings.steps:
            assert kept == int(totals[:, i].argmin())
            torch.testing.assert_close(out.terms["total"][i], totals[kept, i], rtol=1e-4, atol=1e-6)
        assert out.terms["total"][i] <= totals[:, i].min() + 1e-6


def _lrs_over(module: L.LightningModule, steps: int) -> list[list[float]]:
    config = module.configure_optimizers()
    optimizer = config["optimizer"] if isinstance(config, dict) else config
    scheduler = config["lr_scheduler"]["scheduler"] if isinstance(config, dict) else None
    seen = []
    for _ in range(steps):
        seen.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return seen


def test_one_cycle_drives_w_and_noise_of_rls_plus_but_never_the_generator(toy):
    G, flow, lr = toy
    anchor = flow.w_init.expand(2, G.num_ws, -1).clone()
    module = Refinement(G, lr, 4, anchor, [n.clone() for n in G.noise_inputs], RefineSettings())
    seen = _lrs_over(module, 50)
    for step, (w, noise, generator) in enumerate(seen):
        assert w == pytest.approx(0.1 * official_one_cycle(step, 50))
        assert noise == pytest.approx(0.1 * official_one_cycle(step, 50))
        assert generator == pytest.approx(1e-4)
    constant = Refinement(G, lr, 4, anchor, [n.clone() for n in G.noise_inputs], RefineSettings(schedule="constant"))
    assert all(rates == pytest.approx([0.1, 0.1, 1e-4]) for rates in _lrs_over(constant, 5))


def test_rls_follows_the_official_one_cycle_by_default(toy):
    G, flow, lr = toy
    init = flow.w_init.expand(2, G.num_ws, -1).clone()
    seen = _lrs_over(LatentSearch(G, flow.flow, lr, 4, SearchSettings(), init), 200)
    assert [rates[0] for rates in seen] == pytest.approx([0.5 * official_one_cycle(s, 200) for s in range(200)])
    flat = _lrs_over(LatentSearch(G, flow.flow, lr, 4, SearchSettings(schedule="constant"), init), 5)
    assert [rates[0] for rates in flat] == [0.5] * 5


@pytest.mark.parametrize("cross", ["mean-distance", "mean-squared"])
def test_the_cross_terms_do_not_amplify_rounding(toy, cross):
    """The mean pairwise distance pulls with a unit vector however close the rows are: near their collapse its
    direction followed rounding, and an image's RLS anchor moved by 0.008 between a batch of two and a batch of
    one (float32, same seed). Smoothed (objective.CROSS_SMOOTHING), the two agree to rounding; the mean of squares
    (rls+mean-squared-cross) lets go at collapse by itself."""
    G, flow, lr = toy
    settings = SearchSettings(steps=10, cross=cross)
    init = flow.w_init.expand(2, G.num_ws, -1).clone()
    together = LatentSearch(G, flow.flow, lr, 4, settings, init)
    quiet_trainer(max_steps=10, max_epochs=1).fit(together)
    for i in range(2):
        alone = LatentSearch(G, flow.flow, lr[i:i + 1], 4, settings, init[i:i + 1])
        quiet_trainer(max_steps=10, max_epochs=1).fit(alone)
        torch.testing.assert_close(alone.results().ws[0], together.results().ws[i], atol=2e-5, rtol=0)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_a_float32_job_runs_its_stages_without_tf32_and_gives_the_flags_back(toy, tmp_path, monkeypatch, precision):
    """PyTorch runs cuDNN convolutions in TF32 by default on Ampere and later GPUs: '32-true' would then not be
    float32 there. Every stage of a 32-true job runs with both TF32 flags off; afterwards, and under bf16-mixed,
    they are the caller's."""
    G, flow, _ = toy
    seen = []
    for module in (LatentSearch, Refinement):
        original = module.training_step

        def recording(self, *args, _original=original, **kwargs):
            seen.append((type(self).__name__, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(module, "training_step", recording)
    settings = get_preset("rls+").replace(search=dict(steps=2), refine=dict(steps=2))
    job = InversionJob(G, flow, settings, tmp_path, trainer=TrainerOptions(precision=precision), log=lambda line: None)
    lr = downsample_bicubic(G.synthesis(known_latents(G, 1, seed=5)), 4)[0]
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # a caller's (or a GPU's) TF32
    try:
        job.solver.optimise([LowResImage(path=Path("a.png"), stem="a", pixels=lr, factor=4)],
                            lambda image, samples: None)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    assert {name for name, *_ in seen} == {"LatentSearch", "Refinement"} and len(seen) == 4
    assert all(flags == [precision != "32-true"] * 2 for _, *flags in seen)


def test_samples_after_the_first_start_shrunk_toward_the_mean_as_the_official_code_does(toy, tmp_path):
    G, flow, lr = toy
    job = InversionJob(G, flow, get_preset("rls+"), tmp_path, seed=4, log=lambda line: None)
    mean = flow.w_init.float()
    with torch.no_grad():
        mapped = G.mapping(draw_z(1, G.z_dim, job.solver.item_seed("face", 1)))[0]
    expected = mean + 0.2 * (mapped - mean)  # rls.py: latent_mean + 0.2 * (latent - latent_mean)
    start = job.solver.initial_latent("face", 1)
    assert start.shape == (G.num_ws, G.w_dim)
    torch.testing.assert_close(start, expected.expand(G.num_ws, -1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(job.solver.initial_latent("face", 0), mean.expand(G.num_ws, -1))


class _ScriptedRefinement:
    """What ``PerImageEarlyStopping`` reads and calls on a ``Refinement``: ``last_loss``, ``stopped_at``, ``freeze``."""

    def __init__(self, images: int) -> None:
        self.last_loss = torch.zeros(images)
        self.stopped_at = torch.zeros(images, dtype=torch.long)

    def freeze(self, images: torch.Tensor, step: int) -> None:
        self.stopped_at.masked_fill_(images & (self.stopped_at == 0), step)


def test_early_stopping_watches_from_the_schedules_peak():
    """Under one-cycle the objective climbs with the rate: a stop that watched from step 0 ended RLS+ at the anchor.
    The stop steps are those of a brute-force loop over the same losses that skips the first ``watch_from``."""
    from types import SimpleNamespace

    from rls_lightning.inversion.callbacks import PerImageEarlyStopping
    from rls_lightning.inversion.schedules import rising_steps

    assert rising_steps("one-cycle", 50) == 22 and rising_steps("constant", 50) == 0
    steps = 50
    # image 0: rises to step 22, then falls until step 40 and stays; image 1: only rises; image 2: always falls
    losses = torch.stack([torch.tensor([1.0 + min(s, 22) - max(0, min(s, 40) - 22) * 1.5 for s in range(steps)]),
                          torch.tensor([1.0 + s for s in range(steps)]),
                          torch.tensor([1.0 / (1 + s) for s in range(steps)])], dim=1)

    def brute_force(watch_from: int, patience: int) -> list[int]:
        stops = []
        for image in range(3):
            best, wait, stop = math.inf, 0, 0
            for step in range(1, steps + 1):  # the loss of the state before step `step`
                if step <= watch_from:
                    continue
                loss = float(losses[step - 1, image])
                best, wait = (loss, 0) if loss < best else (best, wait + 1)
                if wait >= patience:
                    stop = step
                    break
            stops.append(stop)
        return stops

    for watch_from, patience in ((0, 5), (22, 5), (22, 3)):
        module, callback = _ScriptedRefinement(3), PerImageEarlyStopping(patience, watch_from)
        trainer = SimpleNamespace(global_step=0, should_stop=False)
        callback.on_train_start(trainer, module)
        for step in range(1, steps + 1):
            module.last_loss, trainer.global_step = losses[step - 1], step
            callback.on_train_batch_end(trainer, module, None, None, 0)
        assert module.stopped_at.tolist() == brute_force(watch_from, patience)
    assert brute_force(0, 5)[0] == 6 and brute_force(22, 5)[0] == 46  # from the peak, image 0 runs its descent


def test_an_anchor_outside_the_priors_high_density_region_is_noted(toy, tmp_path):
    """results.csv notes an anchor whose P_w (Eq. 5) lies below the 1st percentile of mapped w: the threshold is
    numpy's percentile of log p_F over the same 2,000 seeded mapped w, the mean w lies above it and a w pushed far
    along one axis below it; the note and the column come from the RLS objective's own P_w."""
    G, flow, lr = toy
    job = InversionJob(G, flow, get_preset("rls+").replace(search=dict(steps=3), refine=dict(steps=2)), tmp_path,
                       log=lambda line: None)
    with torch.no_grad():
        z = torch.randn(2000, G.z_dim, generator=torch.Generator().manual_seed(0))
        log_p = flow.flow.log_prob(G.mapping(z)).numpy()
        mean_p = float(flow.flow.log_prob(flow.w_init[None].float()))
        far = flow.w_init.float().clone()
        far[0] += 40 * float(flow.flow.w_std[0])
        far_p = float(flow.flow.log_prob(far[None]))
    assert job.solver.typical_p_w() == pytest.approx(float(np.percentile(log_p, 1)), rel=1e-4, abs=1e-3)
    assert mean_p > job.solver.typical_p_w() > far_p
    assert job.solver.off_prior_note(mean_p) is None
    note = job.solver.off_prior_note(far_p)
    assert note.startswith(f"RLS anchor outside the prior's high-density region (P_w {far_p:.0f}, below "
                           f"{job.solver.typical_p_w():.0f} where 99% of mapped w lie)")
    rows = job.run([LowResImage(path=Path("a.png"), stem="a", pixels=lr[0], factor=4)])
    saved = torch.load(tmp_path / "a.pt", weights_only=True)
    assert rows[0]["anchor_p_w"] == pytest.approx(float(saved["objective_rls"]["P_w"][0]), abs=0.01)
    assert (rows[0]["anchor_p_w"] < job.solver.typical_p_w()) == ("outside the prior" in rows[0]["note"])
