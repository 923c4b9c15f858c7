"""The flow checkpoint: one file that inversion can use alone.

Contents (``torch.save``, read back with ``weights_only=True``):

* ``flow_config`` and ``state_dict`` of ``LatentFlow`` (the standardisation statistics ``w_mean``/``w_std`` are
  buffers of the flow);
* ``w_dim`` and ``w_init``: the mean of ``w_init_samples`` (100,000 by default) mapped w, the RLS initialisation
  of paper section 4;
* ``generator_fingerprint``: SHA-256 of the generator's mapping weights, checked when the flow is used;
* ``training``: free-form provenance (samples seen, validation NLL, ...).

Reading trusts nothing in the file (``load_flow``): no code runs, and no flow is built before the file is known
to hold exactly the flow its config describes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..atomic import torch_save_atomic
from ..fingerprint import tensor_digest
from ..stylegan.checkpoint_errors import one_line, printable_path, read_file_head
from ..stylegan.safe_unpickler import (TORCH_ZIP_MAGIC, UntrustedFileError, check_tensors, failures_as,
                                       load_torch_untrusted)
from .maf import FlowConfig, LatentFlow

FLOW_FORMAT = "rls-lightning/latent-flow"
FLOW_VERSION = 2  # 2: without the MADE masks (rebuilt from the config); version 1 files still load
READABLE_VERSIONS = (1, 2)


class FlowCheckpointError(ValueError):
    """A flow checkpoint could not be used; ``str(err)`` is ``"<path>: <reason>"``, one line."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = one_line(reason)
        super().__init__(f"{printable_path(path)}: {self.reason}")


def mapping_fingerprint(mapping: nn.Module) -> str:
    """SHA-256 over the mapping network's learned weights (names, shapes and float32 values; not ``w_avg``)."""
    return tensor_digest(mapping.named_parameters())


@dataclass
class FlowBundle:
    """Everything inversion needs from a flow checkpoint."""

    flow: LatentFlow
    w_init: torch.Tensor
    generator_fingerprint: str
    w_init_samples: int = 0
    training: dict = field(default_factory=dict)

    @property
    def w_dim(self) -> int:
        return self.flow.features


def _is_mask(key: str) -> bool:
    return key.rsplit(".", 1)[-1] == "mask"


def save_flow(bundle: FlowBundle, path: str | os.PathLike) -> None:
    """Write the bundle atomically (temporary file, then rename)."""
    payload = {
        "format": FLOW_FORMAT,
        "version": FLOW_VERSION,
        "flow_config": bundle.flow.config.to_dict(),
        # nflows stores each MADE layer's 0/1 mask beside its weight; the masks follow from the config, so leaving
        # them out halves the file (a d = 512 flow of the paper's size: 200 MB -> 100 MB).
        "state_dict": {k: v.detach().cpu() for k, v in bundle.flow.state_dict().items() if not _is_mask(k)},
        "w_dim": bundle.w_dim,
        "w_init": bundle.w_init.detach().cpu().float(),
        "w_init_samples": int(bundle.w_init_samples),
        "generator_fingerprint": bundle.generator_fingerprint,
        "training": dict(bundle.training),
    }
    torch_save_atomic(payload, path)


