"""Test-side writers of the two official checkpoint layouts, independent of the library's readers.

* rosinality: ``{'g_ema': state_dict, 'latent_avg': [512]}`` with rosinality's key names and shapes, spelled out
  here block by block from rosinality's ``model.py`` (``Generator.__init__``), not taken from the library's key
  table; ``tests/fixtures/rosinality_r16.pt`` is a file that code wrote itself.
* NVIDIA: a ``pickle.dump`` of a training snapshot in which every network is a ``torch_utils.persistence`` record,
  produced by stand-in classes so that no NVIDIA code is needed.
"""
from __future__ import annotations

import collections
import contextlib
import pickle
import sys
import types

import numpy as np
import torch

from rls_lightning.stylegan import Generator


# ----------------------------------------------------------------------------------------------- rosinality


def rosinality_state(G: Generator) -> dict[str, torch.Tensor]:
    sd = {k: v.detach().clone() for k, v in G.state_dict().items() if k != "mapping.w_avg"}
    out: dict[str, torch.Tensor] = {}
    for i in range(G.config.mapping_layers):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    out["input.input"] = sd["synthesis.b4.const"][None]

    def conv(prefix_ours: str, prefix_theirs: str, upsample: bool) -> None:
        out[f"{prefix_theirs}.conv.weight"] = sd[f"{prefix_ours}.weight"][None]
        out[f"{prefix_theirs}.conv.modulation.weight"] = sd[f"{prefix_ours}.affine.weight"]
        out[f"{prefix_theirs}.conv.modulation.bias"] = sd[f"{prefix_ours}.affine.bias"]
        out[f"{prefix_theirs}.noise.weight"] = sd[f"{prefix_ours}.noise_strength"].reshape(1)
        out[f"{prefix_theirs}.activate.bias"] = sd[f"{prefix_ours}.bias"]
        if upsample:
            k = torch.tensor([1.0, 3.0, 3.0, 1.0])
            out[f"{prefix_theirs}.conv.blur.kernel"] = torch.outer(k, k) / 64 * 4

    def torgb(prefix_ours: str, prefix_theirs: str, upsample: bool) -> None:
        out[f"{prefix_theirs}.conv.weight"] = sd[f"{prefix_ours}.weight"][None]
        out[f"{prefix_theirs}.conv.modulation.weight"] = sd[f"{prefix_ours}.affine.weight"]
        out[f"{prefix_theirs}.conv.modulation.bias"] = sd[f"{prefix_ours}.affine.bias"]
        out[f"{prefix_theirs}.bias"] = sd[f"{prefix_ours}.bias"].reshape(1, -1, 1, 1)
        if upsample:
            k = torch.tensor([1.0, 3.0, 3.0, 1.0])
            out[f"{prefix_theirs}.upsample.kernel"] = torch.outer(k, k) / 64 * 4

    conv("synthesis.b4.conv1", "conv1", False)
    torgb("synthesis.b4.torgb", "to_rgb1", False)
    noises = [sd["synthesis.b4.conv1.noise_const"]]
    res = 8
    k = 0
    while res <= G.img_resolution:
        conv(f"synthesis.b{res}.conv0", f"convs.{2 * k}", True)
        conv(f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}", False)
        torgb(f"synthesis.b{res}.torgb", f"to_rgbs.{k}", True)
        noises += [sd[f"synthesis.b{res}.conv0.noise_const"], sd[f"synthesis.b{res}.conv1.noise_const"]]
        res *= 2
        k += 1
    for j, noise in enumerate(noises):
        out[f"noises.noise_{j}"] = noise.reshape(1, 1, *noise.shape)
    return out


def write_rosinality(G: Generator, path, with_latent_avg: bool = True) -> None:
    payload = {"g_ema": rosinality_state(G)}
    if with_latent_avg:
        payload["latent_avg"] = G.w_avg.detach().clone()
    torch.save(payload, path)


# ------------------------------------------------------------------------------------------------ NVIDIA


def _reconstruct_persistent_obj(meta):  # never called by the library: it has its own stand-in
    raise AssertionError("the library must not call the pickle's own constructor")


class EasyDict(dict):
    pass


@contextlib.contextmanager
def nvidia_modules():
    """Make ``torch_utils.persistence`` and ``dnnlib.util`` importable so that ``pickle`` can name them."""
    names = ["torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util"]
    saved = {n: sys.modules.get(n) for n in names}
    mods = {n: types.ModuleType(n) for n in names}
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    EasyDict.__module__ = "dnnlib.util"
    EasyDict.__qualname__ = "EasyDict"
    mods["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    mods["dnnlib.util"].EasyDict = EasyDict
    mods["torch_utils"].persistence = mods["torch_utils.persistence"]
    mods["dnnlib"].util = mods["dnnlib.util"]
    sys.modules.update(mods)
    try:
        yield
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


class PersistentRecord:
    """Pickles exactly like an NVIDIA ``@persistent_class`` instance: ``_reconstruct_persistent_obj(meta)``."""

    def __init__(self, class_name: str, state: dict, module_src: str = "# network source would be here\n"):
        self.meta = dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state)

    def __reduce__(self):
        return _reconstruct_persistent_obj, (self.meta,)


