"""The official StyleGAN2 generator snapshots, as fields of ``registry.PretrainedFile`` (filled in below)."""
from __future__ import annotations

GENERATORS: tuple[dict, ...] = ()