def _payload(path: Path) -> dict:
    """The file's top-level dict, read without running code (``safe_unpickler.load_torch_untrusted``)."""
    head = read_file_head(path, 4, FlowCheckpointError, "flow checkpoint file")
    if head != TORCH_ZIP_MAGIC:  # save_flow writes torch's zip container, nothing else
        raise FlowCheckpointError(path, "not an rls-lightning flow checkpoint (not a torch file; train one with "
                                        "train_flow.py)")
    try:
        payload = load_torch_untrusted(path)
    except UntrustedFileError as err:
        raise FlowCheckpointError(path, f"not a readable flow checkpoint: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != FLOW_FORMAT:
        raise FlowCheckpointError(path, "not an rls-lightning flow checkpoint (train one with train_flow.py)")
    version = payload.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        shown = version if type(version) is int else f"'{type(version).__name__}'"
        raise FlowCheckpointError(path, f"flow format version {shown} is not supported")
    return payload


def _config(path: Path, payload: dict) -> FlowConfig:
    fields = payload.get("flow_config")
    if not isinstance(fields, dict) or not all(isinstance(key, str) for key in fields):
        raise FlowCheckpointError(path, f"'flow_config' is of type {type(fields).__name__}, expected a dict")
    unknown = sorted(set(fields) - set(FlowConfig.__dataclass_fields__))
    if unknown:
        raise FlowCheckpointError(path, f"unknown flow config field(s): {', '.join(k[:40] for k in unknown[:4])}")
    try:
        config = FlowConfig(**fields)
    except ValueError as err:
        raise FlowCheckpointError(path, f"implausible flow configuration: {err}") from None
    w_dim = payload.get("w_dim", config.features)
    if type(w_dim) is not int or w_dim != config.features:
        raise FlowCheckpointError(path, f"'w_dim' {w_dim if type(w_dim) is int else type(w_dim).__name__} "
                                        f"disagrees with its flow configuration (features={config.features})")
    return config


def state_dict_shapes(config: FlowConfig) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor of ``LatentFlow(config).state_dict()``, by arithmetic alone (nothing is built).

    nflows' layout, per flow block: a ``MaskedAffineAutoregressiveTransform`` (a MADE: an initial masked layer
    d -> h, ``made_residual_blocks`` residual blocks of two masked h -> h layers, a final masked layer h -> 2d, the
    scale and shift of every feature), then ``BatchNorm(d)`` when enabled, then ``ReversePermutation(d)``; every
    masked layer stores ``weight``, ``bias``, ``mask`` and its units' ``degrees``.
    """
    d, h = config.features, config.hidden_features
    shapes: dict[str, tuple[int, ...]] = {"w_mean": (d,), "w_std": (d,)}

    def masked_linear(prefix: str, out_features: int, in_features: int) -> None:
        shapes.update({f"{prefix}.weight": (out_features, in_features), f"{prefix}.bias": (out_features,),
                       f"{prefix}.mask": (out_features, in_features), f"{prefix}.degrees": (out_features,)})

    index = 0
    for _ in range(config.num_blocks):
        made = f"transform._transforms.{index}.autoregressive_net"
        masked_linear(f"{made}.initial_layer", h, d)
        for block in range(config.made_residual_blocks):
            for layer in (0, 1):
                masked_linear(f"{made}.blocks.{block}.linear_layers.{layer}", h, h)
        masked_linear(f"{made}.final_layer", 2 * d, h)
        index += 1
        if config.batch_norm:
            norm = f"transform._transforms.{index}"
            shapes.update({f"{norm}.{name}": (d,) for name in ("unconstrained_weight", "bias", "running_mean",
                                                              "running_var")})
            index += 1
        shapes[f"transform._transforms.{index}._permutation"] = (d,)
        index += 1
    return shapes


def _checked_tensors(path: Path, payload: dict, config: FlowConfig) -> dict[str, torch.Tensor]:
    """The file's tensors, checked against the config's names and shapes before a flow is built for them.

    Tensors the config determines (MADE masks and degrees, the order reversals) are rebuilt, not read; the file's
    copies, when present, are returned too and must agree with the rebuilt ones (``_check_rebuilt``).
    """
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(key, str) for key in state):
        raise FlowCheckpointError(path, f"'state_dict' is of type {type(state).__name__}, expected a dict of tensors")
    expected = state_dict_shapes(config)
    missing = [k for k in expected if k not in state and not _is_rebuilt(k)]
    unexpected = [k[:80] for k in state if k not in expected]
    if missing or unexpected:
        raise FlowCheckpointError(path, "its weights do not fit its flow configuration "
                                        f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise FlowCheckpointError(path, f"'{key}' is not a tensor but {type(value).__name__}")
        if tuple(value.shape) != expected[key]:
            raise FlowCheckpointError(path, f"'{key}' has shape {tuple(value.shape)}, its flow configuration "
                                            f"implies {expected[key]}")
    for key, value in state.items():  # masks are 0/1 floats, degrees and permutations int64
        kind_ok = value.dtype.is_floating_point if key.endswith(".mask") else value.dtype == torch.int64
        if _is_rebuilt(key) and not (kind_ok and value.layout == torch.strided and value.device.type == "cpu"):
            raise FlowCheckpointError(path, f"'{key}' is not a dense tensor of the expected dtype ({value.dtype})")
    learned = {k: v for k, v in state.items() if not _is_rebuilt(k)}
    w_init = payload.get("w_init")
    if not isinstance(w_init, torch.Tensor) or tuple(w_init.shape) != (config.features,):
        shown = tuple(w_init.shape) if isinstance(w_init, torch.Tensor) else type(w_init).__name__
        raise FlowCheckpointError(path, f"'w_init' is {shown}, expected a tensor of shape ({config.features},)")
    try:
        check_tensors({**learned, "w_init": w_init})
    except UntrustedFileError as err:
        raise FlowCheckpointError(path, str(err)) from None
    if not bool((state["w_std"] > 0).all()):  # the standardisation divides by it and takes its log
        raise FlowCheckpointError(path, "'w_std' has values <= 0")
    for key in (k for k in learned if k.endswith("running_var")):
        if not bool((state[key] >= 0).all()):
            raise FlowCheckpointError(path, f"'{key}' (a variance) has negative values")
    return state


def _is_rebuilt(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in ("mask", "degrees", "_permutation")


def _check_rebuilt(path: Path, flow: LatentFlow, state: dict[str, torch.Tensor]) -> None:
    built = flow.state_dict()
    for key, value in state.items():
        if _is_rebuilt(key) and not torch.equal(value.to(built[key].dtype), built[key]):
            raise FlowCheckpointError(path, f"'{key}' differs from the one its flow configuration implies "
                                            "(a damaged or altered file)")


def _metadata(path: Path, payload: dict) -> tuple[str, int, dict]:
    fingerprint = payload.get("generator_fingerprint")
    samples = payload.get("w_init_samples", 0)
    training = payload.get("training", {})
    if not isinstance(fingerprint, str):
        raise FlowCheckpointError(path, f"'generator_fingerprint' is of type {type(fingerprint).__name__}, "
                                        "not a string")
    if type(samples) is not int or samples < 0:
        raise FlowCheckpointError(path, "'w_init_samples' is not a count")
    if not isinstance(training, dict):
        raise FlowCheckpointError(path, f"'training' is of type {type(training).__name__}, expected a dict")
    return fingerprint, samples, training


def load_flow(path: str | os.PathLike, generator: nn.Module | None = None, *, force: bool = False,
              device: str | torch.device = "cpu") -> FlowBundle:
    """Read a flow checkpoint; with ``generator``, refuse a flow trained for another mapping network.

    ``force=True`` skips the fingerprint check (e.g. for a generator whose mapping was only re-saved). Every
    failure is a one-line ``FlowCheckpointError``: the file is untrusted, so its config must be plausible and its
    tensors exactly the ones that config implies, finite and really stored, before a flow is allocated.
    """
    path = Path(path)
    with failures_as(lambda reason: FlowCheckpointError(path, reason), FlowCheckpointError,
                     "not a usable flow checkpoint"):
        payload = _payload(path)
        config = _config(path, payload)
        if generator is not None and config.features != generator.w_dim:
            raise FlowCheckpointError(path, f"flow is for w_dim={config.features}, the generator has "
                                            f"{generator.w_dim}")
        state = _checked_tensors(path, payload, config)
        fingerprint, samples, training = _metadata(path, payload)
    flow = LatentFlow(config)
    _check_rebuilt(path, flow, state)
    flow.load_state_dict({k: v for k, v in state.items() if not _is_rebuilt(k)}, strict=False)
    flow.eval().requires_grad_(False).to(device)
    bundle = FlowBundle(flow=flow, w_init=payload["w_init"].float().to(device), generator_fingerprint=fingerprint,
                        w_init_samples=samples, training=training)
    if generator is not None:
        mapping = getattr(generator, "mapping", generator)
        if not force and mapping_fingerprint(mapping) != bundle.generator_fingerprint:
            raise FlowCheckpointError(path, "this flow was trained for a different generator (mapping weights "
                                            "differ); train one for it with train_flow.py, or pass --force")
    return bundle
