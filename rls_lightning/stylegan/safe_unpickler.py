"""Reading untrusted checkpoint files: nothing in them is executed, and nothing in them is believed unchecked.

* NVIDIA training snapshots (``restricted_load``). NVIDIA's own loader (``legacy.load_network_pkl``) imports
  ``torch_utils`` and *executes* the network source code embedded in every persistent object. Here the
  persistent-object constructor is replaced by a function that returns its metadata untouched, and every other
  global must be on a short allow-list of tensor and numpy rebuilders (those that stylegan2-ada-pytorch's
  ``torch_utils/persistence.py`` pickles contain). Anything else is refused before it is called. The network tree
  that comes out is walked without recursion and must be a tree (a pickle can make a module its own child).
* ``torch.save`` files (``load_torch_untrusted``): ``torch.load(weights_only=True)``, with torch's refusals and
  its many kinds of failure on a damaged file turned into one line (``UntrustedFileError``) that never suggests
  turning the safety off.
* Tensors (``check_tensors``): dense floating-point CPU tensors with finite values whose values are really stored
  in the file (no broadcast views standing in for a model the file does not hold).
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import os
import pickle
import re
import warnings
import zipfile
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch
import torch._utils

from .checkpoint_errors import one_line

NEVER_EXECUTES = "rls-lightning never executes code from checkpoints"
# An NVIDIA G_ema is 5 modules deep (G_ema.synthesis.b1024.conv0.affine) and has about 70 of them at 1024 px.
MAX_TREE_DEPTH = 16
MAX_TREE_MODULES = 4096
TOO_LARGE = "it declares more data than fits in memory (a corrupt file?)"
TRUNCATED_PICKLE = "truncated pickle data (the file was cut short?)"
TORCH_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default container


class UntrustedFileError(ValueError):
    """A file's content cannot be used; ``str(err)`` is the one-line reason (the readers add the path).

    ``refused_module``: the module of a refused pickle global, for readers that know what such a file is.
    """

    def __init__(self, reason: str, refused_module: str | None = None) -> None:
        super().__init__(one_line(reason))
        self.refused_module = refused_module


def objects_refusal(what: str) -> str:
    return f"refused: the file contains Python objects other than tensors ({what}); {NEVER_EXECUTES}"


# ------------------------------------------------------------------------------------------ NVIDIA pickles


def _section(state: Mapping, key: str, owner: str) -> dict:
    """``state[key]`` (``_parameters``, ``_buffers``, ``_modules``, ``_init_kwargs``) as a dict with
    identifier keys; absent or ``None`` is empty."""
    value = state.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UntrustedFileError(f"{owner}: '{key}' is of type {type(value).__name__}, not a dict")
    for name in value:
        if not (isinstance(name, str) and name.isidentifier()):
            raise UntrustedFileError(f"{owner}: '{key}' has an entry named {one_line(repr(name))[:40]}, "
                                     "not an attribute name")
    return dict(value)


@dataclasses.dataclass(eq=False)
class PersistentObject:
    """What ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` received: class name and ``__dict__``.

    ``module_src`` (the network's Python source) is kept for diagnostics only and never executed. The accessors
    raise ``UntrustedFileError`` for a ``__dict__`` that no ``torch.nn.Module`` has.
    """

    class_name: str
    state: dict
    module_src: str = ""

    @property
    def parameters(self) -> dict[str, Any]:
        return _section(self.state, "_parameters", self.class_name)

    @property
    def buffers(self) -> dict[str, Any]:
        return {k: v for k, v in _section(self.state, "_buffers", self.class_name).items() if v is not None}

    @property
    def modules(self) -> dict[str, Any]:
        return _section(self.state, "_modules", self.class_name)

    @property
    def init_kwargs(self) -> dict:
        return _section(self.state, "_init_kwargs", self.class_name)

    def named_tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """Flattened parameters and buffers, like ``nn.Module.state_dict()`` keys (``None`` entries skipped).

        Walked with an explicit stack: a module met twice (a cycle, or one sub-network shared by two parents,
        which no ``torch.nn.Module`` tree produces) is refused instead of recursing forever or exponentially.
        """
        tensors: dict[str, torch.Tensor] = {}
        visited: set[int] = set()
        pending = [(prefix, self, 0)]
        while pending:
            where, node, depth = pending.pop()
            label = where.rstrip(".") or node.class_name
            if id(node) in visited:
                raise UntrustedFileError(f"the network's module tree is not a tree: '{label}' is reached twice "
                                         "(a module that contains itself?)")
            if depth > MAX_TREE_DEPTH or len(visited) >= MAX_TREE_MODULES:
                raise UntrustedFileError(f"the network's module tree is implausibly deep or large at '{label}' "
                                         f"(more than {MAX_TREE_DEPTH} levels or {MAX_TREE_MODULES} modules)")
            visited.add(id(node))
            for name, value in {**node.parameters, **node.buffers}.items():
                if value is not None:
                    tensors[where + name] = value
            children = []
            for name, child in node.modules.items():
                if isinstance(child, PersistentObject):
                    children.append((f"{where}{name}.", child, depth + 1))
                elif child is not None:
                    raise UntrustedFileError(f"'{where}{name}' is not a network module but {type(child).__name__}")
            pending.extend(reversed(children))  # depth first, in the file's order
        return tensors


def _reconstruct_persistent_obj(meta: dict) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise pickle.UnpicklingError("unexpected persistent object record (not a class instance)")
    class_name, state, source = meta.get("class_name"), meta.get("state"), meta.get("module_src")
    if not isinstance(class_name, str) or not isinstance(state, dict) or not isinstance(source, (str, type(None))):
        raise pickle.UnpicklingError("malformed persistent object record (class_name, state or module_src)")
    return PersistentObject(class_name=class_name, state=dict(state), module_src=source or "")


def _load_storage_from_bytes(data: bytes) -> Any:
    # The official ``torch.storage._load_from_bytes`` calls ``torch.load`` with full unpickling; the bytes are a
    # nested pickle, so they must go through the same safe path.
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("a storage record that is not bytes")
    return load_torch_untrusted(io.BytesIO(data))


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
        super().__init__(objects_refusal(f"global '{one_line(module)[:80]}.{one_line(name)[:80]}'"))
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


def restricted_load_file(path: str | os.PathLike) -> Any:
    """Unpickle a whole file with ``RestrictedUnpickler``; every failure is an ``UntrustedFileError``.

    The file is read into memory first: a pickle opcode may declare a length of terabytes, and a buffered file
    allocates the declared length before it finds out that the data is not there; an in-memory stream returns at
    most what exists.
    """
    with open(path, "rb") as stream:
        data = stream.read()
    try:
        return restricted_load(io.BytesIO(data))
    except ForbiddenGlobalError as err:
        raise UntrustedFileError(str(err), refused_module=err.module) from None
    except pickle.UnpicklingError as err:  # not a refusal of ours: the opcodes themselves are broken
        if "truncated" in str(err):
            raise UntrustedFileError(TRUNCATED_PICKLE) from None
        raise UntrustedFileError(f"corrupt pickle data ({short_reason(err)})") from None
    except EOFError:
        raise UntrustedFileError(TRUNCATED_PICKLE) from None
    except UntrustedFileError:
        raise
    except MemoryError:
        raise UntrustedFileError(TOO_LARGE) from None
    except Exception as err:  # noqa: BLE001 - the allowed rebuilders raise anything on forged arguments
        raise UntrustedFileError(f"not a readable pickle ({short_reason(err)})") from None


# ---------------------------------------------------------------------------------------- torch.save files


_REFUSALS = [  # what torch's weights-only unpickler names in its refusals
    (re.compile(r"GLOBAL ([\w.]{1,160})"), "global '{}'"),
    (re.compile(r"got <class '([\w.]{1,160})'>"), "class '{}'"),
    (re.compile(r"unrecognized function <?([\w. ]{1,160})"), "function '{}'"),
]
_CORRUPT = re.compile(r"Unsupported operand (\d+)|String is too long|Can only (?:append|setitem|extend)")


def short_reason(err: BaseException) -> str:
    """``Type: first sentence of the message`` on one line, at most about 160 characters."""
    text = one_line(str(err))
    if isinstance(err, OSError) and err.strerror:
        text = err.strerror
    text = re.split(r"(?<=[a-z0-9)'])\. ", text, maxsplit=1)[0].rstrip(".")[:160]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def describe_torch_refusal(err: pickle.UnpicklingError) -> str:
    """One line for an ``UnpicklingError`` of ``torch.load(weights_only=True)``.

    torch's own message is six lines with ANSI codes and advice to pass ``weights_only=False``; only the name of
    what was refused is kept from it (or, for broken opcodes, that the data is corrupt).
    """
    text = one_line(str(err))
    for pattern, template in _REFUSALS:
        found = pattern.search(text)
        if found:
            return objects_refusal(template.format(found.group(1).rstrip(". ")))
    if "truncated" in text:
        return TRUNCATED_PICKLE
    corrupt = _CORRUPT.search(text)
    if corrupt:
        detail = f"invalid opcode {int(corrupt.group(1))}" if corrupt.group(1) else "malformed structure"
        return f"corrupt pickle data ({detail})"
    return f"refused: the file's pickle holds content other than tensors and plain data; {NEVER_EXECUTES}"


def load_torch_untrusted(source: str | os.PathLike | BinaryIO) -> Any:
    """``torch.load(source, map_location="cpu", weights_only=True)``; any failure is an ``UntrustedFileError``.

    For a file name, a zip container without its central directory (a file cut short) and a zip that torch did
    not write are told apart from other damage, for a clearer reason.
    """
    is_zip = False
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as stream:
            is_zip = stream.read(4) == TORCH_ZIP_MAGIC
        if is_zip and not zipfile.is_zipfile(source):
            raise UntrustedFileError("truncated or damaged torch file: its zip directory is missing (an interrupted "
                                     "download or copy?)")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise about a file we refuse anyway
            warnings.simplefilter("ignore")
            return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise UntrustedFileError(describe_torch_refusal(err)) from None
    except UntrustedFileError:  # from a nested storage
        raise
    except MemoryError:
        raise UntrustedFileError(TOO_LARGE) from None
    except Exception as err:  # noqa: BLE001 - on a damaged file torch raises RuntimeError, OSError, EOFError,
        # struct.error, KeyError, IndexError, ...: every one of them is a property of the file
        if is_zip and not _has_torch_record(source):
            raise UntrustedFileError("a zip archive, but not one written by torch.save (no data.pkl inside)") \
                from None
        raise UntrustedFileError(f"corrupt or truncated torch file ({short_reason(err)})") from None


def _has_torch_record(path: str | os.PathLike) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/data.pkl") for name in archive.namelist())
    except Exception:  # noqa: BLE001 - damaged rather than foreign: torch's reason is the better one
        return True


@contextlib.contextmanager
def failures_as(error: Callable[[str], Exception], keep: type[Exception], what: str) -> Iterator[None]:
    """Turn any failure inside the block into ``error(reason)``, except ``keep`` (already one line).

    A hostile file can make a parser raise anything (``RecursionError``, ``struct.error``, ...): each of those is a
    property of the file, reported as "``what`` (type: first sentence)", never a traceback.
    """
    try:
        yield
    except keep:
        raise
    except UntrustedFileError as err:
        raise error(str(err)) from None
    except MemoryError:
        raise error(TOO_LARGE) from None
    except Exception as err:  # noqa: BLE001 - see the docstring
        raise error(f"{what} ({short_reason(err)})") from None


# ------------------------------------------------------------------------------------------------ tensors


def check_tensors(tensors: Mapping[str, Any]) -> None:
    """Refuse (``UntrustedFileError``) anything but dense floating-point CPU tensors with finite values, and a set
    of tensors whose values are not all stored: ``size`` and ``stride`` come from the file, so a stride-0 view
    of a few bytes can pose as a model of gigabytes, which would then be built for real. The sizes are compared
    before any value is read (a finiteness test allocates in proportion to the claimed size)."""
    for name, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise UntrustedFileError(f"'{name}' is not a tensor but {type(value).__name__}")
        if value.layout != torch.strided or value.device.type != "cpu" or value.is_quantized:
            raise UntrustedFileError(f"tensor '{name}' is not a plain dense tensor ({value.layout}, "
                                     f"{value.device.type})")
        if not value.dtype.is_floating_point:
            raise UntrustedFileError(f"tensor '{name}' has dtype {value.dtype}, expected floating point")
    claimed = sum(t.numel() * t.element_size() for t in tensors.values())
    stored = _distinct_storage_bytes(tensors.values())
    if stored < claimed:
        raise UntrustedFileError(f"its tensors claim {claimed:,} bytes of values, but the file stores only "
                                 f"{stored:,} (overlapping or broadcast views)")
    for name, value in tensors.items():
        if not bool(torch.isfinite(value).all()):
            raise UntrustedFileError(f"non-finite values in tensor '{name}'")


def _distinct_storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    sizes: dict[int, int] = {}
    for tensor in tensors:
        storage = tensor.untyped_storage()
        if storage.nbytes():
            sizes[storage.data_ptr()] = max(sizes.get(storage.data_ptr(), 0), storage.nbytes())
    return sum(sizes.values())
