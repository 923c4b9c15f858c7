"""NVIDIA stylegan2-ada-pytorch / stylegan3-repo StyleGAN2 snapshots (``.pkl``), read without NVIDIA's code.

Format: NVlabs/stylegan2-ada-pytorch ``training/networks.py`` (``Generator``, ``MappingNetwork``, ``SynthesisNetwork``)
and the ``persistence`` pickles written by its ``train.py``. Hyper-parameters come from
``G_ema``'s ``init_kwargs``; tensors are renamed to ours by dropping the fixed FIR buffers. Every value read from
the pickle is checked for its type before use: the file is untrusted input (see ``safe_unpickler``).
"""
from __future__ import annotations

import numbers
import os
from typing import Any

import torch

from .checkpoint_errors import CheckpointError
from .networks import GeneratorConfig
from .safe_unpickler import PersistentObject, UntrustedFileError, restricted_load_file

TF_PICKLE_HINT = ("this looks like an original TensorFlow StyleGAN2 pickle; convert it first with "
                  "stylegan2-ada-pytorch's legacy.py or rosinality's convert_weight.py")
# NVIDIA's defaults for what a snapshot may leave out (the keyword defaults of training/networks.py).
_DEFAULTS = {"img_channels": 3, "num_layers": 8, "lr_multiplier": 0.01, "channel_base": 32768, "channel_max": 512}


def read_snapshot(path: str | os.PathLike) -> dict:
    """Unpickle a snapshot dict safely (see ``safe_unpickler``)."""
    try:
        snapshot = restricted_load_file(path)
    except UntrustedFileError as err:
        reason = str(err)
        if (err.refused_module or "").startswith("dnnlib.tflib"):
            reason = f"{reason}; {TF_PICKLE_HINT}"
        raise CheckpointError(path, reason) from None
    if not isinstance(snapshot, dict):
        raise CheckpointError(path, f"expected a snapshot dict with 'G_ema', found {type(snapshot).__name__}")
    return snapshot


def _shown(value: Any) -> str:
    """A value from the file in a message: short, one line (its type when it is not a plain scalar)."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return repr(value)[:40]
    return f"a {type(value).__name__}"


def _section(path: str | os.PathLike, kwargs: dict, name: str) -> dict:
    value = kwargs.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CheckpointError(path, f"G_ema.init_kwargs: '{name}' is {_shown(value)}, expected a dict")
    return value


def _kwarg(section: dict, name: str, default: Any) -> Any:
    value = section.get(name, default)
    return default if value is None and default is not None else value


def _is(value: Any, expected: str | list) -> bool:
    """``value == expected`` for plain values only (a numpy scalar or a tensor from the file compares oddly)."""
    if isinstance(expected, str):
        return isinstance(value, str) and value == expected
    return (type(value) in (list, tuple) and len(value) == len(expected)
            and all(type(v) in (int, float) and v == e for v, e in zip(value, expected)))


def _refuse_unsupported(path: str | os.PathLike, kwargs: dict, mapping: dict, synthesis: dict) -> None:
    c_dim = kwargs.get("c_dim")
    c_dim = 0 if c_dim is None else c_dim
    if isinstance(c_dim, bool) or not isinstance(c_dim, numbers.Integral) or c_dim < 0:
        raise CheckpointError(path, f"G_ema.init_kwargs: c_dim is {_shown(c_dim)}, expected an integer >= 0")
    if c_dim > 0:
        raise CheckpointError(path, f"conditional generator (c_dim={int(c_dim)}) is not supported")
    architecture = synthesis.get("architecture", "skip")
    if not _is(architecture, "skip"):
        raise CheckpointError(path, f"synthesis architecture {_shown(architecture)} is not supported (only 'skip')")
    for section in (mapping, synthesis):
        activation = section.get("activation", "lrelu")
        if not _is(activation, "lrelu"):
            raise CheckpointError(path, f"activation={_shown(activation)} is not supported (only 'lrelu')")
    if not _is(synthesis.get("resample_filter", [1, 3, 3, 1]), [1, 3, 3, 1]):
        raise CheckpointError(path, "only the [1,3,3,1] resample filter is supported")


def config_from_init_kwargs(path: str | os.PathLike, g_ema: PersistentObject) -> GeneratorConfig:
    """Translate ``G_ema.init_kwargs`` into our config, refusing what we do not implement or what is implausible
    (``GeneratorConfig`` checks every value, before any memory is spent on it)."""
    kwargs = g_ema.init_kwargs
    mapping, synthesis = _section(path, kwargs, "mapping_kwargs"), _section(path, kwargs, "synthesis_kwargs")
    _refuse_unsupported(path, kwargs, mapping, synthesis)
    network = g_ema.modules.get("synthesis")
    block_names = set(network.modules) if isinstance(network, PersistentObject) else set()
    if not block_names or not all(name.startswith("b") and name[1:].isdigit() for name in block_names):
        raise CheckpointError(path, "the synthesis network is not StyleGAN2's (StyleGAN3 layers "
                                    f"{sorted(block_names)[:3]}...); only StyleGAN2 is supported")
    missing = [name for name in ("img_resolution", "z_dim", "w_dim") if kwargs.get(name) is None]
    if missing:
        raise CheckpointError(path, f"G_ema.init_kwargs lacks {', '.join(missing)}")
    try:
        return GeneratorConfig(
            img_resolution=kwargs["img_resolution"],
            z_dim=kwargs["z_dim"],
            w_dim=kwargs["w_dim"],
            img_channels=_kwarg(kwargs, "img_channels", _DEFAULTS["img_channels"]),
            mapping_layers=_kwarg(mapping, "num_layers", _DEFAULTS["num_layers"]),
            mapping_lr_multiplier=_kwarg(mapping, "lr_multiplier", _DEFAULTS["lr_multiplier"]),
            channel_base=_kwarg(synthesis, "channel_base", _DEFAULTS["channel_base"]),
            channel_max=_kwarg(synthesis, "channel_max", _DEFAULTS["channel_max"]),
            conv_clamp=synthesis.get("conv_clamp"),
        )
    except ValueError as err:
        raise CheckpointError(path, f"implausible G_ema.init_kwargs: {err}") from None


def state_dict_from_snapshot(g_ema: PersistentObject) -> dict[str, torch.Tensor]:
    """Our state dict from NVIDIA's tensors: identical names, minus the fixed ``resample_filter`` buffers."""
    tensors = g_ema.named_tensors()
    return {k: v for k, v in tensors.items() if not k.endswith("resample_filter")}


def load_nvidia_pickle(path: str | os.PathLike) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    snapshot = read_snapshot(path)
    g_ema = snapshot.get("G_ema")
    if not isinstance(g_ema, PersistentObject):
        found = ", ".join(sorted(k[:40] if isinstance(k, str) else _shown(k) for k in snapshot)) or "nothing"
        raise CheckpointError(path, f"no 'G_ema' network in the snapshot (found: {found}); the non-averaged "
                                    "'G' is deliberately not used")
    if g_ema.class_name != "Generator":
        raise CheckpointError(path, f"'G_ema' is {_shown(g_ema.class_name)}, not a Generator")
    try:
        return config_from_init_kwargs(path, g_ema), state_dict_from_snapshot(g_ema)
    except UntrustedFileError as err:  # a malformed module tree
        raise CheckpointError(path, str(err)) from None
