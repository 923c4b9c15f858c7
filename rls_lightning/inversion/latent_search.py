"""``LatentSearch``: RLS (paper Eq. 6) for a batch of images, and the PULSE / BRGM baselines in the same engine."""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from ..flow.maf import LatentFlow
from ..stylegan import Generator
from . import objective
from .noise import NoiseInputs
from .schedules import make_scheduler
from .settings import SearchSettings
from .stage import InversionStage, working_float

CROSS_PRIOR_TERMS = {"squared-sum": objective.cross_prior, "mean-squared": objective.mean_squared_cross_prior,
                "mean-distance": objective.mean_distance_cross_prior}  # SearchSettings.cross


class LatentSearch(InversionStage):
    """Optimises one latent per image (W+ rows, a single w, or PULSE's spherical latents) with Adam.

    Args:
        generator: frozen StyleGAN2.
        flow: the latent prior (needed when lambda_w or lambda_g is non-zero).
        targets: LR images ``[N, C, h, w]`` in [-1, 1].
        factor: super-resolution factor (generator resolution / LR size).
        settings: the RLS / baseline settings.
        initial_latents: ``[N, rows, d]`` with rows = num_ws (W+), 1 (W) or num_ws (PULSE's Gaussian space).
        w_stats: ``(mean, std)`` of mapped w, for BRGM's Gaussian prior.
        pulse_stats: ``(mean, std)`` of lrelu_5(w), for PULSE's parametrisation.
    """

    frozen_modules = ("generator", "flow")

    def __init__(self, generator: Generator, flow: LatentFlow | None, targets: torch.Tensor, factor: int,
                 settings: SearchSettings, initial_latents: torch.Tensor,
                 w_stats: tuple[torch.Tensor, torch.Tensor] | None = None,
                 pulse_stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        super().__init__(targets, factor)
        if settings.uses_flow and flow is None:
            raise ValueError("the flow prior is required when lambda_w or lambda_g is non-zero")
        if settings.pulse_sphere and pulse_stats is None:
            raise ValueError("PULSE's parametrisation needs the statistics of lrelu_5(w)")
        self.settings = settings
        self.generator = generator.requires_grad_(False)
        self.flow = flow.requires_grad_(False) if flow is not None else None
        self.latent = nn.Parameter(initial_latents.detach().clone())
        self.noise = NoiseInputs(list(generator.noise_inputs), settings.trainable_noise, initial_latents.shape[0])
        for name, stats in (("w", w_stats), ("pulse", pulse_stats)):
            mean, std = stats if stats is not None else (torch.zeros(()), torch.ones(()))
            self.register_buffer(f"{name}_mean", mean.detach().clone())
            self.register_buffer(f"{name}_std", std.detach().clone())
        for i, tensor in enumerate(self.optimised_tensors()):
            self.register_buffer(f"best_{i}", tensor.detach().clone())

    def optimised_tensors(self) -> list[torch.Tensor]:
        """The latent and the trainable noise maps, each with the batch as first dimension."""
        return [self.latent, *self.noise.trainable]

    # ----------------------------------------------------------------- model

    def ws_from(self, latent: torch.Tensor) -> torch.Tensor:
        """The W+ code ``[N, num_ws, d]`` that a latent stands for."""
        if self.settings.pulse_sphere:
            latent = F.leaky_relu(latent * self.pulse_std + self.pulse_mean, 0.2)
        if latent.shape[1] == 1:
            latent = latent.expand(-1, self.generator.num_ws, -1)
        return latent

    @property
    def ws(self) -> torch.Tensor:
        return self.ws_from(self.latent)

    def per_image_loss(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Eq. 6 (or a baseline's objective) per image, and its terms for logging."""
        ws = self.ws
        terms = self.objective_terms(ws, self.generator.synthesis(ws, noise=self.noise.maps()))
        return terms["total"], terms

    def objective_terms(self, ws: torch.Tensor, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every term of Eq. 6 (or of a baseline's objective) per image for ``images = G(ws)``, and ``total``, the
        loss the optimiser minimises: ``c * likelihood - lambda_w P_w - lambda_g P_gaussian - lambda_c P_cross``
        (+ the baselines' penalties). The likelihood is on the [0, 1] scale (``objective``)."""
        s = self.settings
        lr = self.degrade(images)
        likelihood = (objective.l1_likelihood if s.likelihood == "l1" else objective.l2_likelihood)(
            lr, self.targets, s.likelihood_reduction)
        terms = {"likelihood": likelihood}
        loss = s.likelihood_weight * likelihood
        if s.lambda_w or s.lambda_g:  # one flow pass for both priors
            terms["P_w"], terms["P_gaussian"] = objective.flow_priors(self.flow, ws)
            loss = loss - s.lambda_w * terms["P_w"] - s.lambda_g * terms["P_gaussian"]
        if s.lambda_c and self.latent.shape[1] > 1:
            terms["P_cross"] = CROSS_PRIOR_TERMS[s.cross](ws)
            loss = loss - s.lambda_c * terms["P_cross"]
        if s.geocross_weight and self.latent.shape[1] > 1:
            terms["geocross"] = objective.geocross(self.latent)
            loss = loss + s.geocross_weight * terms["geocross"]
        if s.gaussian_prior_weight:
            terms["gaussian_prior"] = objective.gaussian_w_prior(ws, self.w_mean, self.w_std)
            loss = loss + s.gaussian_prior_weight * terms["gaussian_prior"]
        cosine_weight = s.cosine_cross_weight
        if s.cosine_cross_weight_above_16x is not None and self.factor > 16:
            cosine_weight = s.cosine_cross_weight_above_16x
        if cosine_weight and self.latent.shape[1] > 1:
            terms["cosine_cross"] = objective.cosine_cross_prior(ws)
            loss = loss + cosine_weight * terms["cosine_cross"]
        terms["total"] = loss
        return terms

    # ----------------------------------------------------------------- Lightning

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        per_image, _ = self.per_image_loss()
        if self.settings.keep_best:
            self._remember_best(working_float(per_image.detach()), self.steps_done())
        # No self.log here: it costs a few percent of a small step; the final terms are in StageResult.terms.
        # Summed, not averaged: each image's latent gets exactly the gradient it would get alone.
        return per_image.sum()

    def on_train_start(self) -> None:
        self._frozen_flow = contextlib.ExitStack()
        if self.flow is not None:  # frozen here, and now on the training device
            self._frozen_flow.enter_context(self.flow.frozen())

    def on_train_end(self) -> None:
        super().on_train_end()
        self._frozen_flow.close()

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.optimised_tensors(), lr=self.settings.lr, fused=True)
        scheduler = make_scheduler(optimizer, self.settings.schedule, self.settings.steps)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ----------------------------------------------------------------- results

    @torch.no_grad()
    def _remember_best(self, losses: torch.Tensor, step: int) -> torch.Tensor:
        """``losses`` are those of the state after ``step`` optimizer steps."""
        improved = losses < self.best_loss
        self.best_loss.copy_(torch.where(improved, losses, self.best_loss))
        self.best_step.masked_fill_(improved, step)
        for i, tensor in enumerate(self.optimised_tensors()):
            best = getattr(self, f"best_{i}")
            best.copy_(torch.where(improved.reshape(-1, *[1] * (tensor.ndim - 1)), tensor.detach(), best))
        return improved

    @torch.no_grad()
    def final_state(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(W+ codes [N, num_ws, d], noise maps)`` after the search.

        With ``keep_best`` these are the lowest-loss latent and noise seen; the state after the last update is
        evaluated once more so that it competes too. ``kept_step`` says which step's state is returned.
        """
        self.kept_step.fill_(self.steps_done())
        if self.settings.keep_best:
            self._remember_best(working_float(self.per_image_loss()[0]), self.steps_done())
            for i, tensor in enumerate(self.optimised_tensors()):
                tensor.copy_(getattr(self, f"best_{i}"))
            self.kept_step.copy_(self.best_step)
        return self.ws.detach().clone(), [m.detach().clone() for m in self.noise.maps()]
