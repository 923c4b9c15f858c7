"""rosinality stylegan2-pytorch ``.pt`` checkpoints (``{'g_ema': state_dict, 'latent_avg'?: [512]}``).

Format: rosinality/stylegan2-pytorch ``model.py`` (``Generator``) as saved by its ``train.py``. Hyper-parameters are
not stored,
so they are inferred from tensor shapes; keys are renamed to ours (NVIDIA's names) with reshapes only. Every
tensor is checked (``safe_unpickler.check_tensors``) before a shape is read from it.
"""
from __future__ import annotations

import math
import os
import re

import torch

from .checkpoint_errors import CheckpointError
from .networks import MAX_RESOLUTION, GeneratorConfig
from .safe_unpickler import UntrustedFileError, check_tensors


def _count_indexed(state: dict, pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for key in state if (m := regex.fullmatch(key))})


def _shape(path: str | os.PathLike, state: dict, key: str, ndim: int) -> tuple[int, ...]:
    if key not in state:
        raise CheckpointError(path, f"'g_ema' lacks '{key}'; not a rosinality StyleGAN2 generator")
    shape = tuple(state[key].shape)
    if len(shape) != ndim:
        raise CheckpointError(path, f"'{key}' has shape {shape}, expected {ndim} dimensions")
    return shape


def _channels_per_resolution(path: str | os.PathLike, state: dict[str, torch.Tensor],
                             resolution: int) -> dict[int, int]:
    """``C(r)``: the output channels of ``conv1`` (4 px) and of every up-conv ``convs.{2k}`` (``[1, O, I, 3, 3]``)."""
    channels = {4: _shape(path, state, "conv1.conv.weight", 5)[1]}
    for k, res in enumerate(2 ** i for i in range(3, int(math.log2(resolution)) + 1)):
        channels[res] = _shape(path, state, f"convs.{2 * k}.conv.weight", 5)[1]
    return channels


