"""``StyleGAN2Training``: the GAN training of our demo generator (Karras et al. 2020, as in stylegan2-ada-pytorch).

Manual optimisation of a generator and a discriminator with Adam (lr 0.0025, betas (0, 0.99)): non-saturating
logistic loss, lazy R1 penalty on real images (every 16 discriminator steps), lazy path-length regularisation
(every 4 generator steps), style mixing, an exponential moving average of the generator (G_ema, the network we
ship), horizontal flips. Data are uint8 images in memory.
"""
from __future__ import annotations

import copy
import math

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from .discriminator import Discriminator
from .networks import Generator, GeneratorConfig


OPTIMIZER_STEPS_PER_BATCH = 2  # generator and discriminator


class StyleGAN2Training(L.LightningModule):
    """Args (defaults: stylegan2-ada-pytorch's 'auto' configuration where it applies):
        config: generator architecture (the discriminator mirrors its channels).
        images: ``[N, C, R, R]`` uint8 training images.
        batch_size: images per step and device.
        lr: Adam learning rate of both networks.
        r1_gamma: R1 weight; None = 0.0002 * R^2 / batch (NVIDIA's heuristic).
        r1_interval / pl_interval: lazy regularisation intervals.
        pl_weight: path-length regularisation weight (2 in NVIDIA's configs); it keeps the generator's Jacobian
            well conditioned, which is what lets RLS drop the Jacobian term of Eq. 4.
        style_mixing: probability of mixing two w in one image.
        ema_kimg: half-life of G_ema in thousands of images; None = batch * 10 / 32.
        ema_rampup: the half-life is at most this fraction of the images seen so far.
        mirror: random horizontal flips.
    """

    def __init__(self, config: GeneratorConfig, images: torch.Tensor, *, batch_size: int = 32, lr: float = 0.0025,
                 r1_gamma: float | None = None, r1_interval: int = 16, pl_weight: float = 2.0,
                 pl_interval: int = 4, style_mixing: float = 0.9, ema_kimg: float | None = None,
                 ema_rampup: float | None = 0.05, mirror: bool = True, seed: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["images", "config"])
        self.hparams["config"] = config.to_dict()
        self.automatic_optimization = False
        self.images = images
        self.G = Generator(config)
        self.G.synthesis.fused_modconv = False  # shared weights across the batch: faster for training
        self.D = Discriminator(config)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.r1_gamma = r1_gamma if r1_gamma is not None else 0.0002 * config.img_resolution ** 2 / batch_size
        self.ema_kimg = ema_kimg if ema_kimg is not None else batch_size * 10 / 32
        self.register_buffer("pl_mean", torch.zeros(()))
        self.register_buffer("images_seen", torch.zeros((), dtype=torch.float64))
        # Lightning counts one global step per optimizer step (two per batch here), so the lazy
        # regularisation intervals count batches themselves.
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))

    # ------------------------------------------------------------------ data

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.hparams.seed)
        return DataLoader(TensorDataset(self.images), batch_size=self.hparams.batch_size, shuffle=True,
                          drop_last=True, generator=generator, num_workers=0)

    def real_batch(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.float() / 127.5 - 1.0
        if self.hparams.mirror:
            flip = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x

    # ------------------------------------------------------------------ networks

    def mapped_ws(self, batch: int) -> torch.Tensor:
        """W+ codes with style mixing: rows from ``cutoff`` on come from a second z."""
        G = self.G
        z = torch.randn(batch, G.z_dim, device=self.device)
        w = G.mapping(z)
        ws = w[:, None].expand(-1, G.num_ws, -1)
        if self.hparams.style_mixing > 0:
            cutoff = torch.randint(1, G.num_ws, (batch,), device=self.device)
            mix = torch.rand(batch, device=self.device) < self.hparams.style_mixing
            cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, G.num_ws))
            w2 = G.mapping(torch.randn_like(z))[:, None].expand(-1, G.num_ws, -1)
            rows = torch.arange(G.num_ws, device=self.device)[None, :, None]
            ws = torch.where(rows >= cutoff[:, None, None], w2, ws)
        return ws

    def generate(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        ws = self.mapped_ws(batch)
        return self.G.synthesis(ws, noise_mode="random"), ws

    # ------------------------------------------------------------------ losses

    def generator_step(self, opt_g, batch: int) -> dict[str, torch.Tensor]:
        self.D.requires_grad_(False)
        self.G.requires_grad_(True)
        fake, _ = self.generate(batch)
        loss = F.softplus(-self.D(fake)).mean()  # non-saturating logistic
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        logs = {"loss_g": loss.detach()}
        if self.hparams.pl_weight > 0 and int(self.iteration) % self.hparams.pl_interval == 0:
            pl_batch = max(1, batch // 2)
            fake, ws = self.generate(pl_batch)
            noise = torch.randn_like(fake) / math.sqrt(fake.shape[2] * fake.shape[3])
            (grad,) = torch.autograd.grad((fake * noise).sum(), ws, create_graph=True)
            lengths = grad.float().square().sum(2).mean(1).sqrt()
            pl_mean = self.pl_mean.lerp(lengths.mean().detach(), 0.01)
            self.pl_mean.copy_(pl_mean)
            penalty = (lengths - pl_mean).square().mean() * self.hparams.pl_weight * self.hparams.pl_interval
            self.manual_backward(penalty)
            logs["pl_penalty"] = penalty.detach()
        opt_g.step()
        return logs

    def discriminator_step(self, opt_d, real: torch.Tensor) -> dict[str, torch.Tensor]:
        self.D.requires_grad_(True)
        self.G.requires_grad_(False)
        with torch.no_grad():
            fake, _ = self.generate(real.shape[0])
        loss = F.softplus(self.D(fake)).mean() + F.softplus(-self.D(real)).mean()
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        logs = {"loss_d": loss.detach()}
        if self.r1_gamma > 0 and int(self.iteration) % self.hparams.r1_interval == 0:
            real = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.D(real).sum(), real, create_graph=True)
            penalty = grad.float().square().sum(dim=(1, 2, 3)).mean() * (self.r1_gamma / 2) * self.hparams.r1_interval
            self.manual_backward(penalty)
            logs["r1_penalty"] = penalty.detach()
        opt_d.step()
        return logs

    @torch.no_grad()
    def update_ema(self, batch: int) -> None:
        ema_nimg = self.ema_kimg * 1000
        if self.hparams.ema_rampup is not None:
            ema_nimg = min(ema_nimg, float(self.images_seen) * self.hparams.ema_rampup)
        beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # ------------------------------------------------------------------ Lightning

    def training_step(self, batch, batch_idx: int) -> None:
        (images,) = batch
        opt_g, opt_d = self.optimizers()
        real = self.real_batch(images)
        logs = self.generator_step(opt_g, real.shape[0])
        logs.update(self.discriminator_step(opt_d, real))
        global_batch = real.shape[0] * self.trainer.world_size
        self.images_seen += global_batch
        self.iteration += 1
        self.update_ema(global_batch)
        self.log_dict(logs, prog_bar=True)
        self.log("kimg", float(self.images_seen) / 1000, prog_bar=True)

    def configure_optimizers(self):
        lr = self.hparams.lr

        def adam(params, interval: int | None) -> torch.optim.Adam:
            # lazy regularisation: scale lr and betas as if the penalty were applied every step (NVIDIA)
            ratio = interval / (interval + 1) if interval else 1.0
            return torch.optim.Adam(params, lr=lr * ratio, betas=(0.0, 0.99 ** ratio), eps=1e-8)

        return [adam(self.G.parameters(), self.hparams.pl_interval if self.hparams.pl_weight > 0 else None),
                adam(self.D.parameters(), self.hparams.r1_interval if self.r1_gamma > 0 else None)]

    def train(self, mode: bool = True) -> "StyleGAN2Training":
        super().train(mode)
        self.G_ema.eval()
        return self


@torch.no_grad()
def generator_for_export(module: StyleGAN2Training, w_avg_samples: int = 100_000, seed: int = 0) -> Generator:
    """A CPU copy of G_ema with the official inference path and ``w_avg`` = mean of mapped samples."""
    from .latents import latent_statistics

    G = copy.deepcopy(module.G_ema).cpu().eval()
    G.synthesis.fused_modconv = True
    mean, _ = latent_statistics(G.mapping, G.z_dim, w_avg_samples, seed, "cpu")
    G.w_avg = mean
    return G
