"""Where registry files live and how a missing one is obtained: the folders searched, offline mode, mirrors.

* Files are looked for in ``--weights-dir`` (when given) and in the torch hub cache
  (``$TORCH_HOME/hub/checkpoints``, where torchvision, lpips and facenet-pytorch keep the same files), and
  downloaded into ``--weights-dir`` or else the hub cache.
* ``RLS_OFFLINE=1`` (or ``offline=True``, the commands' ``--offline``) never touches the network.
* ``RLS_WEIGHTS_MIRROR=<base URL>`` fetches ``<base URL>/<file name>`` instead of the upstream URLs (a cluster
  without internet serves the files from one folder: ``python -m http.server``, or a ``file://`` path).
* A file found is verified before use (``verification.verify_file``); a file that fails is never used nor
  replaced: the message says what to delete.
* Each download is bounded in bytes and seconds (``limits``); partial files of downloads whose process died are
  removed by the next call (``partial_files``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

from . import partial_files, registry
from .download import DownloadFailed, download
from .limits import limits_for
from .registry import PretrainedFile
from .verification import VerificationFailed, sha256_of, verify_file

OFFLINE_VARIABLE = "RLS_OFFLINE"
MIRROR_VARIABLE = "RLS_WEIGHTS_MIRROR"
PINNED_SUFFIX = ".sha256"  # beside a file without a published hash: its sha256 at download


class WeightsUnavailable(FileNotFoundError):
    """A registry file that is neither here nor obtainable; one line: the file, its URL, where to put it."""

    def __init__(self, entry: PretrainedFile, message: str) -> None:
        super().__init__(message)
        self.entry = entry

    def __str__(self) -> str:
        return self.args[0]


def offline_requested() -> bool:
    return os.environ.get(OFFLINE_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def mirror_base() -> str | None:
    return os.environ.get(MIRROR_VARIABLE, "").strip() or None


def hub_folder() -> Path:
    import torch  # here, not at the top: `python -m rls_lightning.cli.weights --help` needs no torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def search_folders(weights_dir: str | Path | None) -> list[Path]:
    return ([Path(weights_dir)] if weights_dir else []) + [hub_folder()]


def download_folder(weights_dir: str | Path | None) -> Path:
    return Path(weights_dir) if weights_dir else hub_folder()


def candidate_urls(entry: PretrainedFile) -> list[str]:
    base = mirror_base()
    if base is not None:
        return [f"{base.rstrip('/')}/{entry.filename}"]
    return list(entry.urls)


def _by_hand(entry: PretrainedFile, weights_dir: str | Path | None) -> str:
    target = download_folder(weights_dir) / entry.filename
    return f"download {candidate_urls(entry)[0]} and put it at {target}"


def find(entry: PretrainedFile, weights_dir: str | Path | None = None) -> Path | None:
    """The first copy of ``entry`` in the searched folders, unverified, or None."""
    for folder in search_folders(weights_dir):
        candidate = folder / entry.filename
        if candidate.is_file():
            return candidate
    return None


# Files verified by this process, by (entry, path, size, mtime): a study evaluates many result folders and must not
# hash the same hundreds of MB for each; a file changed on disk has a new size or mtime and is checked again.
_VERIFIED: dict[tuple, str] = {}


def check_local(entry: PretrainedFile, path: Path) -> str:
    """Verify a file found on disk; returns its sha256. Without a published hash, the sha256 pinned beside it
    is compared (a file placed by hand is checked for content once, then pinned)."""
    stat = path.stat()
    key = (entry, str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = _verify_local(entry, path)
    return _VERIFIED[key]


def _verify_local(entry: PretrainedFile, path: Path) -> str:
    pinned = path.with_name(path.name + PINNED_SUFFIX)
    try:
        if entry.verifiable_by_hash or not pinned.is_file():
            sha256 = verify_file(entry, path)
            _pin(entry, path, sha256)
            return sha256
        sha256 = sha256_of(path)
    except VerificationFailed as err:
        raise VerificationFailed(f"{err}; delete it to download it again") from None
    words = pinned.read_text(errors="replace").split()
    if not words or words[0] != sha256:
        raise VerificationFailed(f"{path}: sha256 {sha256} changed since it was pinned in {pinned} "
                                 f"({words[0] if words else 'empty'}); delete both to download it again")
    return sha256


def _pin(entry: PretrainedFile, path: Path, sha256: str) -> None:
    if entry.verifiable_by_hash:
        return
    from ..atomic import atomic_write_path

    try:
        with atomic_write_path(path.with_name(path.name + PINNED_SUFFIX)) as tmp:
            tmp.write_text(f"{sha256}  {path.name}\n")
    except OSError:  # a read-only folder: the file is still verified, just not pinned
        pass


def ensure(entry: PretrainedFile, weights_dir: str | Path | None = None, *, offline: bool | None = None,
           progress: bool = True, log: Callable[[str], None] | None = None) -> Path:
    """The verified local path of ``entry``, downloading it when missing (unless offline).

    Raises ``WeightsUnavailable`` (not here and not obtainable: one line with the file, the URL and the path to
    put it at), ``VerificationFailed`` (a local copy that is not the registry's file), ``limits.LimitSettingError``
    (a bad ``RLS_DOWNLOAD_TIMEOUT`` / ``RLS_DOWNLOAD_DEADLINE``) or ``download.DownloadInterrupted`` (SIGTERM).
    """
    _remove_stale_partial_files(entry, weights_dir, log)
    found = find(entry, weights_dir)
    if found is not None:
        check_local(entry, found)
        return found
    folders = ", ".join(str(folder) for folder in search_folders(weights_dir))
    if offline if offline is not None else offline_requested():
        raise WeightsUnavailable(entry, f"{entry.name}: {entry.filename} is not in {folders} and downloads are off "
                                        f"(offline): {_by_hand(entry, weights_dir)}")
    limits = limits_for(entry)
    target = download_folder(weights_dir) / entry.filename
    failures = []
    for url in candidate_urls(entry):
        if log is not None:
            log(f"downloading {entry.name} ({entry.filename}) from {url}")
        try:
            with _progress_bar(entry, progress) as report:
                sha256 = download(entry, url, target, limits=limits, progress=report)
        except DownloadFailed as err:
            failures.append(err.reason)
            continue
        except VerificationFailed as err:
            failures.append(str(err).removeprefix(f"{url}: "))
            continue
        except OSError as err:  # the target folder cannot be created or written
            failures.append(f"cannot write into {target.parent} ({err.strerror or err})")
            continue
        _pin(entry, target, sha256)
        return target
    tried = "; ".join(f"{url}: {reason}" for url, reason in zip(candidate_urls(entry), failures))
    raise WeightsUnavailable(entry, f"{entry.name}: could not download {entry.filename} ({tried}); "
                                    f"{_by_hand(entry, weights_dir)}")


def _remove_stale_partial_files(entry: PretrainedFile, weights_dir: str | Path | None,
                                log: Callable[[str], None] | None) -> None:
    filenames = {file.filename for file in registry.FILES} | {entry.filename}
    for folder in search_folders(weights_dir):
        for path, size in partial_files.remove_stale(folder, filenames):
            if log is not None:
                log(f"removed {path} ({size / 1e6:.1f} MB), the partial download of a process that has ended")


class _progress_bar:
    """A transient rich bar on stderr for one download (silent when stderr is not a terminal or when off)."""

    def __init__(self, entry: PretrainedFile, enabled: bool) -> None:
        self.entry = entry
        self.enabled = enabled and sys.stderr.isatty()
        self._progress = self._task = None

    def __enter__(self) -> Callable[[int, int | None], None]:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                       TransferSpeedColumn)

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                      TransferSpeedColumn(), TimeRemainingColumn(),
                                      console=Console(stderr=True), transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.entry.filename, total=self.entry.size)
        return self._report

    def _report(self, received: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=received, total=total or self.entry.size)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()


def status(entry: PretrainedFile, weights_dir: str | Path | None = None) -> tuple[str, Path | None, str | None]:
    """``(state, path, sha256)`` with state ``missing``, ``ok`` or the verification failure's text."""
    found = find(entry, weights_dir)
    if found is None:
        return "missing", None, None
    try:
        return "ok", found, check_local(entry, found)
    except VerificationFailed as err:
        return str(err), found, None


__all__ = ["WeightsUnavailable", "VerificationFailed", "ensure", "find", "status", "search_folders",
           "download_folder", "offline_requested", "sha256_of"]
