"""A toy StyleGAN2 with images in about [-1, 1] and a flow prior fitted to it, for the inversion tests."""
from __future__ import annotations

import logging

import lightning as L
import torch

from rls_lightning.flow.checkpoint import FlowBundle
from rls_lightning.flow.lightning_module import FlowPrior, flow_config_for
from rls_lightning.stylegan import Generator, GeneratorConfig

TORGB_GAIN = {4: 0.2, 8: 0.2, 16: 0.4, 32: 0.6}  # random weights otherwise give images of magnitude ~5


def quiet_trainer(**kwargs) -> L.Trainer:
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    return L.Trainer(**{**dict(accelerator="cpu", logger=False, enable_checkpointing=False,
                               enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0),
                        **kwargs})


def toy_generator(seed: int = 0, resolution: int = 32) -> Generator:
    torch.manual_seed(seed)
    G = Generator(GeneratorConfig(img_resolution=resolution, z_dim=16, w_dim=16, mapping_layers=2,
                                  channel_base=512, channel_max=32)).eval()
    with torch.no_grad():
        for block in G.synthesis.blocks:
            block.torgb.weight.mul_(TORGB_GAIN[block.resolution])
    return G


def toy_flow(G: Generator) -> FlowBundle:
    module = FlowPrior(G.mapping, G.z_dim, flow_config_for(G.w_dim, num_blocks=2, hidden_features=32),
                       num_samples=200 * 512, batch_size=512, lr=1e-3, val_samples=512, stats_samples=4000)
    quiet_trainer(max_epochs=1, limit_val_batches=0).fit(module)
    return module.to_bundle()


def known_latents(G: Generator, n: int, seed: int = 5) -> torch.Tensor:
    with torch.no_grad():
        w = G.mapping(torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)))
    return w[:, None].expand(-1, G.num_ws, -1).clone()
