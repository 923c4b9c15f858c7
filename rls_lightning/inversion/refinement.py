"""``Refinement``: RLS+ (paper Eq. 7) for one image, on its own copy of the generator."""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..stylegan import Generator
from .noise import NoiseInputs
from .objective import l1_likelihood
from .schedules import make_scheduler
from .settings import RefineSettings
from .stage import InversionStage


class Refinement(InversionStage):
    """Jointly tunes w, the synthesis weights theta and the first noise maps eta to minimise |y - D(G(w))|_1.

    The generator is deep-copied, so what is tuned for one image never reaches the next. The l1-ball constraint
    around ``anchor`` is applied by the ``L1BallProjection`` callback, early stopping by Lightning's
    ``EarlyStopping`` on ``refine_loss``.

    Args:
        generator: the pretrained StyleGAN2 (left untouched).
        target: the LR image ``[1, C, h, w]`` in [-1, 1].
        factor: super-resolution factor.
        anchor: W+ code ``[1, num_ws, d]`` to start from (the RLS result, or the mean w for "w/o anchor").
        noise: initial noise maps, one per layer.
        settings: RLS+ settings.
    """

    def __init__(self, generator: Generator, target: torch.Tensor, factor: int, anchor: torch.Tensor,
                 noise: list[torch.Tensor], settings: RefineSettings) -> None:
        super().__init__(target, factor)
        self.settings = settings
        self.generator = copy.deepcopy(generator).requires_grad_(settings.optimize_generator)
        self.generator.mapping.requires_grad_(False)  # W+ is optimised directly: the mapping is unused
        self.register_buffer("anchor", anchor.detach().clone())
        if settings.optimize_w:
            self.ws = nn.Parameter(anchor.detach().clone())
        else:
            self.register_buffer("ws", anchor.detach().clone())
        trainable = settings.trainable_noise if settings.optimize_noise else 0
        self.noise = NoiseInputs(noise, trainable, batch=1)
        self.register_buffer("best_loss", torch.tensor(math.inf))
        self.best_state: dict[str, torch.Tensor] | None = None

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
        if s.optimize_generator:
            groups.append({"params": list(self.generator.synthesis.parameters()), "lr": s.lr_generator})
        if not groups:
            raise ValueError("RLS+ has nothing to optimise: enable w, noise or the generator")
        return groups, scheduled

    def render(self) -> torch.Tensor:
        return self.generator.synthesis(self.ws, noise=self.noise.maps())

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = l1_likelihood(self.degrade(self.render()), self.targets).sum()
        if self.settings.keep_best and loss.detach() < self.best_loss:
            # The loss belongs to the parameters before this step's update: remember those.
            self.best_loss.copy_(loss.detach())
            self.best_state = {k: v.detach().clone() for k, v in self.state_dict().items()}
        self.log("refine_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=1)
        return loss

    def configure_optimizers(self):
        groups, scheduled = self.parameter_groups()
        optimizer = torch.optim.Adam(groups)
        scheduler = make_scheduler(optimizer, self.settings.schedule, self.settings.steps, groups=scheduled)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    @torch.no_grad()
    def final_state(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(ws, noise maps)`` after refinement (those of the best-loss step with ``keep_best``); the generator
        copy keeps the matching weights."""
        if self.settings.keep_best and self.best_state is not None:
            final_loss = l1_likelihood(self.degrade(self.render()), self.targets).sum()
            if final_loss >= self.best_loss:
                self.load_state_dict(self.best_state)
        return self.ws.detach().clone(), [m.detach().clone() for m in self.noise.maps()]
