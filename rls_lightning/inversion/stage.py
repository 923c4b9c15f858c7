"""What the two inversion stages share: the degradation, a loader of one item per step, frozen-module handling."""
from __future__ import annotations

import dataclasses
import math

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..degradations import downsample_bicubic


def working_float(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in the dtype the objectives are evaluated in: float32 (bf16 autocast outputs go up), or float64
    under ``64-true``, which stays float64."""
    return tensor if tensor.dtype == torch.float64 else tensor.float()


@dataclasses.dataclass
class StageResult:
    """A stage's outcome, on the CPU and in float32: W+ codes ``[N, num_ws, d]``, noise maps, rendered images
    ``[N, C, H, W]``, the LR consistency of each image (``lr_consistency``) and the final value of each term of the
    stage's objective per image (``objective_terms``: ``likelihood``, the priors, ``total``); ``kept_step`` per
    image: after how many optimizer steps the state it returns was reached (0: the initial state, e.g. the RLS
    anchor in RLS+)."""

    ws: torch.Tensor
    noise: list[torch.Tensor]
    images: torch.Tensor
    lr_l1: torch.Tensor
    terms: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    kept_step: torch.Tensor | None = None


class InversionStage(L.LightningModule):
    """Base of ``LatentSearch`` and ``Refinement``.

    A stage is one epoch of S optimizer steps: ``Trainer(max_steps=S, max_epochs=1)`` with a loader of S items
    (the items carry nothing: the data, the LR targets, is a buffer of the module). One epoch rather than one per
    step, because every epoch costs Lightning's epoch hooks and a loader restart on top of the step itself.
    Callbacks that act after every step (the l1-ball projection, early stopping) use ``on_train_batch_end``.
    """

    frozen_modules: tuple[str, ...] = ()

    def __init__(self, targets: torch.Tensor, factor: int) -> None:
        super().__init__()
        self.factor = int(factor)
        self.register_buffer("targets", targets.detach().clone())
        self._result: StageResult | None = None
        self.register_buffer("best_loss", torch.full((targets.shape[0],), math.inf))
        self.register_buffer("best_step", torch.zeros(targets.shape[0], dtype=torch.long))
        self.register_buffer("kept_step", torch.zeros(targets.shape[0], dtype=torch.long))

    def final_state(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(ws, noise maps)`` that the stage settles on."""
        raise NotImplementedError

    def synthesize(self, ws: torch.Tensor, noise: list[torch.Tensor]) -> torch.Tensor:
        """G(w, eta) with the stage's generator weights."""
        return self.generator.synthesis(ws, noise=noise)

    def objective_terms(self, ws: torch.Tensor, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The stage's objective per image for ``images = G(ws)``: its terms and ``total``."""
        raise NotImplementedError

    @torch.no_grad()
    def collect(self) -> StageResult:
        ws, noise = self.final_state()
        images = working_float(self.synthesize(ws, noise))
        terms = {name: value.detach().float().cpu() for name, value in self.objective_terms(ws, images).items()}
        # float32 out whatever the run's precision, so that a result feeds any float32 generator
        return StageResult(ws.float().cpu(), [n.float().cpu() for n in noise], images.float().cpu(),
                           self.lr_consistency(images).float().cpu(), terms, self.kept_step.cpu())

    def steps_done(self) -> int:
        """Optimizer steps run so far (0 before, or without, a Trainer)."""
        return int(self._trainer.global_step) if self._trainer is not None else 0

    def on_train_end(self) -> None:
        # Still on the training device here; the Trainer moves the module back to the CPU at teardown.
        self._result = self.collect()

    def results(self) -> StageResult:
        """The outcome of ``Trainer.fit``, or of the initial state when the stage was not run."""
        return self._result if self._result is not None else self.collect()

    def train(self, mode: bool = True) -> "InversionStage":
        super().train(mode)
        # Lightning switches every submodule to train mode at fit start; the flow's batch-norm layers must keep
        # their running statistics, so frozen networks stay in eval mode.
        for name in self.frozen_modules:
            module = getattr(self, name, None)
            if isinstance(module, nn.Module):
                module.eval()
        return self

    def train_dataloader(self) -> DataLoader:
        steps = self.trainer.max_steps if self.trainer.max_steps > 0 else 1  # max_steps -1: one step per epoch
        return DataLoader(range(steps), batch_size=None)

    def degrade(self, images: torch.Tensor) -> torch.Tensor:
        """D(x): antialiased bicubic downsampling by the job's factor (paper Eq. 3), in float32 even under
        autocast (in bf16 its rounding would be of the size of the residuals RLS+ removes), float64 under 64-true."""
        with torch.autocast(images.device.type, enabled=False):
            return downsample_bicubic(working_float(images), self.factor)

    @torch.no_grad()
    def lr_consistency(self, images: torch.Tensor) -> torch.Tensor:
        """Per image: mean |D(x) - y| on the [0, 1] intensity scale (images are in [-1, 1])."""
        return 0.5 * (self.degrade(images) - working_float(self.targets)).abs().flatten(1).mean(1)
