"""The per-layer noise inputs eta of the synthesis network, some of them optimised (paper sec. 3.2, 4)."""
from __future__ import annotations

import torch
from torch import nn


class NoiseInputs(nn.Module):
    """Noise maps for every synthesis layer: the first ``trainable`` are parameters, the others fixed buffers.

    ``initial``: one tensor per layer, ``[R, R]`` (shared by the batch) or ``[N, 1, R, R]``; trainable maps are
    expanded to ``batch`` copies so that each image owns its noise.
    """

    def __init__(self, initial: list[torch.Tensor], trainable: int, batch: int) -> None:
        super().__init__()
        self.num_layers = len(initial)
        self.num_trainable = max(0, min(int(trainable), len(initial)))
        self.trainable = nn.ParameterList()
        for i, noise in enumerate(initial):
            res = noise.shape[-1]
            if i < self.num_trainable:
                self.trainable.append(nn.Parameter(noise.detach().reshape(-1, 1, res, res).expand(batch, 1, res, res)
                                                   .clone()))
            else:
                self.register_buffer(f"fixed_{i}", noise.detach().reshape(-1, 1, res, res).clone())

    def maps(self) -> list[torch.Tensor]:
        return [self.trainable[i] if i < self.num_trainable else getattr(self, f"fixed_{i}")
                for i in range(self.num_layers)]

    def select(self, index: int) -> list[torch.Tensor]:
        """The maps of one image of the batch (fixed maps are shared), detached."""
        return [m[index:index + 1].detach().clone() if m.shape[0] > 1 else m.detach().clone() for m in self.maps()]

    @torch.no_grad()
    def renormalize_(self) -> None:
        """Zero mean and unit standard deviation per map (the official RLS+ code does this every step)."""
        for noise in self.trainable:
            mean = noise.mean(dim=(1, 2, 3), keepdim=True)
            std = noise.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8)
            noise.sub_(mean).div_(std)
