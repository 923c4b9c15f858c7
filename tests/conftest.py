import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from rls_lightning.stylegan import Generator, GeneratorConfig  # noqa: E402


def randomized_generator(seed: int = 0, **config) -> Generator:
    """A small generator whose every parameter is perturbed away from its init (biases and noise strengths
    start at 0 or 1, which would hide mistakes in how they are applied), with a random w_avg."""
    defaults = dict(img_resolution=16, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=32)
    defaults.update(config)
    torch.manual_seed(seed)
    G = Generator(GeneratorConfig(**defaults)).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith(("bias", "noise_strength")):
                p.add_(0.3 * torch.randn_like(p))
            else:
                p.mul_(1 + 0.1 * torch.randn_like(p))
    G.w_avg = torch.randn(G.w_dim)
    return G


@pytest.fixture
def tiny_generator() -> Generator:
    return randomized_generator()
