"""``Refinement``: RLS+ (paper Eq. 7) for a batch of images, each with its own tuned generator weights."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from ..stylegan import Generator
from .noise import NoiseInputs
from .objective import l1_likelihood
from .schedules import make_scheduler
from .settings import RefineSettings
from .stage import InversionStage, working_float


def _per_image(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``mask [N]`` shaped to broadcast over a tensor whose first dimension is the image."""
    return mask.reshape(-1, *[1] * (like.ndim - 1))


class Refinement(InversionStage):
    """Per image n, jointly tunes w_n, the synthesis weights theta_n and the first noise maps eta_n to minimise
    |y_n - D(G(w_n, theta_n, eta_n))|_1 (Eq. 7).

    The pretrained generator is never modified: every synthesis parameter gets one tensor per image,
    ``[N, *shape]`` (``image_weights``), initialised to theta, which ``torch.func.functional_call`` passes to the
    synthesis network; the modulated convolutions then apply them as grouped convolutions. The per-image losses are
    summed and Adam is elementwise, so this is exactly the optimisation of a private generator copy per image.
    (Offsets ``theta + delta_n`` would be the same optimisation; the extra weight-sized addition cost 20% on CPU.)

    Per image, not per batch: the l1 ball around ``anchor`` (``L1BallProjection`` projects every row), and early
    stopping (``PerImageEarlyStopping`` calls ``freeze``: a frozen image keeps its state from that step, while the
    others go on; the Trainer stops once every image is frozen).

    Args:
        generator: the pretrained StyleGAN2 (left untouched).
        targets: the LR images ``[N, C, h, w]`` in [-1, 1].
        factor: super-resolution factor.
        anchors: W+ codes ``[N, num_ws, d]`` to start from (the RLS results, or the mean w for "w/o anchor").
        noise: initial noise maps, one per layer, ``[R, R]`` (shared) or ``[N, 1, R, R]``.
        settings: RLS+ settings.
    """

    frozen_modules = ("generator",)

    def __init__(self, generator: Generator, targets: torch.Tensor, factor: int, anchors: torch.Tensor,
                 noise: list[torch.Tensor], settings: RefineSettings) -> None:
        super().__init__(targets, factor)
        n = targets.shape[0]
        if anchors.shape[0] != n:
            raise ValueError(f"{anchors.shape[0]} anchors for {n} target images")
        self.settings = settings
        self.generator = generator.requires_grad_(False)
        self.register_buffer("anchor", anchors.detach().clone())
        if settings.optimize_w:
            self.ws = nn.Parameter(anchors.detach().clone())
        else:
            self.register_buffer("ws", anchors.detach().clone())
        trainable = settings.trainable_noise_maps([n.shape[-1] for n in noise], generator.img_resolution) \
            if settings.optimize_noise else 0
        self.noise = NoiseInputs(noise, trainable, batch=n)
        named = list(generator.synthesis.named_parameters()) if settings.optimize_generator else []
        self.weight_names = [name for name, _ in named]
        self.image_weights = nn.ParameterList([nn.Parameter(p.detach().unsqueeze(0).repeat(n, *[1] * p.ndim))
                                                for _, p in named])
        self.register_buffer("last_loss", torch.full((n,), math.inf))
        self.register_buffer("stopped_at", torch.zeros(n, dtype=torch.long))  # 0: still running
        self._best: list[torch.Tensor] | None = None
        self._frozen: list[torch.Tensor] | None = None

    # ----------------------------------------------------------------- model

    def optimised_tensors(self) -> list[torch.Tensor]:
        """What Adam tunes, each with the image as first dimension."""
        return [t for t in (self.ws, *self.noise.trainable, *self.image_weights) if isinstance(t, nn.Parameter)]

    def parameter_groups(self) -> tuple[list[dict], list[int]]:
        """Adam groups (w, noise, generator) and the indices of the groups the schedule drives (w and noise)."""
        groups, scheduled = [], []
        s = self.settings
        if s.optimize_w:
            scheduled.append(len(groups))
            groups.append({"params": [self.ws], "lr": s.lr_w})
        if len(self.noise.trainable):
            scheduled.append(len(groups))
            groups.append({"params": list(self.noise.trainable), "lr": s.lr_noise})
        if len(self.image_weights):
            groups.append({"params": list(self.image_weights), "lr": s.lr_generator})
        if not groups:
            raise ValueError("RLS+ has nothing to optimise: enable w, noise or the generator")
        return groups, scheduled

    def tuned_weights(self) -> dict[str, torch.Tensor]:
        """theta_n for every synthesis parameter, ``[N, *shape]``."""
        return dict(zip(self.weight_names, self.image_weights))

    def synthesize(self, ws: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        if not self.weight_names:
            return self.generator.synthesis(ws, noise=noise)
        return functional_call(self.generator.synthesis, self.tuned_weights(), (ws,), {"noise": noise})

    def per_image_loss(self) -> torch.Tensor:
        """Eq. 7's objective for every image, ``[N]``."""
        return self.objective_terms(self.ws, self.synthesize(self.ws, self.noise.maps()))["total"]

    def objective_terms(self, ws: torch.Tensor, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. 7 has one term: the likelihood, mean |y - D(x)| on the [0, 1] scale; ``total`` is the same value."""
        likelihood = l1_likelihood(self.degrade(images), self.targets)
        return {"likelihood": likelihood, "total": likelihood}

    # ----------------------------------------------------------------- Lightning

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        losses = self.per_image_loss()
        with torch.no_grad():
            self.last_loss.copy_(losses.detach())
            if self.settings.keep_best:
                # These losses belong to the parameters before this step's update: remember those.
                self._remember_best(self.last_loss, running=self.stopped_at == 0, step=self.steps_done())
        return losses.sum()

    def configure_optimizers(self):
        groups, scheduled = self.parameter_groups()
        optimizer = torch.optim.Adam(groups, fused=True)
        scheduler = make_scheduler(optimizer, self.settings.schedule, self.settings.steps, groups=scheduled)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ----------------------------------------------------------------- per-image state

    @staticmethod
    def _blend(targets: list[torch.Tensor], sources: list[torch.Tensor], mask: torch.Tensor) -> None:
        for target, source in zip(targets, sources):
            target.copy_(torch.where(_per_image(mask, target), source, target))

    @torch.no_grad()
    def _remember_best(self, losses: torch.Tensor, running: torch.Tensor, step: int) -> None:
        """``losses`` are those of the state after ``step`` optimizer steps (step 0: the anchor itself)."""
        improved = running & (losses < self.best_loss)
        if self._best is None:
            self._best = [t.detach().clone() for t in self.optimised_tensors()]
        self.best_loss.copy_(torch.where(improved, losses, self.best_loss))
        self.best_step.masked_fill_(improved, step)
        self._blend(self._best, self.optimised_tensors(), improved)

    @torch.no_grad()
    def freeze(self, images: torch.Tensor, step: int) -> None:
        """Early stop for the images in the boolean mask ``images``: their current state is their result."""
        images = images & (self.stopped_at == 0)
        if self._frozen is None:
            self._frozen = [t.detach().clone() for t in self.optimised_tensors()]
        self._blend(self._frozen, self.optimised_tensors(), images)
        self.stopped_at.masked_fill_(images, int(step))

    def steps_run(self, total: int) -> torch.Tensor:
        """Optimizer steps that count for each image: its early-stopping step, or ``total``."""
        return torch.where(self.stopped_at > 0, self.stopped_at.cpu(), torch.tensor(int(total)))

    @torch.no_grad()
    def final_state(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(ws, noise maps)`` after refinement; ``image_weights`` are left at the matching values.

        A frozen image gets its state at its early stop; with ``keep_best`` (the default), an image whose final loss
        is not below its best gets its best-loss state, so that the result is never worse in Eq. 7's objective than
        any state the run went through, the anchor (step 0) included. ``kept_step`` says which step's state it is.
        """
        if self._frozen is not None:
            self._blend(self.optimised_tensors(), self._frozen, self.stopped_at > 0)
        self.kept_step.copy_(self.steps_run(self.steps_done()).to(self.kept_step.device))
        if self.settings.keep_best and self._best is not None:
            final_loss = working_float(self.per_image_loss())
            use_best = final_loss >= self.best_loss
            self._blend(self.optimised_tensors(), self._best, use_best)
            self.kept_step.copy_(torch.where(use_best, self.best_step, self.kept_step))
        return self.ws.detach().clone(), [m.detach().clone() for m in self.noise.maps()]
