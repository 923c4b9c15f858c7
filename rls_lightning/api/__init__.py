"""The Python API, the one door to the method: ``RLS`` loads a generator and its flow prior, then super-resolves
images or restores photographs in memory, or runs a whole folder (``model``); inputs of any form (``inputs``),
settings as keyword arguments (``settings``), results (``results``), the generator and flow chosen as the commands
choose them (``loading``), photographs (``photos``) and folder runs (``folders``: ``RLS.super_resolve_folder``).
``invert.py``, the studies and the web page run their jobs through it; no shell reaches ``inversion`` or
``photos`` itself.

    from rls_lightning import RLS
    model = RLS.from_pretrained()
    out = model.super_resolve("data/demo/lr8x/demo00.png", steps=20, refine_steps=5)

The names below are imported on first use, so that the light parts (``settings``, ``folders``) cost the commands no
torch before their options are checked.
"""

_WHERE = {"RLS": "model", "InputError": "inputs", "PhotoRestoration": "results", "RestoredFace": "results",
          "SuperResolution": "results", "SettingsError": "settings", "build_settings": "settings",
          "FolderRun": "folders", "FlowMissing": "folders", "NothingToDo": "folders", "PhotoOptions": "folders"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
