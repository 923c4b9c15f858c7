"""rls-lightning: RLS / RLS+ super-resolution by regularized StyleGAN2 latent search (Gheisari & Genovesio).

``from rls_lightning import RLS`` gives the Python API (``rls_lightning.api``); it is imported on first use, so that
importing the package (as every command does before reading its options) stays free of torch.
"""

__version__ = "0.1.0"

_API = ("RLS", "SuperResolution", "PhotoRestoration", "RestoredFace", "build_settings")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'rls_lightning' has no attribute {name!r}")
