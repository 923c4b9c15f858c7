"""Flow priors found by their generator: ``train_flow.py`` writes a generator's flow into the weights cache under
the fingerprint of its mapping network, and every command (and the Python API) looks there when no flow is given.

Layout: ``<cache>/rls-flows/<fingerprint[:16]>.pt`` (the flow file of ``flow.checkpoint``), ``<...>.json`` beside it
(which generator it was trained for, its validation NLL, when), and the Gaussianization report
(``<...>-report.png/.json``). ``<cache>`` is ``--weights-dir`` or the torch hub cache (``store.download_folder``),
where the registry's generators are downloaded: the flow of ``ffhq-1024`` lies beside ``ffhq.pkl``. The key is the
same fingerprint ``load_flow`` checks (SHA-256 of the mapping weights), so any file of the same generator, under
any name or path, finds it. Plain Python: the fingerprint itself is computed by the caller.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from .store import download_folder, search_folders

FLOWS_FOLDER = "rls-flows"
KEY_LENGTH = 16  # hex digits of the fingerprint in the file name (64 bits); load_flow checks all of it


def flow_folder(weights_dir: str | Path | None = None) -> Path:
    """Where ``train_flow.py`` writes flows by default."""
    return download_folder(weights_dir) / FLOWS_FOLDER


def cached_flow_path(fingerprint: str, weights_dir: str | Path | None = None) -> Path:
    """The default flow file of the generator whose mapping has ``fingerprint``."""
    return flow_folder(weights_dir) / f"{fingerprint[:KEY_LENGTH]}.pt"


def find_cached_flow(fingerprint: str, weights_dir: str | Path | None = None) -> Path | None:
    """The flow trained for this fingerprint in ``--weights-dir`` or the hub cache, or None."""
    for folder in search_folders(weights_dir):
        candidate = folder / FLOWS_FOLDER / f"{fingerprint[:KEY_LENGTH]}.pt"
        if candidate.is_file():
            return candidate
    return None


def describe_flow(flow_path: Path, *, generator: str, fingerprint: str, val_nll: float | None) -> Path:
    """Write ``<flow>.json`` beside a cached flow: the generator it was trained for (what ``weights list``
    shows without reading the flow itself)."""
    from ..atomic import atomic_write_path

    path = flow_path.with_suffix(".json")
    with atomic_write_path(path) as tmp:
        tmp.write_text(json.dumps({"generator": generator, "fingerprint": fingerprint, "val_nll": val_nll,
                                   "written": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1))
    return path


def cached_flows(weights_dir: str | Path | None = None) -> list[dict]:
    """Every cached flow: ``{"path", "generator", "fingerprint", "val_nll", "written", "size_bytes"}`` (what its
    ``.json`` says; ``generator`` "?" when that is missing or unreadable)."""
    rows = []
    for folder in search_folders(weights_dir):
        for path in sorted((folder / FLOWS_FOLDER).glob("*.pt")) if (folder / FLOWS_FOLDER).is_dir() else []:
            try:
                described = json.loads(path.with_suffix(".json").read_text())
                if not isinstance(described, dict):
                    described = {}
            except (OSError, ValueError):
                described = {}
            rows.append({"path": str(path), "generator": str(described.get("generator", "?")),
                         "fingerprint": str(described.get("fingerprint", path.stem)),
                         "val_nll": described.get("val_nll"), "written": described.get("written"),
                         "size_bytes": path.stat().st_size})
    return rows
