"""StyleGAN2 config-f generator with the 'skip' ToRGB architecture (paper section 2.1; Karras et al. 2020).

``Generator.mapping(z) -> w`` ``[N, w_dim]`` and ``Generator.synthesis(ws, noise_mode, noise) -> img`` ``[N, C, H, W]``.
Parameter names follow NVIDIA's ``G_ema.state_dict()`` (minus the fixed FIR buffers) of stylegan2-ada-pytorch
``training/networks.py`` (``MappingNetwork``, ``SynthesisNetwork``), so that its snapshots load by renaming only.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import re
from typing import Literal, Sequence

import torch
from torch import nn

from .filters import binomial_kernel, upsample2d
from .layers import EqualizedLinear, SynthesisLayer, ToRGBLayer

NoiseMode = Literal["const", "random", "none"]

MAX_RESOLUTION = 4096
MAX_LATENT_DIM = 8192
MAX_IMG_CHANNELS = 16
MAX_MAPPING_LAYERS = 64
MAX_CHANNELS = 8192
MAX_CHANNEL_BASE = 2 ** 30


def _checked_int(name: str, value: object, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__}")
    if not minimum <= value <= maximum:
        shown = int(value) if abs(value) < 10 ** 18 else f"an integer of {int(value).bit_length()} bits"
        raise ValueError(f"{name} must be an integer from {minimum} to {maximum}, got {shown}")
    return int(value)


def _checked_positive_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float range
        number = math.inf
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {number}")
    return number


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """Hyper-parameters of a StyleGAN2 generator. Defaults are config-f at 1024 px (NVIDIA's code defaults).

    Channels at resolution ``r`` are ``min(channel_base // r, channel_max)``; rosinality's
    ``channel_multiplier = m`` is ``channel_base = 16384 * m`` with ``channel_max = 512``.
    """

    img_resolution: int = 1024
    z_dim: int = 512
    w_dim: int = 512
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = None
    # How the training faces were cropped, which photos must be aligned to (``rls_lightning.photos.alignment``):
    # NVIDIA's and rosinality's files are FFHQ-aligned; our demo model uses faces64's tighter crop.
    framing: str = "ffhq"

    def __post_init__(self) -> None:
        """Refuse what no StyleGAN2 can be (a config may come from an untrusted file): ``ValueError`` naming the field.

        Integers are stored as ``int`` and reals as ``float`` (numpy scalars of a pickle included). The upper bounds
        are far above every published model (official: 1024 px, 512-d latents, 8 mapping layers, 512 channels);
        they exist so that an implausible file is refused before anything is allocated for it.
        """
        for name, minimum, maximum in (("img_resolution", 4, MAX_RESOLUTION), ("z_dim", 1, MAX_LATENT_DIM),
                                       ("w_dim", 1, MAX_LATENT_DIM), ("img_channels", 1, MAX_IMG_CHANNELS),
                                       ("mapping_layers", 1, MAX_MAPPING_LAYERS), ("channel_max", 1, MAX_CHANNELS),
                                       ("channel_base", 1, MAX_CHANNEL_BASE)):
            object.__setattr__(self, name, _checked_int(name, getattr(self, name), minimum, maximum))
        res = self.img_resolution
        if res & (res - 1):
            raise ValueError(f"img_resolution must be a power of two from 4 to {MAX_RESOLUTION}, got {res}")
        if self.channel_base < res:  # C(r) = min(channel_base // r, channel_max) must be >= 1 up to r = res
            raise ValueError(f"channel_base {self.channel_base} leaves no channels at {res} px "
                             f"(channel_base // resolution must be >= 1, so channel_base >= {res})")
        object.__setattr__(self, "mapping_lr_multiplier",
                           _checked_positive_float("mapping_lr_multiplier", self.mapping_lr_multiplier))
        if self.conv_clamp is not None:
            object.__setattr__(self, "conv_clamp", _checked_positive_float("conv_clamp", self.conv_clamp))
        if not isinstance(self.framing, str) or not re.fullmatch(r"[a-z0-9_-]{1,32}", self.framing):
            raise ValueError(f"framing must be a short lower-case name such as 'ffhq', got {self.framing!r:.40}")

    @property
    def resolution_log2(self) -> int:
        return int(math.log2(self.img_resolution))

    @property
    def block_resolutions(self) -> list[int]:
        return [2 ** i for i in range(2, self.resolution_log2 + 1)]

    @property
    def num_ws(self) -> int:
        """``2 log2(R) - 2``: two convs and one ToRGB per block, where a ToRGB shares its w with the next up-conv."""
        return 2 * self.resolution_log2 - 2

    def channels(self, resolution: int) -> int:
        return min(self.channel_base // resolution, self.channel_max)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def normalize_2nd_moment(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``z * rsqrt(mean(z^2) + eps)`` per sample: pixelwise normalization (Karras et al. 2018, ProGAN sec. 4.2);
    ``normalize_2nd_moment`` in stylegan2-ada-pytorch ``training/networks.py``, ``PixelNorm`` in rosinality's
    ``model.py``."""
    return z * (z.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """z -> w: 2nd-moment normalisation then ``mapping_layers`` equalized-lr fc layers with lr multiplier 0.01."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.num_layers = config.mapping_layers
        for i in range(config.mapping_layers):
            in_features = config.z_dim if i == 0 else config.w_dim
            layer = EqualizedLinear(in_features, config.w_dim, lr_multiplier=config.mapping_lr_multiplier,
                                    activation=True)
            self.add_module(f"fc{i}", layer)
        # The average w is a property of the checkpoint (NVIDIA's ``mapping.w_avg`` or rosinality's
        # ``latent_avg``), absent for some files, so it is an optional buffer.
        self.register_buffer("w_avg", None)

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
        x = normalize_2nd_moment(z)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if truncation_psi != 1.0:
            if self.w_avg is None:
                raise ValueError("truncation needs w_avg, which this generator does not have")
            x = self.w_avg.to(x.dtype) + truncation_psi * (x - self.w_avg.to(x.dtype))
        return x


class SynthesisBlock(nn.Module):
    """One resolution: (up-conv), conv, ToRGB; the RGB skip path is upsampled and summed: the 'skip' generator of
    StyleGAN2 (Karras et al. 2020, sec. 4.1, Fig. 7b); ``SynthesisBlock(architecture='skip')`` in
    stylegan2-ada-pytorch ``training/networks.py``."""

    def __init__(self, config: GeneratorConfig, resolution: int) -> None:
        super().__init__()
        self.resolution = resolution
        out_channels = config.channels(resolution)
        clamp = config.conv_clamp
        if resolution == 4:
            self.const = nn.Parameter(torch.randn(out_channels, 4, 4))
        else:
            in_channels = config.channels(resolution // 2)
            self.conv0 = SynthesisLayer(in_channels, out_channels, config.w_dim, resolution, up=True,
                                        conv_clamp=clamp)
            self.register_buffer("skip_kernel", binomial_kernel(4.0), persistent=False)
        self.conv1 = SynthesisLayer(out_channels, out_channels, config.w_dim, resolution, up=False, conv_clamp=clamp)
        self.torgb = ToRGBLayer(out_channels, config.img_channels, config.w_dim, conv_clamp=clamp)

    @property
    def convs(self) -> list[SynthesisLayer]:
        return [self.conv1] if self.resolution == 4 else [self.conv0, self.conv1]

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noises: Sequence[torch.Tensor | None], fused: bool,
                channels_last: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``ws`` holds this block's ``len(convs) + 1`` vectors; the last one drives ToRGB. ``channels_last``: the
        constant input is laid out NHWC, which the convolutions then keep."""
        if x is None:  # the constant input, [C, 4, 4] or per sample [N, C, 4, 4]
            x = self.const.reshape(-1, *self.const.shape[-3:]).expand(ws.shape[0], -1, -1, -1)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        for i, (conv, noise) in enumerate(zip(self.convs, noises)):
            x = conv(x, ws[:, i], noise, fused)
        rgb = self.torgb(x, ws[:, -1], fused)
        img = rgb if img is None else upsample2d(img, self.skip_kernel).to(rgb.dtype) + rgb
        return x, img


class SynthesisNetwork(nn.Module):
    """W+ -> image. ``ws`` is ``[N, num_ws, w_dim]``; block ``b{r}`` reads rows ``[i, i + convs + 1)``, then
    ``i += convs`` (so a ToRGB shares its w with the next block's up-conv)."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.num_ws = config.num_ws
        self.block_resolutions = config.block_resolutions
        for res in self.block_resolutions:
            self.add_module(f"b{res}", SynthesisBlock(config, res))
        # Fused (grouped) modulated convs reproduce the official inference path exactly; training may switch
        # to the unfused path, which shares weights across the batch.
        self.fused_modconv = True
        # NHWC activations: equal results, speed mixed on the 2-core CPU (benchmarks/RESULTS.md), so off by default.
        # The grouped path (fused or per-image weights) regroups the batch into channels, which needs NCHW again.
        self.channels_last = False

    @property
    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    @property
    def layers(self) -> list[SynthesisLayer]:
        """The noise-carrying conv layers in w order: b4.conv1, b8.conv0, b8.conv1, ... (``2 log2 R - 3`` of them)."""
        return [conv for block in self.blocks for conv in block.convs]

    @property
    def noise_inputs(self) -> list[torch.Tensor]:
        """The stored noise constants (``noise_mode="const"``), ``[R, R]`` each, coarse to fine.

        These are the module's buffers themselves; inversion clones them into parameters and passes them back
        through ``noise=``.
        """
        return [layer.noise_const for layer in self.layers]

    def _noise_for(self, layer: SynthesisLayer, batch: int, mode: NoiseMode,
                   override: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
        if override is not None:
            res = layer.resolution
            if override.shape[-2:] != (res, res):
                raise ValueError(f"noise for the {res}x{res} layer has shape {tuple(override.shape)}")
            return override.reshape(-1, 1, res, res)
        if mode == "const":
            return layer.noise_const.reshape(1, 1, layer.resolution, layer.resolution)
        if mode == "random":
            return torch.randn(batch, 1, layer.resolution, layer.resolution, device=like.device, dtype=like.dtype)
        if mode == "none":
            return None
        raise ValueError(f"noise_mode must be 'const', 'random' or 'none', got {mode!r}")

    def forward(self, ws: torch.Tensor, noise_mode: NoiseMode = "const",
                noise: Sequence[torch.Tensor | None] | None = None) -> torch.Tensor:
        """Render ``ws`` ``[N, num_ws, w_dim]`` to ``[N, C, R, R]``.

        ``noise``: optional list with one entry per layer (see ``noise_inputs``); a tensor of shape
        ``[R, R]``, ``[1, 1, R, R]`` or ``[N, 1, R, R]`` replaces that layer's noise, ``None`` falls back to
        ``noise_mode``.
        """
        if ws.ndim != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, w_dim], got {tuple(ws.shape)}")
        layers = self.layers
        if noise is not None and len(noise) != len(layers):
            raise ValueError(f"noise must list {len(layers)} tensors (one per layer), got {len(noise)}")
        overrides = list(noise) if noise is not None else [None] * len(layers)
        noises = [self._noise_for(layer, ws.shape[0], noise_mode, override, ws)
                  for layer, override in zip(layers, overrides)]

        x = img = None
        w_index = noise_index = 0
        for block in self.blocks:
            n_convs = len(block.convs)
            block_ws = ws[:, w_index:w_index + n_convs + 1]
            x, img = block(x, img, block_ws, noises[noise_index:noise_index + n_convs], self.fused_modconv,
                           self.channels_last)
            w_index += n_convs
            noise_index += n_convs
        return img


class Generator(nn.Module):
    """StyleGAN2 generator: ``mapping`` (z -> w) and ``synthesis`` (W+ -> image)."""

    def __init__(self, config: GeneratorConfig | None = None, **overrides) -> None:
        super().__init__()
        config = dataclasses.replace(config or GeneratorConfig(), **overrides)
        self.config = config
        self.mapping = MappingNetwork(config)
        self.synthesis = SynthesisNetwork(config)

    @property
    def z_dim(self) -> int:
        return self.config.z_dim

    @property
    def w_dim(self) -> int:
        return self.config.w_dim

    @property
    def num_ws(self) -> int:
        return self.config.num_ws

    @property
    def img_resolution(self) -> int:
        return self.config.img_resolution

    @property
    def img_channels(self) -> int:
        return self.config.img_channels

    @property
    def w_avg(self) -> torch.Tensor | None:
        return self.mapping.w_avg

    @w_avg.setter
    def w_avg(self, value: torch.Tensor | None) -> None:
        if value is not None:
            value = value.detach().reshape(self.w_dim).to(self.mapping.fc0.weight)
        self.mapping.w_avg = value

    @property
    def noise_inputs(self) -> list[torch.Tensor]:
        return self.synthesis.noise_inputs

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: NoiseMode = "const") -> torch.Tensor:
        w = self.mapping(z, truncation_psi=truncation_psi)
        return self.synthesis(w.unsqueeze(1).expand(-1, self.num_ws, -1), noise_mode=noise_mode)
