"""Which generator and flow prior a model uses, and loading them: the demo model by default, a registry name
(``ffhq-1024``: downloaded once, verified) or a path for the generator; for the flow a path, else the flow
``train_flow.py`` trained for this very generator (found in the weights cache by the fingerprint of its mapping
network, ``weights.flows``), else the shipped demo flow with the demo generator. The same rules for the commands,
the page and the Python API.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Callable

from ..paths import DEMO_FLOW, DEMO_GENERATOR
from ..names import train_flow_command

FLOW_SOURCES = ("given", "cache", "demo", "none")


@dataclasses.dataclass
class LoadedModels:
    generator: object  # stylegan.Generator, in eval mode on the CPU
    flow: object | None  # flow.checkpoint.FlowBundle
    generator_path: Path
    flow_path: Path | None
    flow_source: str  # one of FLOW_SOURCES: how the flow was chosen

    @property
    def resolution(self) -> int:
        return self.generator.img_resolution

    def describe_flow(self) -> str:
        """One line saying which flow prior is used and why (printed by the commands)."""
        if self.flow_path is None:
            return (f"no flow prior for {self.generator_path} (train one with: "
                    f"{train_flow_command(self.generator_path)})")
        why = {"given": "given", "cache": "trained for this generator, from the weights cache",
               "demo": "the demo model's"}[self.flow_source]
        return f"flow prior: {self.flow_path} ({why})"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def is_demo_generator(path: str | os.PathLike) -> bool:
    try:
        return Path(path).resolve() == DEMO_GENERATOR.resolve()
    except OSError:
        return False


def generator_file(generator: str | os.PathLike | None, *, weights_dir: str | Path | None = None,
                   offline: bool | None = None, log: Callable[[str], None] = _stderr) -> Path:
    """The generator file: the demo model's for None, the verified download of a registry name, or the path.
    Raises ``ValueError`` (an unknown name), ``FileNotFoundError`` (no such file, or not obtainable: one line with
    the URL and where to put it) or ``weights.VerificationFailed``."""
    from ..weights import UnknownName, WeightsUnavailable, ensure, is_registry_name, lookup

    if generator is None:
        if not DEMO_GENERATOR.is_file():
            raise FileNotFoundError(f"{DEMO_GENERATOR}: the embedded demo generator is not in this checkout; "
                                    "give a generator (a path or a registry name such as ffhq-1024)")
        return DEMO_GENERATOR
    if is_registry_name(generator):
        try:
            return ensure(lookup(str(generator), "generator"), weights_dir, offline=offline, log=log)
        except UnknownName as err:
            raise ValueError(f"generator {generator}: no such file, and {err}") from None
        except WeightsUnavailable as err:
            raise FileNotFoundError(str(err)) from None
    path = Path(generator)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    return path


def flow_for(G, generator_path: Path, flow: str | os.PathLike | None = None,
             weights_dir: str | Path | None = None) -> tuple[Path | None, str]:
    """``(flow file, source)``: ``flow`` when given; else the flow trained for ``G`` in the weights cache; else
    the demo flow with the demo generator; else ``(None, "none")``."""
    from ..flow.checkpoint import mapping_fingerprint
    from ..weights.flows import find_cached_flow

    if flow is not None:
        return Path(flow), "given"
    cached = find_cached_flow(mapping_fingerprint(G.mapping), weights_dir)
    if cached is not None:
        return cached, "cache"
    if is_demo_generator(generator_path) and DEMO_FLOW.is_file():
        return DEMO_FLOW, "demo"
    return None, "none"


def load_models(generator: str | os.PathLike | None = None, flow: str | os.PathLike | None = None, *,
                force: bool = False, weights_dir: str | Path | None = None, offline: bool | None = None,
                fused_modconv: bool = False, channels_last: bool = False,
                log: Callable[[str], None] = _stderr) -> LoadedModels:
    """The generator (see ``generator_file``) and its flow prior (see ``flow_for``), loaded and checked against
    each other (a flow of another generator is refused unless ``force``). ``fused_modconv`` and ``channels_last``
    are the generator's inference options (``invert.py --fused-modconv``, ``--channels-last``)."""
    from ..flow.checkpoint import load_flow
    from ..stylegan import load_generator

    generator_path = generator_file(generator, weights_dir=weights_dir, offline=offline, log=log)
    if flow is not None and not Path(flow).is_file():
        raise FileNotFoundError(f"{flow}: no such file" if not Path(flow).exists() else f"{flow}: not a file")
    G = load_generator(generator_path)
    G.synthesis.fused_modconv = fused_modconv
    G.synthesis.channels_last = channels_last
    flow_path, source = flow_for(G, generator_path, flow, weights_dir)
    bundle = load_flow(flow_path, G, force=force) if flow_path is not None else None
    return LoadedModels(G, bundle, generator_path, flow_path, source)
