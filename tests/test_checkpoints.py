import os
import pickle

import numpy as np
import pytest
import torch
from checkpoint_writers import (EasyDict, nvidia_generator_record, nvidia_modules,
                                write_nvidia_pickle, write_pickle_of, write_rosinality)
from conftest import randomized_generator

from rls_lightning.stylegan import CheckpointError, load_generator, save_generator


def _render(G, ws):
    with torch.no_grad():
        return G.synthesis(ws, noise_mode="const")


@pytest.mark.parametrize("config", [
    dict(img_resolution=16),
    dict(img_resolution=32, mapping_layers=1, z_dim=24),
    dict(img_resolution=8, conv_clamp=0.5),
])
def test_rosinality_and_nvidia_files_load_to_identical_generators(tmp_path, config):
    G = randomized_generator(seed=3, **config)
    write_nvidia_pickle(G, tmp_path / "snapshot.pkl")
    from_nvidia = load_generator(tmp_path / "snapshot.pkl")
    assert from_nvidia.config == G.config  # hyper-parameters come from init_kwargs, conv_clamp included
    ws = G.w_avg + torch.randn(2, G.num_ws, G.w_dim)
    torch.testing.assert_close(_render(from_nvidia, ws), _render(G, ws), atol=0, rtol=0)
    torch.testing.assert_close(from_nvidia.w_avg, G.w_avg)

    if G.config.conv_clamp is None:  # rosinality never clamps
        write_rosinality(G, tmp_path / "g.pt")
        from_rosinality = load_generator(tmp_path / "g.pt")
        torch.testing.assert_close(_render(from_rosinality, ws), _render(from_nvidia, ws), atol=0, rtol=0)
        torch.testing.assert_close(from_rosinality.w_avg, G.w_avg)
        z = torch.randn(3, G.z_dim)
        with torch.no_grad():
            torch.testing.assert_close(from_rosinality.mapping(z), from_nvidia.mapping(z), atol=0, rtol=0)


def test_rosinality_hyperparameters_are_inferred_from_shapes(tmp_path):
    # rosinality's own layout at 64 px with channel_multiplier 1 (C(64) = 256) and 3 mapping layers.
    G = randomized_generator(img_resolution=64, channel_base=16384, channel_max=512, mapping_layers=3,
                             z_dim=16, w_dim=16)
    write_rosinality(G, tmp_path / "g.pt", with_latent_avg=False)
    loaded = load_generator(tmp_path / "g.pt")
    assert (loaded.img_resolution, loaded.num_ws, loaded.config.mapping_layers) == (64, 10, 3)
    assert loaded.config.channels(64) == 256 and loaded.w_avg is None


def test_official_nvidia_reference_outputs(tmp_path):
    """Tensors and images produced by NVIDIA's stylegan2-ada-pytorch itself (see tests/fixtures/README.md)."""
    fixture = os.path.join(os.path.dirname(__file__), "fixtures", "nvidia_r16.pt")
    ref = torch.load(fixture, weights_only=True)
    from rls_lightning.stylegan.loading import build_generator
    from rls_lightning.stylegan.networks import GeneratorConfig
    G = build_generator(fixture, GeneratorConfig(**ref["config"]),
                        {k: v for k, v in ref["state_dict"].items() if not k.endswith("resample_filter")})
    with torch.no_grad():
        torch.testing.assert_close(G.mapping(ref["z"]), ref["w"], atol=1e-4, rtol=0)
        torch.testing.assert_close(G.synthesis(ref["ws"], noise_mode="const"), ref["img_const"], atol=1e-4, rtol=0)
        torch.testing.assert_close(G.synthesis(ref["ws"], noise_mode="none"), ref["img_none"], atol=1e-4, rtol=0)
    # and through a snapshot pickle written around those tensors
    write_nvidia_pickle(G, tmp_path / "official.pkl")
    reloaded = load_generator(tmp_path / "official.pkl")
    torch.testing.assert_close(_render(reloaded, ref["ws"]), ref["img_const"], atol=1e-4, rtol=0)


def test_native_round_trip_is_exact(tmp_path):
    G = randomized_generator(img_resolution=32, conv_clamp=256.0)
    save_generator(G, tmp_path / "ours.pt")
    loaded = load_generator(tmp_path / "ours.pt")
    assert loaded.config == G.config
    ws = G.w_avg + torch.randn(2, G.num_ws, G.w_dim)
    torch.testing.assert_close(_render(loaded, ws), _render(G, ws), atol=0, rtol=0)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


class _Exploit:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickle_with_forbidden_global_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    write_pickle_of({"G_ema": _Exploit(marker)}, tmp_path / "evil.pkl")
    with open(tmp_path / "evil.pkl", "rb") as f:  # the file really would run the command
        assert b"system" in f.read()
    with pytest.raises(CheckpointError, match=r"evil\.pkl: refusing to load global '(posix|os)\.system'"):
        load_generator(tmp_path / "evil.pkl")
    assert not marker.exists()


