"""NVIDIA stylegan2-ada-pytorch / stylegan3-repo StyleGAN2 snapshots (``.pkl``), read without NVIDIA's code.

Reference: ``shared/reference/stylegan2-checkpoint-formats.md`` section 2. Hyper-parameters come from
``G_ema``'s ``init_kwargs``; tensors are renamed to ours by dropping the fixed FIR buffers.
"""
from __future__ import annotations

import os
import pickle
from typing import Any

import torch

from .checkpoint_errors import CheckpointError
from .networks import GeneratorConfig
from .safe_unpickler import ForbiddenGlobalError, PersistentObject, restricted_load

TF_PICKLE_HINT = ("this looks like an original TensorFlow StyleGAN2 pickle; convert it first with "
                  "stylegan2-ada-pytorch's legacy.py or rosinality's convert_weight.py")


def read_snapshot(path: str | os.PathLike) -> dict:
    """Unpickle a snapshot dict safely (see ``safe_unpickler``)."""
    try:
        with open(path, "rb") as stream:
            snapshot = restricted_load(stream)
    except ForbiddenGlobalError as err:
        reason = str(err)
        if err.module.startswith("dnnlib.tflib"):
            reason = f"{reason}; {TF_PICKLE_HINT}"
        raise CheckpointError(path, reason) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            RuntimeError) as err:
        raise CheckpointError(path, f"not a readable pickle ({type(err).__name__}: {err})") from None
    if not isinstance(snapshot, dict):
        raise CheckpointError(path, f"expected a snapshot dict with 'G_ema', found {type(snapshot).__name__}")
    return snapshot


def _kwarg(kwargs: dict, name: str, default: Any) -> Any:
    value = kwargs.get(name, default)
    return default if value is None and default is not None else value


def config_from_init_kwargs(path: str | os.PathLike, g_ema: PersistentObject) -> GeneratorConfig:
    """Translate ``G_ema.init_kwargs`` into our config, refusing what we do not implement."""
    kwargs = g_ema.init_kwargs
    mapping_kwargs = dict(kwargs.get("mapping_kwargs") or {})
    synthesis_kwargs = dict(kwargs.get("synthesis_kwargs") or {})
    if int(kwargs.get("c_dim", 0) or 0) > 0:
        raise CheckpointError(path, f"conditional generator (c_dim={kwargs['c_dim']}) is not supported")
    architecture = synthesis_kwargs.get("architecture", "skip")
    if architecture != "skip":
        raise CheckpointError(path, f"synthesis architecture '{architecture}' is not supported (only 'skip')")
    synthesis = g_ema.modules.get("synthesis")
    block_names = set(synthesis.modules) if isinstance(synthesis, PersistentObject) else set()
    if not block_names or not all(name.startswith("b") and name[1:].isdigit() for name in block_names):
        raise CheckpointError(path, "the synthesis network is not StyleGAN2's (StyleGAN3 layers "
                                    f"{sorted(block_names)[:3]}...); only StyleGAN2 is supported")
    for key in ("activation",):
        for section in (mapping_kwargs, synthesis_kwargs):
            if section.get(key, "lrelu") != "lrelu":
                raise CheckpointError(path, f"{key}='{section[key]}' is not supported (only 'lrelu')")
    if list(synthesis_kwargs.get("resample_filter", [1, 3, 3, 1])) != [1, 3, 3, 1]:
        raise CheckpointError(path, "only the [1,3,3,1] resample filter is supported")
    try:
        return GeneratorConfig(
            img_resolution=int(kwargs["img_resolution"]),
            z_dim=int(kwargs["z_dim"]),
            w_dim=int(kwargs["w_dim"]),
            img_channels=int(kwargs.get("img_channels", 3)),
            mapping_layers=int(_kwarg(mapping_kwargs, "num_layers", 8)),
            mapping_lr_multiplier=float(_kwarg(mapping_kwargs, "lr_multiplier", 0.01)),
            channel_base=int(_kwarg(synthesis_kwargs, "channel_base", 32768)),
            channel_max=int(_kwarg(synthesis_kwargs, "channel_max", 512)),
            conv_clamp=None if synthesis_kwargs.get("conv_clamp") is None else float(synthesis_kwargs["conv_clamp"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(path, f"G_ema.init_kwargs is incomplete or invalid ({err})") from None


def state_dict_from_snapshot(g_ema: PersistentObject) -> dict[str, torch.Tensor]:
    """Our state dict from NVIDIA's tensors: identical names, minus the fixed ``resample_filter`` buffers."""
    tensors = g_ema.named_tensors()
    return {k: v for k, v in tensors.items() if not k.endswith("resample_filter")}


def load_nvidia_pickle(path: str | os.PathLike) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    snapshot = read_snapshot(path)
    g_ema = snapshot.get("G_ema")
    if not isinstance(g_ema, PersistentObject):
        found = ", ".join(sorted(map(str, snapshot))) or "nothing"
        raise CheckpointError(path, f"no 'G_ema' network in the snapshot (found: {found}); the non-averaged "
                                    "'G' is deliberately not used")
    if g_ema.class_name != "Generator":
        raise CheckpointError(path, f"'G_ema' is a {g_ema.class_name}, not a Generator")
    return config_from_init_kwargs(path, g_ema), state_dict_from_snapshot(g_ema)