def _module_state(params=None, buffers=None, modules=None, **attrs) -> dict:
    state = {
        "training": False,
        "_parameters": collections.OrderedDict(params or {}),
        "_buffers": collections.OrderedDict(buffers or {}),
        "_modules": collections.OrderedDict(modules or {}),
        "_forward_hooks": collections.OrderedDict(),
        "_init_args": (),
        "_init_kwargs": EasyDict(),
    }
    state.update(attrs)
    return state


def _param(t: torch.Tensor) -> torch.nn.Parameter:
    return torch.nn.Parameter(t.detach().clone(), requires_grad=False)


def nvidia_generator_record(G: Generator, *, init_kwargs: dict | None = None,
                            block_names: list[str] | None = None) -> PersistentRecord:
    """A ``G_ema`` record with the module tree and names of stylegan2-ada-pytorch ``training/networks.py``,
    including its FIR buffers."""
    cfg = G.config
    sd = {k: v.detach().clone() for k, v in G.state_dict().items()}
    fir = torch.outer(torch.tensor([1.0, 3.0, 3.0, 1.0]), torch.tensor([1.0, 3.0, 3.0, 1.0])) / 64

    def fc(prefix: str, lr: float, activation: str, class_name="FullyConnectedLayer") -> PersistentRecord:
        w = sd[f"{prefix}.weight"]
        return PersistentRecord(class_name, _module_state(
            {"weight": _param(w), "bias": _param(sd[f"{prefix}.bias"])},
            activation=activation, weight_gain=np.float64(lr / np.sqrt(w.shape[1])), bias_gain=lr))

    mapping_modules = {f"fc{i}": fc(f"mapping.fc{i}", cfg.mapping_lr_multiplier, "lrelu")
                       for i in range(cfg.mapping_layers)}
    mapping = PersistentRecord("MappingNetwork", _module_state(
        buffers={"w_avg": sd["mapping.w_avg"]}, modules=mapping_modules, num_ws=cfg.num_ws, w_avg_beta=0.995))

    def layer(prefix: str, res: int, up: bool) -> PersistentRecord:
        return PersistentRecord("SynthesisLayer", _module_state(
            {"weight": _param(sd[f"{prefix}.weight"]), "noise_strength": _param(sd[f"{prefix}.noise_strength"]),
             "bias": _param(sd[f"{prefix}.bias"])},
            {"resample_filter": fir.clone(), "noise_const": sd[f"{prefix}.noise_const"]},
            {"affine": fc(f"{prefix}.affine", 1.0, "linear")},
            resolution=res, up=2 if up else 1, act_gain=np.float64(np.sqrt(2)), conv_clamp=cfg.conv_clamp))

    blocks = {}
    for res in cfg.block_resolutions:
        b = f"synthesis.b{res}"
        params = {"const": _param(sd[f"{b}.const"])} if res == 4 else {}
        modules = {} if res == 4 else {"conv0": layer(f"{b}.conv0", res, True)}
        modules["conv1"] = layer(f"{b}.conv1", res, False)
        modules["torgb"] = PersistentRecord("ToRGBLayer", _module_state(
            {"weight": _param(sd[f"{b}.torgb.weight"]), "bias": _param(sd[f"{b}.torgb.bias"])},
            modules={"affine": fc(f"{b}.torgb.affine", 1.0, "linear")},
            weight_gain=np.float64(1 / np.sqrt(sd[f"{b}.torgb.weight"].shape[1]))))
        blocks[f"b{res}"] = PersistentRecord("SynthesisBlock", _module_state(
            params, {"resample_filter": fir.clone()}, modules, resolution=res, architecture="skip"))
    if block_names is not None:  # e.g. StyleGAN3's layer names
        blocks = dict(zip(block_names, blocks.values()))
    synthesis = PersistentRecord("SynthesisNetwork", _module_state(modules=blocks))

    kwargs = EasyDict(
        z_dim=cfg.z_dim, c_dim=0, w_dim=cfg.w_dim, img_resolution=cfg.img_resolution, img_channels=cfg.img_channels,
        mapping_kwargs=EasyDict(num_layers=cfg.mapping_layers),
        synthesis_kwargs=EasyDict(channel_base=cfg.channel_base, channel_max=cfg.channel_max, num_fp16_res=0,
                                  conv_clamp=cfg.conv_clamp, architecture="skip"))
    if init_kwargs:
        kwargs.update(init_kwargs)
    return PersistentRecord("Generator", _module_state(
        modules={"synthesis": synthesis, "mapping": mapping}, _init_kwargs=kwargs))


def write_nvidia_pickle(G: Generator, path, **record_kwargs) -> None:
    with nvidia_modules():
        g_ema = nvidia_generator_record(G, **record_kwargs)
        disc = PersistentRecord("Discriminator", _module_state(
            {"dummy": _param(torch.randn(3))}, _init_kwargs=EasyDict(c_dim=0)))
        snapshot = dict(training_set_kwargs=EasyDict(path="data.zip", resolution=G.img_resolution),
                        G=nvidia_generator_record(G), D=disc, G_ema=g_ema, augment_pipe=None)
        with open(path, "wb") as f:
            pickle.dump(snapshot, f, protocol=4)


def write_pickle_of(obj, path) -> None:
    with nvidia_modules(), open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