def test_exploit_nested_inside_a_network_is_refused(tmp_path):
    G = randomized_generator(img_resolution=8)
    marker = tmp_path / "pwned"
    with nvidia_modules():
        record = nvidia_generator_record(G)
        record.meta["state"]["_modules"]["mapping"].meta["state"]["evil"] = _Exploit(marker)
    write_pickle_of({"G_ema": record}, tmp_path / "nested.pkl")
    with pytest.raises(CheckpointError, match="refusing to load global"):
        load_generator(tmp_path / "nested.pkl")
    assert not marker.exists()


def test_torch_file_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"g_ema": _Exploit(marker)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"evil\.pt: refused by the safe torch loader"):
        load_generator(tmp_path / "evil.pt")
    assert not marker.exists()


@pytest.mark.parametrize("name,make,message", [
    ("missing.pt", None, "no such file"),
    ("empty.pt", lambda p: p.write_bytes(b""), "empty file"),
    ("text.pt", lambda p: p.write_text("hello"), "unrecognised file header"),
    ("list.pt", lambda p: torch.save([1, 2], p), "expected a dict"),
    ("other.pt", lambda p: torch.save({"model": {}}, p), "unknown checkpoint layout"),
])
def test_unusable_files_get_one_clear_error(tmp_path, name, make, message):
    path = tmp_path / name
    if make:
        make(path)
    with pytest.raises(CheckpointError, match=message) as info:
        load_generator(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_truncated_files_are_reported(tmp_path):
    G = randomized_generator(img_resolution=8)
    write_nvidia_pickle(G, tmp_path / "full.pkl")
    write_rosinality(G, tmp_path / "full.pt")
    for name in ("full.pkl", "full.pt"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / f"cut-{name}").write_bytes(data[: len(data) // 2])
        with pytest.raises(CheckpointError, match=rf"cut-{name}: .*(corrupt|not a readable pickle)"):
            load_generator(tmp_path / f"cut-{name}")


@pytest.mark.parametrize("record_kwargs,message", [
    (dict(init_kwargs={"c_dim": 10}), "conditional generator"),
    (dict(init_kwargs={"synthesis_kwargs": EasyDict(architecture="resnet")}), "architecture 'resnet'"),
    (dict(block_names=["input", "L0_36_512", "L1_36_512"]), "StyleGAN3"),
])
def test_unsupported_networks_are_refused(tmp_path, record_kwargs, message):
    G = randomized_generator(img_resolution=8)
    with nvidia_modules():
        record = nvidia_generator_record(G, **record_kwargs)
    write_pickle_of({"G_ema": record, "G": record}, tmp_path / "other.pkl")
    with pytest.raises(CheckpointError, match=message):
        load_generator(tmp_path / "other.pkl")


def test_snapshot_without_g_ema_is_refused_not_silently_using_g(tmp_path):
    G = randomized_generator(img_resolution=8)
    with nvidia_modules():
        write_pickle_of({"G": nvidia_generator_record(G)}, tmp_path / "g_only.pkl")
    with pytest.raises(CheckpointError, match="no 'G_ema'"):
        load_generator(tmp_path / "g_only.pkl")


def test_tensorflow_pickle_gets_a_conversion_hint(tmp_path):
    # What an original TF pickle starts with: a global from dnnlib.tflib.
    payload = b"\x80\x02cdnnlib.tflib.network\n_import_module\nq\x00."
    (tmp_path / "tf.pkl").write_bytes(payload)
    with pytest.raises(CheckpointError, match="TensorFlow"):
        load_generator(tmp_path / "tf.pkl")


def test_wrong_shapes_are_named(tmp_path):
    G = randomized_generator(img_resolution=16)
    with nvidia_modules():
        record = nvidia_generator_record(G)
        torgb = record.meta["state"]["_modules"]["synthesis"].meta["state"]["_modules"]["b8"]
        torgb.meta["state"]["_modules"]["torgb"].meta["state"]["_parameters"]["bias"] = torch.nn.Parameter(
            torch.zeros(4))
    write_pickle_of({"G_ema": record}, tmp_path / "shape.pkl")
    with pytest.raises(CheckpointError, match=r"'synthesis\.b8\.torgb\.bias' has shape \(4,\)"):
        load_generator(tmp_path / "shape.pkl")


def test_numpy_scalars_of_numpy1_pickles_are_accepted(tmp_path):
    # Official pickles were written with numpy 1.x and name numpy.core.multiarray.scalar.
    blob = pickle.dumps({"G_ema": None, "x": np.float64(0.5)}, protocol=3)  # text GLOBAL opcodes
    blob = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    from rls_lightning.stylegan.safe_unpickler import restricted_load
    import io
    assert restricted_load(io.BytesIO(blob))["x"] == 0.5


def test_legacy_torch_serialization_is_read(tmp_path):
    G = randomized_generator(img_resolution=8)
    from checkpoint_writers import rosinality_state
    torch.save({"g_ema": rosinality_state(G), "latent_avg": G.w_avg}, tmp_path / "old.pt",
               _use_new_zipfile_serialization=False)
    ws = G.w_avg + torch.randn(1, G.num_ws, G.w_dim)
    torch.testing.assert_close(_render(load_generator(tmp_path / "old.pt"), ws), _render(G, ws))
