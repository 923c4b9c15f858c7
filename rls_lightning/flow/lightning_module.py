"""``FlowPrior``: trains the MAF latent prior by maximum likelihood on w = G.mapping(z) drawn inside the loop.

Data: ``SeedStream`` hands one seed per step; ``training_step`` draws ``batch_size`` z on the training device and
maps them with the frozen mapping network, so millions of samples cost no disk and no host-device transfer.
Validation: the mean negative log-likelihood (nats per sample, Eq. 1) of a fixed, seeded set of w.
"""
from __future__ import annotations

import dataclasses
import math

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .checkpoint import FlowBundle, mapping_fingerprint
from .maf import FlowConfig, LatentFlow
from .sampling import SeedStream, draw_z, latent_statistics, stream_seed


class FlowPrior(L.LightningModule):
    """Maximum-likelihood training of ``LatentFlow`` on mapped latents.

    Args:
        mapping: the generator's mapping network (frozen; its fingerprint is stored with the flow).
        z_dim: input size of ``mapping``.
        flow: MAF hyper-parameters (``features`` must equal w_dim).
        num_samples: total w samples seen in training (split over devices).
        batch_size: samples per step and device.
        lr: Adam learning rate (cosine-decayed to 0 over training).
        val_samples: size of the fixed validation set.
        stats_samples: mapped w used for the standardisation statistics and the RLS initialisation
            (paper sec. 4: the mean of 100,000 latents).
        seed: root of every random stream (training, validation, statistics).
    """

    def __init__(self, mapping: nn.Module, z_dim: int, flow: FlowConfig, *, num_samples: int = 5_000_000,
                 batch_size: int = 1024, lr: float = 1e-4, val_samples: int = 10_000,
                 stats_samples: int = 100_000, seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["mapping", "flow"])
        self.hparams["flow"] = flow.to_dict()
        self.mapping = mapping.eval().requires_grad_(False)
        self.flow = LatentFlow(flow)
        self.fingerprint = mapping_fingerprint(mapping)
        self.register_buffer("w_init", torch.zeros(flow.features))
        self.register_buffer("statistics_ready", torch.zeros((), dtype=torch.bool))

    # ------------------------------------------------------------------ data

    @property
    def num_steps(self) -> int:
        """Steps over all devices together."""
        return math.ceil(self.hparams.num_samples / self.hparams.batch_size)

    def steps_per_device(self, world_size: int) -> int:
        return math.ceil(self.num_steps / max(1, world_size))

    def on_fit_start(self) -> None:
        # After the move to the device and after a resumed checkpoint restored the buffers.
        if not bool(self.statistics_ready):
            # Every rank computes the same numbers (CPU-seeded z), so no synchronisation is needed.
            mean, std = latent_statistics(self.mapping, self.hparams.z_dim, self.hparams.stats_samples,
                                          stream_seed(self.hparams.seed, "stats"), self.device)
            self.flow.set_standardisation(mean.to(self.device), std.to(self.device))
            self.w_init.copy_(mean)
            self.statistics_ready.fill_(True)

    def train_dataloader(self) -> DataLoader:
        self.seed_stream = SeedStream(stream_seed(self.hparams.seed, "train"), self.num_steps)
        return DataLoader(self.seed_stream, batch_size=None, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        z = draw_z(self.hparams.val_samples, self.hparams.z_dim, stream_seed(self.hparams.seed, "val"))
        return DataLoader(TensorDataset(z), batch_size=min(self.hparams.batch_size, 4096), shuffle=False)

    def map_latents(self, z: torch.Tensor) -> torch.Tensor:
        """w = mapping(z) in full precision: the flow must learn the float32 w that inversion will feed it."""
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            return self.mapping(z.float())

    def mapped_batch(self, seed: int) -> torch.Tensor:
        generator = torch.Generator(device=self.device).manual_seed(int(seed))
        z = torch.randn(self.hparams.batch_size, self.hparams.z_dim, generator=generator, device=self.device)
        return self.map_latents(z)

    # ------------------------------------------------------------------ steps

    def training_step(self, seed: torch.Tensor | int, batch_idx: int) -> torch.Tensor:
        # The seed follows the global step, not the loader, so that a resumed run continues the stream
        # instead of replaying it (the loader restarts from its first item after a resume).
        nll = -self.flow.log_prob(self.mapped_batch(self.seed_stream.seed_of(self.global_step))).mean()
        self.log("train_nll", nll, prog_bar=True)
        self.log("samples_seen", float((self.global_step + 1) * self.hparams.batch_size * self.trainer.world_size),
                 reduce_fx="max")
        return nll

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        (z,) = batch
        nll = -self.flow.log_prob(self.map_latents(z)).mean()
        self.log("val_nll", nll, prog_bar=True, sync_dist=True, batch_size=z.shape[0])
        self.log("val_nll_per_dim", nll / self.flow.features, sync_dist=True, batch_size=z.shape[0])

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.flow.parameters(), lr=self.hparams.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.steps_per_device(
            self.trainer.world_size))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # ------------------------------------------------------------------ export

    def to_bundle(self, training: dict | None = None) -> FlowBundle:
        """The standalone flow file's content (see ``checkpoint.save_flow``)."""
        flow = LatentFlow(self.flow.config)
        flow.load_state_dict({k: v.detach().cpu() for k, v in self.flow.state_dict().items()})
        return FlowBundle(flow=flow.eval(), w_init=self.w_init.detach().cpu(), generator_fingerprint=self.fingerprint,
                          w_init_samples=self.hparams.stats_samples,
                          training={**dict(training or {}), "hparams": {k: v for k, v in self.hparams.items()
                                                                        if isinstance(v, (int, float, str, dict))}})


def flow_config_for(w_dim: int, **overrides) -> FlowConfig:
    """The paper's flow (sec. 4) for latents of size ``w_dim``: the MADE width scales as 2 x w_dim, which is the
    paper's 1024 at d = 512 (the paper is silent on other sizes); ``hidden_features=None`` keeps that rule."""
    if overrides.get("hidden_features") is None:
        overrides["hidden_features"] = 2 * w_dim
    return dataclasses.replace(FlowConfig(features=w_dim), **overrides)
