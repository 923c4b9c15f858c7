"""The flow's training data, drawn on the fly (no data on disk): one seed per step (``SeedStream``), each giving a
batch of mapped latents w = G.mapping(z) (``stylegan.latents``, whose seeded streams are re-exported here)."""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..stylegan.latents import draw_z, latent_statistics, mapped_latents, stream_seed  # noqa: F401


class SeedStream(IterableDataset):
    """One integer seed per training step; each yields a fresh batch of z inside ``training_step``.

    Steps are split across distributed ranks: rank r takes steps r, r + world, ..., and every rank gets the same
    number of steps, ``ceil(num_steps / world)`` (a rank waiting for a partner's extra step would hang DDP's
    gradient all-reduce). The seed of step s is ``base_seed + s``.
    """

    def __init__(self, base_seed: int, num_steps: int) -> None:
        super().__init__()
        self.base_seed = int(base_seed)
        self.num_steps = int(num_steps)

    @staticmethod
    def _rank_and_world() -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def __len__(self) -> int:
        return -(-self.num_steps // self._rank_and_world()[1])

    def seed_of(self, local_step: int) -> int:
        """The seed of this rank's ``local_step``-th step (what a resumed run needs to continue the stream)."""
        rank, world = self._rank_and_world()
        return self.base_seed + local_step * world + rank

    def __iter__(self) -> Iterator[int]:
        if get_worker_info() is not None and get_worker_info().num_workers > 1:
            raise RuntimeError("SeedStream is cheap; use num_workers=0 or 1")
        for local_step in range(len(self)):
            yield self.seed_of(local_step)
