"""``load_generator``: one entry point for every supported checkpoint, and ``save_generator`` for ours.

Formats, told apart by content rather than by file extension:

* ours: ``torch.save({"format": NATIVE_FORMAT, "version": 1, "config": {...}, "state_dict": {...}})``;
* rosinality ``.pt``: ``{"g_ema": state_dict, "latent_avg"?: [512], ...}``;
* NVIDIA stylegan2-ada-pytorch / stylegan3-repo StyleGAN2 snapshots ``.pkl`` (plain pickle, ``G_ema`` used).

Torch files are read with ``weights_only=True`` and pickles with an allow-list unpickler, so no checkpoint can
run code.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch

from ..atomic import torch_save_atomic
from ..fingerprint import first_line
from .checkpoint_errors import CheckpointError
from .checkpoint_nvidia import load_nvidia_pickle
from .checkpoint_rosinality import load_rosinality
from .networks import Generator, GeneratorConfig

NATIVE_FORMAT = "rls-lightning/stylegan2-generator"
NATIVE_VERSION = 1
_PICKLE_PROTO = 0x80
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default container
# Legacy (pre-1.6) torch.save files start with a pickled magic number; NVIDIA snapshots start with a dict.
_TORCH_LEGACY_HEAD = bytes.fromhex("80028a0a6cfc9c46f9206aa85019")  # protocol 2, LONG1 magic number


def _looks_like_legacy_torch(head: bytes) -> bool:
    return head.startswith(_TORCH_LEGACY_HEAD)


def _read_torch_file(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(path, f"refused by the safe torch loader ({first_line(err)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(path, f"corrupt or truncated torch file ({type(err).__name__}: {err})") from None


def read_checkpoint(path: str | os.PathLike) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    """Config and our-layout state dict of the generator in ``path`` (``mapping.w_avg`` included when known)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file" if not path.exists() else "not a regular file")
    with open(path, "rb") as stream:
        head = stream.read(16)
    if not head:
        raise CheckpointError(path, "empty file")

    if head.startswith(_ZIP_MAGIC) or _looks_like_legacy_torch(head):
        content = _read_torch_file(path)
    elif head[0] == _PICKLE_PROTO:
        return load_nvidia_pickle(path)
    else:
        raise CheckpointError(path, "not a torch checkpoint nor a pickle (unrecognised file header)")

    if not isinstance(content, dict):
        raise CheckpointError(path, f"expected a dict of tensors, found {type(content).__name__}")
    if content.get("format") == NATIVE_FORMAT:
        return _read_native(path, content)
    if "g_ema" in content:
        return load_rosinality(path, content)
    keys = ", ".join(sorted(map(str, content))[:8])
    raise CheckpointError(path, f"unknown checkpoint layout (top-level keys: {keys}); expected an rls-lightning "
                                "generator, a rosinality file with 'g_ema', or an NVIDIA .pkl snapshot")


def _read_native(path: Path, content: dict) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    version = content.get("version")
    if version != NATIVE_VERSION:
        raise CheckpointError(path, f"rls-lightning generator format version {version} is not supported "
                                    f"(this release reads version {NATIVE_VERSION})")
    try:
        config = GeneratorConfig(**content["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(path, f"invalid generator config ({err})") from None
    return config, dict(content["state_dict"])


def build_generator(path: str | os.PathLike, config: GeneratorConfig,
                    state_dict: dict[str, torch.Tensor]) -> Generator:
    """Instantiate and fill a ``Generator``; every shape and key must match exactly."""
    state_dict = dict(state_dict)
    w_avg = state_dict.pop("mapping.w_avg", None)
    generator = Generator(config)
    expected = generator.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        details = []
        if missing:
            details.append(f"missing {missing[:4]}{'...' if len(missing) > 4 else ''}")
        if unexpected:
            details.append(f"unexpected {unexpected[:4]}{'...' if len(unexpected) > 4 else ''}")
        raise CheckpointError(path, f"tensors do not match a {config.img_resolution}px StyleGAN2 generator: "
                                    + "; ".join(details))
    for key, tensor in state_dict.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise CheckpointError(path, f"'{key}' has shape {tuple(tensor.shape)}, "
                                        f"expected {tuple(expected[key].shape)} for config {config.to_dict()}")
    generator.load_state_dict({k: v.float() for k, v in state_dict.items()})
    if w_avg is not None:
        generator.w_avg = w_avg.float()
    return generator


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
    """Load a StyleGAN2 generator from ours, rosinality's ``.pt`` or NVIDIA's ``.pkl`` format.

    Returns the generator in eval mode on ``device``, float32, with ``G.w_avg`` set when the file has one.
    Raises ``CheckpointError`` naming the file and the reason for anything else (corrupt file, StyleGAN3,
    'resnet' synthesis, conditional model, untrusted pickle content).
    """
    config, state_dict = read_checkpoint(path)
    return build_generator(path, config, state_dict).eval().to(device)


def save_generator(generator: Generator, path: str | os.PathLike, extra: dict | None = None) -> None:
    """Write ``generator`` in our format, atomically (temporary file, then rename)."""
    payload = {
        "format": NATIVE_FORMAT,
        "version": NATIVE_VERSION,
        "config": generator.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
        "extra": dict(extra or {}),
    }
    torch_save_atomic(payload, path)
