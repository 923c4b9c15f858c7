"""The flow checkpoint: one file that inversion can use alone.

Contents (``torch.save``, read back with ``weights_only=True``):

* ``flow_config`` and ``state_dict`` of ``LatentFlow`` (the standardisation statistics ``w_mean``/``w_std`` are
  buffers of the flow);
* ``w_dim`` and ``w_init``: the mean of ``w_init_samples`` (100,000 by default) mapped w, the RLS initialisation
  of paper section 4;
* ``generator_fingerprint``: SHA-256 of the generator's mapping weights, checked when the flow is used;
* ``training``: free-form provenance (samples seen, validation NLL, ...).
"""
from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..atomic import torch_save_atomic
from ..fingerprint import first_line, tensor_digest
from .maf import FlowConfig, LatentFlow

FLOW_FORMAT = "rls-lightning/latent-flow"
FLOW_VERSION = 2  # 2: without the MADE masks (rebuilt from the config); version 1 files still load
READABLE_VERSIONS = (1, 2)


class FlowCheckpointError(ValueError):
    """A flow checkpoint could not be used; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")


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


def load_flow(path: str | os.PathLike, generator: nn.Module | None = None, *, force: bool = False,
              device: str | torch.device = "cpu") -> FlowBundle:
    """Read a flow checkpoint; with ``generator``, refuse a flow trained for another mapping network.

    ``force=True`` skips the fingerprint check (e.g. for a generator whose mapping was only re-saved).
    """
    path = Path(path)
    if not path.is_file():
        raise FlowCheckpointError(path, "no such file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise FlowCheckpointError(path, f"not a readable flow checkpoint ({first_line(err)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FLOW_FORMAT:
        raise FlowCheckpointError(path, "not an rls-lightning flow checkpoint (train one with train_flow.py)")
    if payload.get("version") not in READABLE_VERSIONS:
        raise FlowCheckpointError(path, f"flow format version {payload.get('version')} is not supported")
    flow = LatentFlow(FlowConfig(**payload["flow_config"]))
    missing, unexpected = flow.load_state_dict(payload["state_dict"], strict=False)
    if unexpected or any(not _is_mask(k) for k in missing):
        raise FlowCheckpointError(path, "its weights do not fit its flow configuration "
                                        f"(missing {[k for k in missing if not _is_mask(k)][:3]}, "
                                        f"unexpected {unexpected[:3]})")
    flow.eval().requires_grad_(False).to(device)
    bundle = FlowBundle(flow=flow, w_init=payload["w_init"].to(device),
                        generator_fingerprint=payload["generator_fingerprint"],
                        w_init_samples=payload.get("w_init_samples", 0), training=payload.get("training", {}))
    if generator is not None:
        mapping = getattr(generator, "mapping", generator)
        if bundle.w_dim != generator.w_dim:
            raise FlowCheckpointError(path, f"flow is for w_dim={bundle.w_dim}, the generator has {generator.w_dim}")
        if not force and mapping_fingerprint(mapping) != bundle.generator_fingerprint:
            raise FlowCheckpointError(path, "this flow was trained for a different generator (mapping weights "
                                            "differ); train one for it with train_flow.py, or pass --force")
    return bundle
