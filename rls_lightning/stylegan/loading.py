"""``load_generator``: one entry point for every supported checkpoint, and ``save_generator`` for ours.

Formats, told apart by content rather than by file extension:

* ours: ``torch.save({"format": NATIVE_FORMAT, "version": 1, "config": {...}, "state_dict": {...}})``;
* rosinality ``.pt``: ``{"g_ema": state_dict, "latent_avg"?: [512], ...}``;
* NVIDIA stylegan2-ada-pytorch / stylegan3-repo StyleGAN2 snapshots ``.pkl`` (plain pickle, ``G_ema`` used).

Every file is untrusted input. Torch files are read with ``weights_only=True`` and pickles with an allow-list
unpickler, so no checkpoint can run code; then the config must be plausible (``GeneratorConfig``) and the file's
tensors must be exactly the ones that config implies (``state_dict_shapes``, computed without building anything),
finite and really stored, all *before* a ``Generator`` is allocated. Whatever goes wrong is a ``CheckpointError``:
one line, naming the file.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from ..atomic import torch_save_atomic
from .checkpoint_errors import CheckpointError, read_file_head
from .checkpoint_nvidia import load_nvidia_pickle
from .checkpoint_rosinality import load_rosinality
from .networks import Generator, GeneratorConfig
from .safe_unpickler import TORCH_ZIP_MAGIC, check_tensors, failures_as, load_torch_untrusted

NATIVE_FORMAT = "rls-lightning/stylegan2-generator"
NATIVE_VERSION = 1
_PICKLE_PROTO = 0x80
# Legacy (pre-1.6) torch.save files start with a pickled magic number; NVIDIA snapshots start with a dict.
_TORCH_LEGACY_HEAD = bytes.fromhex("80028a0a6cfc9c46f9206aa85019")  # protocol 2, LONG1 magic number
_W_AVG = "mapping.w_avg"


def state_dict_shapes(config: GeneratorConfig) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor of ``Generator(config).state_dict()`` (``mapping.w_avg`` aside), by arithmetic alone.

    The parameters of stylegan2-ada-pytorch's ``training/networks.py`` ``Generator``, minus the fixed FIR buffers:
    ``C(r) = min(channel_base // r, channel_max)``; a layer's ``affine`` maps w to its input channels.
    """
    w_dim = config.w_dim
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(config.mapping_layers):
        shapes[f"mapping.fc{i}.weight"] = (w_dim, config.z_dim if i == 0 else w_dim)
        shapes[f"mapping.fc{i}.bias"] = (w_dim,)
    for res in config.block_resolutions:
        block, out = f"synthesis.b{res}", config.channels(res)
        if res == 4:
            shapes[f"{block}.const"] = (out, 4, 4)
        layers = [("conv1", out)] if res == 4 else [("conv0", config.channels(res // 2)), ("conv1", out)]
        for name, in_channels in layers:
            layer = f"{block}.{name}"
            shapes.update({f"{layer}.weight": (out, in_channels, 3, 3), f"{layer}.bias": (out,),
                           f"{layer}.affine.weight": (in_channels, w_dim), f"{layer}.affine.bias": (in_channels,),
                           f"{layer}.noise_strength": (), f"{layer}.noise_const": (res, res)})
        shapes.update({f"{block}.torgb.weight": (config.img_channels, out, 1, 1),
                       f"{block}.torgb.bias": (config.img_channels,),
                       f"{block}.torgb.affine.weight": (out, w_dim), f"{block}.torgb.affine.bias": (out,)})
    return shapes


def _as_checkpoint_error(path: Path) -> contextlib.AbstractContextManager:
    """Any failure while reading or checking a file is a ``CheckpointError`` (see ``failures_as``)."""
    return failures_as(lambda reason: CheckpointError(path, reason), CheckpointError,
                       "not a usable generator checkpoint")


def read_checkpoint(path: str | os.PathLike) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    """Config and our-layout state dict of the generator in ``path`` (``mapping.w_avg`` included when known)."""
    path = Path(path)
    head = read_file_head(path, 16, CheckpointError, "checkpoint file")
    with _as_checkpoint_error(path):
        if head.startswith(TORCH_ZIP_MAGIC) or head.startswith(_TORCH_LEGACY_HEAD):
            content = load_torch_untrusted(path)
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
        keys = ", ".join(sorted(str(key)[:40] for key in content)[:8])
        raise CheckpointError(path, f"unknown checkpoint layout (top-level keys: {keys}); expected an rls-lightning "
                                    "generator, a rosinality file with 'g_ema', or an NVIDIA .pkl snapshot")


def _read_native(path: Path, content: dict) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    version = content.get("version")
    if type(version) is not int or version != NATIVE_VERSION:
        shown = version if type(version) is int else f"'{type(version).__name__}'"
        raise CheckpointError(path, f"rls-lightning generator format version {shown} is not supported "
                                    f"(this release reads version {NATIVE_VERSION})")
    config, state_dict = content.get("config"), content.get("state_dict")
    if not isinstance(config, dict) or not all(isinstance(key, str) for key in config):
        raise CheckpointError(path, f"'config' is of type {type(config).__name__}, expected a dict of hyper-parameters")
    unknown = sorted(set(config) - set(GeneratorConfig.__dataclass_fields__))
    if unknown:
        raise CheckpointError(path, f"unknown generator config field(s): {', '.join(k[:40] for k in unknown[:4])}")
    if not isinstance(state_dict, dict):
        raise CheckpointError(path, f"'state_dict' is of type {type(state_dict).__name__}, expected a dict of tensors")
    try:
        return GeneratorConfig(**config), dict(state_dict)
    except ValueError as err:
        raise CheckpointError(path, f"implausible generator config: {err}") from None


def _check_against_config(path: Path, config: GeneratorConfig, state_dict: dict, w_avg: object) -> None:
    """Keys, shapes, dtypes, finiteness and stored size of every tensor, before anything is allocated."""
    expected = state_dict_shapes(config)
    non_names = [key for key in state_dict if not isinstance(key, str)]
    if non_names:
        raise CheckpointError(path, f"a tensor name is of type {type(non_names[0]).__name__}, not a string")
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        details = []
        if missing:
            details.append(f"missing {missing[:4]}{'...' if len(missing) > 4 else ''}")
        if unexpected:
            details.append(f"unexpected {[k[:60] for k in unexpected[:4]]}{'...' if len(unexpected) > 4 else ''}")
        raise CheckpointError(path, f"tensors do not match a {config.img_resolution}px StyleGAN2 generator: "
                                    + "; ".join(details))
    tensors = dict(state_dict) if w_avg is None else {**state_dict, _W_AVG: w_avg}
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(path, f"'{key}' is not a tensor but {type(value).__name__}")
    for key, shape in expected.items():
        if tuple(state_dict[key].shape) != shape:
            raise CheckpointError(path, f"'{key}' has shape {tuple(state_dict[key].shape)}, "
                                        f"expected {shape} for config {config.to_dict()}")
    if w_avg is not None and w_avg.numel() != config.w_dim:
        raise CheckpointError(path, f"'{_W_AVG}' has shape {tuple(w_avg.shape)}, expected ({config.w_dim},)")
    check_tensors(tensors)


def build_generator(path: str | os.PathLike, config: GeneratorConfig,
                    state_dict: dict[str, torch.Tensor]) -> Generator:
    """Instantiate and fill a ``Generator``; every key and shape must match exactly, every value be finite.

    The checks run on the file's tensors and on arithmetic from ``config`` only, so an implausible file costs no
    memory beyond its own size; the generator is allocated once it is known to be the one the file holds.
    """
    path = Path(path)
    with _as_checkpoint_error(path):
        state_dict = dict(state_dict)
        w_avg = state_dict.pop(_W_AVG, None)
        _check_against_config(path, config, state_dict, w_avg)
    generator = Generator(config)
    generator.load_state_dict({k: v.float() for k, v in state_dict.items()})
    if w_avg is not None:
        generator.w_avg = w_avg.float()
    return generator


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
    """Load a StyleGAN2 generator from ours, rosinality's ``.pt`` or NVIDIA's ``.pkl`` format.

    Returns the generator in eval mode on ``device``, float32, with ``G.w_avg`` set when the file has one.
    Raises ``CheckpointError`` naming the file and the reason for anything else (corrupt or truncated file,
    StyleGAN3, 'resnet' synthesis, conditional model, untrusted pickle content, implausible sizes, non-finite
    weights).
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
