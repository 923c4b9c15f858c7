"""How many bytes and how many seconds one download may take, decided before its first byte.

* Bytes: a file whose size the registry knows may bring exactly that many; any byte more stops the download. A
  file of unknown size (the NVIDIA pickles of which no size is published) may bring at most a ceiling for its kind:
  1000 MB for a 1024 px generator, 800 MB at 512 px, 600 MB at 256 px, 1000 MB for a metric network. The largest
  real files are about 382 MB (``ffhq.pkl``, 1024 px) and 553 MB (``vgg16``); the ceilings are the size of a
  StyleGAN2 pickle (generator, discriminator and the averaged generator, float32) with 512 channels at every
  resolution, plus a margin, so no official snapshot comes near them.
* Seconds: a per-read timeout (``RLS_DOWNLOAD_TIMEOUT``, default 60 s without a byte) and a deadline for the
  whole download (``RLS_DOWNLOAD_DEADLINE``, default the larger of 600 s and the byte limit at 100 kB/s, so that
  a server dripping a byte now and then cannot hold a command forever). The deadline covers the whole fetch, from
  connecting to the last byte, redirects included: no connect or read is given more than the time left, so a
  server stalling or dripping its status line, headers, redirects or body is stopped at the deadline.

Both variables must be positive, finite numbers of seconds; anything else raises ``LimitSettingError`` (a
``ValueError``) with one line naming the variable, which stops a command before any request.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .registry import PretrainedFile

TIMEOUT_VARIABLE = "RLS_DOWNLOAD_TIMEOUT"
DEADLINE_VARIABLE = "RLS_DOWNLOAD_DEADLINE"
DEFAULT_TIMEOUT = 60.0  # seconds without a byte before a stalled connection is given up
MIN_DEADLINE = 600.0  # seconds: the default deadline of a small file
SLOWEST_RATE = 100_000  # bytes per second: a connection slower than this on average is given up (default deadline)

GENERATOR_CEILINGS = {256: 600_000_000, 512: 800_000_000, 1024: 1_000_000_000}  # bytes, by resolution in px
METRIC_CEILING = 1_000_000_000  # bytes


class LimitSettingError(ValueError):
    """``RLS_DOWNLOAD_TIMEOUT`` or ``RLS_DOWNLOAD_DEADLINE`` set to something other than a positive, finite number
    of seconds; the message is one line for the user (``<variable>=<value>: must be ...``)."""


@dataclasses.dataclass(frozen=True)
class DownloadLimits:
    max_bytes: int
    why: str  # what the byte limit is, for the one-line message
    timeout: float  # seconds without a byte
    deadline: float  # seconds for the whole download


def size_limit(entry: "PretrainedFile") -> tuple[int, str]:
    """The most bytes a download of ``entry`` may bring, and what that number is."""
    if entry.size is not None:
        return entry.size, f"the registry's size of {entry.name}"
    if entry.kind == "generator":
        if entry.resolution in GENERATOR_CEILINGS:
            return GENERATOR_CEILINGS[entry.resolution], f"the ceiling for {entry.resolution} px generators"
        return max(GENERATOR_CEILINGS.values()), "the ceiling for generators"
    return METRIC_CEILING, "the ceiling for metric networks"


def seconds_from_environment(variable: str, default: float) -> float:
    """``$variable`` as seconds (unset or empty: ``default``); ``LimitSettingError`` unless positive and finite."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise LimitSettingError(f"{variable}={raw}: must be a positive, finite number of seconds")
    return value


def default_deadline(max_bytes: int) -> float:
    return max(MIN_DEADLINE, max_bytes / SLOWEST_RATE)


def limits_for(entry: "PretrainedFile") -> DownloadLimits:
    """The limits of one download of ``entry``, the environment's settings checked (``LimitSettingError``)."""
    max_bytes, why = size_limit(entry)
    return DownloadLimits(max_bytes, why, timeout=seconds_from_environment(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT),
                          deadline=seconds_from_environment(DEADLINE_VARIABLE, default_deadline(max_bytes)))
