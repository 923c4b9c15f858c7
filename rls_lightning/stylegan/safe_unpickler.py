"""A pickle reader for NVIDIA training snapshots that never runs code stored in the file.

NVIDIA's own loader (``legacy.load_network_pkl``) imports ``torch_utils`` and *executes* the network source code
embedded in every persistent object. Here the persistent-object constructor is replaced by a function that returns
its metadata untouched, and every other global must be on a short allow-list of tensor and numpy rebuilders
(``shared/reference/stylegan2-checkpoint-formats.md`` section 2). Anything else is refused before it is called.
"""
from __future__ import annotations

import collections
import dataclasses
import io
import pickle
from typing import Any, BinaryIO

import numpy as np
import torch
import torch._utils


@dataclasses.dataclass
class PersistentObject:
    """What ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` received: class name and ``__dict__``.

    ``module_src`` (the network's Python source) is kept for diagnostics only and never executed.
    """

    class_name: str
    state: dict
    module_src: str = ""

    @property
    def parameters(self) -> dict[str, torch.Tensor]:
        return dict(self.state.get("_parameters") or {})

    @property
    def buffers(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in (self.state.get("_buffers") or {}).items() if v is not None}

    @property
    def modules(self) -> dict[str, Any]:
        return dict(self.state.get("_modules") or {})

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})

    def named_tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Flattened parameters and buffers, like ``nn.Module.state_dict()`` keys."""
        tensors = {prefix + k: v for k, v in {**self.parameters, **self.buffers}.items()}
        for name, child in self.modules.items():
            if isinstance(child, PersistentObject):
                tensors.update(child.named_tensors(f"{prefix}{name}."))
        return tensors


def _reconstruct_persistent_obj(meta: dict) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise pickle.UnpicklingError("unexpected persistent object record (not a class instance)")
    return PersistentObject(class_name=str(meta.get("class_name")), state=dict(meta.get("state") or {}),
                            module_src=str(meta.get("module_src") or ""))


def _load_storage_from_bytes(data: bytes) -> Any:
    # The official ``torch.storage._load_from_bytes`` calls ``torch.load`` with full unpickling; the bytes are a
    # nested pickle, so they must go through the same safe path.
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


class _EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict with attribute access)."""


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("numpy.core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): np._core.multiarray.scalar,
    ("numpy", "dtype"): np.dtype,
}


class ForbiddenGlobalError(pickle.UnpicklingError):
    """The pickle references a global outside the allow-list; nothing from the file was executed."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"refusing to load global '{module}.{name}': it is not one of the tensor/array "
                         "rebuilders a StyleGAN2 snapshot needs, and loading it could run code")
        self.module = module
        self.name = name


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only ``ALLOWED_GLOBALS``."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise ForbiddenGlobalError(module, name) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not used by NVIDIA snapshots")


def restricted_load(stream: BinaryIO) -> Any:
    """Unpickle ``stream`` with ``RestrictedUnpickler``."""
    return RestrictedUnpickler(stream).load()
