"""What makes a file the registry's file: its sha256 (or the torch-hub prefix of it), its size, and for pickled
generators that it parses as the StyleGAN2 the entry describes."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .registry import PretrainedFile

CHUNK = 1 << 20


class VerificationFailed(ValueError):
    """A file that is not the registry's (wrong hash, size or content); the message names the file."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def check_digest(entry: "PretrainedFile", path: Path | str, sha256: str, size: int) -> None:
    """Raise ``VerificationFailed`` unless ``sha256`` / ``size`` are the entry's; ``path`` (a file, or the URL of a
    download) names them in the message."""
    if entry.size is not None and size != entry.size:
        raise VerificationFailed(f"{path}: {size} bytes, but {entry.name} ({entry.filename}) has {entry.size}")
    if entry.sha256 is not None and sha256 != entry.sha256:
        raise VerificationFailed(f"{path}: sha256 {sha256} differs from {entry.name}'s {entry.sha256}")
    if entry.hash_prefix is not None and not sha256.startswith(entry.hash_prefix):
        raise VerificationFailed(f"{path}: sha256 {sha256[:16]}... does not start with {entry.name}'s "
                                 f"{entry.hash_prefix} (the hash in its file name)")


def check_content(entry: "PretrainedFile", path: Path) -> None:
    """For entries without any published hash: the file must at least be what the entry says it is."""
    if entry.kind != "generator" or entry.resolution is None:
        return
    from ..stylegan.checkpoint_errors import CheckpointError
    from ..stylegan.loading import read_checkpoint

    try:
        config, _ = read_checkpoint(path)
    except CheckpointError as err:
        raise VerificationFailed(f"{path}: not a generator our loader reads ({err})") from None
    if config.img_resolution != entry.resolution:
        raise VerificationFailed(f"{path}: a {config.img_resolution} px generator, but {entry.name} is "
                                 f"{entry.resolution} px")


def verify_file(entry: "PretrainedFile", path: Path) -> str:
    """The sha256 of ``path`` after checking it against ``entry`` (hash, size, and content where no hash is
    published); raises ``VerificationFailed``."""
    sha256 = sha256_of(path)
    check_digest(entry, path, sha256, path.stat().st_size)
    if not entry.verifiable_by_hash:
        check_content(entry, path)
    return sha256
