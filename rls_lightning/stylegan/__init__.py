"""StyleGAN2 networks and checkpoint formats."""
from .checkpoint_errors import CheckpointError
from .loading import load_generator, save_generator
from .networks import Generator, GeneratorConfig

__all__ = ["CheckpointError", "Generator", "GeneratorConfig", "load_generator", "save_generator"]
