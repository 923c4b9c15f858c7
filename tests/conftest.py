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


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch, tmp_path_factory):
    """No test reaches the internet: registry files are offline unless a test serves them on 127.0.0.1. Each test
    gets its own empty torch hub cache, so no test reads a flow or a weight file that another test (or the user)
    left in the real cache, and none writes there: a test that passes only after another one ran cannot pass CI."""
    monkeypatch.setenv("RLS_OFFLINE", "1")
    monkeypatch.delenv("RLS_WEIGHTS_MIRROR", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch-home")))


def _random_metric_weights(folder: Path) -> dict[str, Path]:
    """Files of the registry's metric networks with random weights (the real ones cannot be downloaded here)."""
    from facenet_pytorch import InceptionResnetV1
    from torchvision.models import alexnet

    from support.metric_weights import random_fid_inception_state

    torch.manual_seed(0)
    files = {"fid-inception": folder / "weights-inception-2015-12-05-6726825d.pth",
             "alexnet": folder / "alexnet-owt-7be5be79.pth", "facenet-vggface2": folder / "20180402-114759-vggface2.pt"}
    torch.save(random_fid_inception_state(), files["fid-inception"])
    torch.save(alexnet(weights=None).state_dict(), files["alexnet"])
    torch.save(InceptionResnetV1(pretrained=None, classify=True, num_classes=8631).state_dict(),
               files["facenet-vggface2"])
    return files


@pytest.fixture(scope="session")
def random_metric_weight_files(tmp_path_factory) -> dict[str, Path]:
    return _random_metric_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture
def fake_weights(random_metric_weight_files, monkeypatch) -> Path:
    """A --weights-dir holding random-weight stand-ins, with the registry trusting exactly those bytes."""
    import dataclasses

    from rls_lightning.weights import registry
    from rls_lightning.weights.verification import sha256_of

    digests = {name: sha256_of(path) for name, path in random_metric_weight_files.items()}
    patched = tuple(dataclasses.replace(entry, sha256=digests[entry.name], hash_prefix=None, size=None)
                    if entry.name in digests else entry for entry in registry.FILES)
    monkeypatch.setattr(registry, "FILES", patched)
    return next(iter(random_metric_weight_files.values())).parent