def channel_layout(path: str | os.PathLike, channels: dict[int, int]) -> tuple[int, int]:
    """``(channel_base, channel_max)`` with ``C(r) = min(base // r, max)`` reproducing the stored channels.

    rosinality's table (512 up to 32 px, then ``256 * channel_multiplier`` at 64 px, halving) is the case
    ``max = 512``, ``base = 16384 * multiplier``; forks with other tables load as long as they fit the formula.
    """
    channel_max = channels[4]
    below_max = [res for res in sorted(channels) if channels[res] < channel_max]
    channel_base = channels[below_max[0]] * below_max[0] if below_max else channel_max * max(channels)
    expected = {res: min(channel_base // res, channel_max) for res in channels}
    if expected != channels:
        raise CheckpointError(path, f"unsupported channel layout {channels} (expected min(base / r, max))")
    return channel_base, channel_max


def _check_state(path: str | os.PathLike, state: dict) -> None:
    """Names are strings and values plain finite tensors, before any shape is read (``check_tensors``)."""
    bad_key = next((key for key in state if not isinstance(key, str)), None)
    if bad_key is not None:
        raise CheckpointError(path, f"'g_ema' has a key that is of type {type(bad_key).__name__}, not a tensor name")
    try:
        check_tensors(state)
    except UntrustedFileError as err:
        raise CheckpointError(path, str(err)) from None


def infer_config(path: str | os.PathLike, state: dict[str, torch.Tensor]) -> GeneratorConfig:
    """Resolution from the number of ToRGBs, mapping depth from ``style.{i}``, channels from conv shapes.

    An implausible resolution is refused before the per-resolution shapes are read, every other value by
    ``GeneratorConfig``."""
    n_mlp = _count_indexed(state, r"style\.(\d+)\.weight")
    num_torgbs = _count_indexed(state, r"to_rgbs\.(\d+)\.conv\.weight")
    style_dim, z_dim = _shape(path, state, "style.1.weight", 2)
    img_channels = _shape(path, state, "to_rgb1.conv.weight", 5)[1]
    if not 2 <= num_torgbs + 2 <= int(math.log2(MAX_RESOLUTION)):
        raise CheckpointError(path, f"{num_torgbs} 'to_rgbs' layers imply a resolution of 2^{num_torgbs + 2} px; "
                                    f"supported: 4 to {MAX_RESOLUTION} px")
    resolution = 2 ** (num_torgbs + 2)
    channel_base, channel_max = channel_layout(path, _channels_per_resolution(path, state, resolution))
    try:
        return GeneratorConfig(img_resolution=resolution, z_dim=z_dim, w_dim=style_dim, img_channels=img_channels,
                               mapping_layers=n_mlp, channel_base=channel_base, channel_max=channel_max)
    except ValueError as err:
        raise CheckpointError(path, f"implausible generator (inferred from the tensor shapes): {err}") from None


def _conv_keys(ours: str, theirs: str) -> list[tuple[str, str, str]]:
    return [
        (f"{ours}.weight", f"{theirs}.conv.weight", "squeeze0"),
        (f"{ours}.affine.weight", f"{theirs}.conv.modulation.weight", ""),
        (f"{ours}.affine.bias", f"{theirs}.conv.modulation.bias", ""),
        (f"{ours}.bias", f"{theirs}.activate.bias", ""),
        (f"{ours}.noise_strength", f"{theirs}.noise.weight", "scalar"),
    ]


def _torgb_keys(ours: str, theirs: str) -> list[tuple[str, str, str]]:
    return [
        (f"{ours}.weight", f"{theirs}.conv.weight", "squeeze0"),
        (f"{ours}.affine.weight", f"{theirs}.conv.modulation.weight", ""),
        (f"{ours}.affine.bias", f"{theirs}.conv.modulation.bias", ""),
        (f"{ours}.bias", f"{theirs}.bias", "flatten"),
    ]


def key_table(config: GeneratorConfig) -> list[tuple[str, str, str]]:
    """``(our key, rosinality key, reshape)`` for every tensor (the parameter names of rosinality's ``model.py``)."""
    table = []
    for i in range(config.mapping_layers):
        table += [(f"mapping.fc{i}.weight", f"style.{i + 1}.weight", ""),
                  (f"mapping.fc{i}.bias", f"style.{i + 1}.bias", "")]
    table.append(("synthesis.b4.const", "input.input", "squeeze0"))
    table += _conv_keys("synthesis.b4.conv1", "conv1")
    table.append(("synthesis.b4.conv1.noise_const", "noises.noise_0", "plane"))
    table += _torgb_keys("synthesis.b4.torgb", "to_rgb1")
    for k, res in enumerate(config.block_resolutions[1:]):
        block = f"synthesis.b{res}"
        table += _conv_keys(f"{block}.conv0", f"convs.{2 * k}")
        table += _conv_keys(f"{block}.conv1", f"convs.{2 * k + 1}")
        table += [(f"{block}.conv0.noise_const", f"noises.noise_{2 * k + 1}", "plane"),
                  (f"{block}.conv1.noise_const", f"noises.noise_{2 * k + 2}", "plane")]
        table += _torgb_keys(f"{block}.torgb", f"to_rgbs.{k}")
    return table


def _reshaped(path: str | os.PathLike, key: str, tensor: torch.Tensor, reshape: str) -> torch.Tensor:
    """rosinality's tensor in our shape; a shape the reshape cannot apply to is refused, naming the file's key (the
    exact shapes are compared with the config's afterwards, in ``loading.build_generator``)."""
    shape = tuple(tensor.shape)
    fits = {"": True, "flatten": True, "squeeze0": len(shape) >= 1 and shape[:1] == (1,),
            "scalar": tensor.numel() == 1, "plane": len(shape) == 4 and shape[:2] == (1, 1)}[reshape]
    if not fits:
        expected = {"squeeze0": "a leading dimension of 1", "scalar": "one element",
                    "plane": "shape (1, 1, R, R)"}[reshape]
        raise CheckpointError(path, f"'{key}' has shape {shape}, expected {expected}")
    if reshape == "squeeze0":
        return tensor.squeeze(0)
    if reshape == "scalar":
        return tensor.reshape([])
    if reshape == "flatten":
        return tensor.reshape(-1)
    if reshape == "plane":
        return tensor.reshape(shape[-2:])
    return tensor


def state_dict_from_rosinality(path: str | os.PathLike, state: dict[str, torch.Tensor],
                               config: GeneratorConfig) -> dict[str, torch.Tensor]:
    converted = {}
    for ours, theirs, reshape in key_table(config):
        if theirs not in state:
            raise CheckpointError(path, f"'g_ema' lacks '{theirs}'")
        converted[ours] = _reshaped(path, theirs, state[theirs], reshape)
    return converted


def load_rosinality(path: str | os.PathLike, checkpoint: dict) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    state = checkpoint["g_ema"]
    if not isinstance(state, dict):
        raise CheckpointError(path, f"'g_ema' is of type {type(state).__name__}, expected a state dict")
    _check_state(path, state)
    config = infer_config(path, state)
    converted = state_dict_from_rosinality(path, state, config)
    latent_avg = checkpoint.get("latent_avg")
    if latent_avg is not None:
        # train.py checkpoints compute it at run time ([1, 512]); convert_weight.py stores [512]
        if not isinstance(latent_avg, torch.Tensor):
            raise CheckpointError(path, f"'latent_avg' is not a tensor but {type(latent_avg).__name__}")
        converted["mapping.w_avg"] = latent_avg.reshape(-1)
    return config, converted
