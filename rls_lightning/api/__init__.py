"""The Python API: ``RLS`` loads a generator and its flow prior, then super-resolves images or restores photographs
in memory (``model``); inputs of any form (``inputs``), settings as keyword arguments (``settings``), results
(``results``), the generator and flow chosen as the commands choose them (``loading``), the engine run in memory
(``engine``) and photographs (``photos``). ``invert.py`` and the web page run their jobs through it.

    from rls_lightning import RLS
    model = RLS.from_pretrained()
    out = model.super_resolve("data/demo/lr8x/demo00.png", steps=20, refine_steps=5)
"""
from .inputs import InputError
from .model import RLS
from .results import PhotoRestoration, RestoredFace, SuperResolution
from .settings import SettingsError, build_settings

__all__ = ["RLS", "InputError", "PhotoRestoration", "RestoredFace", "SettingsError", "SuperResolution",
           "build_settings"]
