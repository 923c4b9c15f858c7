import os
import pickle

import numpy as np
import pytest
import torch
from conftest import randomized_generator
from support.checkpoint_writers import (EasyDict, nvidia_generator_record, nvidia_modules, write_nvidia_pickle,
                                        write_pickle_of, write_rosinality)

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


def test_official_rosinality_reference_outputs():
    """A checkpoint and images made by rosinality's stylegan2-pytorch itself (tests/fixtures/README.md)."""
    fixtures = os.path.join(os.path.dirname(__file__), "fixtures")
    G = load_generator(os.path.join(fixtures, "rosinality_r16.pt"))
    checkpoint = torch.load(os.path.join(fixtures, "rosinality_r16.pt"), weights_only=True)
    ref = torch.load(os.path.join(fixtures, "rosinality_r16_outputs.pt"), weights_only=True)
    # inferred from the shapes: 2 mapping layers of 32, channels 32 / 32 / 16 at 4 / 8 / 16 px
    assert (G.img_resolution, G.z_dim, G.w_dim, G.config.mapping_layers) == (16, 32, 32, 2)
    assert [G.config.channels(res) for res in (4, 8, 16)] == [32, 32, 16]
    torch.testing.assert_close(G.w_avg, checkpoint["latent_avg"], atol=0, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(G.mapping(ref["z"]), ref["w"], atol=1e-5, rtol=0)
        torch.testing.assert_close(G(ref["z"]), ref["img_z_const"], atol=1e-4, rtol=0)
        torch.testing.assert_close(G(ref["z"], truncation_psi=0.7), ref["img_z_trunc"], atol=1e-4, rtol=0)
        for fused in (True, False):
            G.synthesis.fused_modconv = fused
            torch.testing.assert_close(G.synthesis(ref["ws"]), ref["img_ws_const"], atol=1e-4, rtol=0)
            torch.testing.assert_close(G.synthesis(ref["ws"], noise=ref["noise"]), ref["img_ws_noise"], atol=1e-4,
                                       rtol=0)
            torch.testing.assert_close(G.synthesis(ref["ws"], noise_mode="none"), ref["img_ws_zero_noise"],
                                       atol=1e-4, rtol=0)


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
    with pytest.raises(CheckpointError, match=r"evil\.pkl: refused: the file contains Python objects other than "
                                              r"tensors \(global '(posix|os)\.system'\); rls-lightning never executes"):
        load_generator(tmp_path / "evil.pkl")
    assert not marker.exists()


def test_exploit_nested_inside_a_network_is_refused(tmp_path):
    G = randomized_generator(img_resolution=8)
    marker = tmp_path / "pwned"
    with nvidia_modules():
        record = nvidia_generator_record(G)
        record.meta["state"]["_modules"]["mapping"].meta["state"]["evil"] = _Exploit(marker)
    write_pickle_of({"G_ema": record}, tmp_path / "nested.pkl")
    with pytest.raises(CheckpointError, match="refused: the file contains Python objects other than tensors"):
        load_generator(tmp_path / "nested.pkl")
    assert not marker.exists()


def test_torch_file_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"g_ema": _Exploit(marker)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError) as refused:
        load_generator(tmp_path / "evil.pt")
    # torch's own refusal is six lines with ANSI codes and advice to turn the protection off: none of it is shown
    assert str(refused.value) == (f"{tmp_path / 'evil.pt'}: refused: the file contains Python objects other than "
                                  "tensors (global 'posix.system'); rls-lightning never executes code from checkpoints")
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
        with pytest.raises(CheckpointError) as info:
            load_generator(tmp_path / f"cut-{name}")
        assert str(info.value) == f"{tmp_path / f'cut-{name}'}: " + {
            "full.pkl": "truncated pickle data (the file was cut short?)",
            "full.pt": "truncated or damaged torch file: its zip directory is missing (an interrupted download or "
                       "copy?)"}[name]


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
    from support.checkpoint_writers import rosinality_state
    torch.save({"g_ema": rosinality_state(G), "latent_avg": G.w_avg}, tmp_path / "old.pt",
               _use_new_zipfile_serialization=False)
    ws = G.w_avg + torch.randn(1, G.num_ws, G.w_dim)
    torch.testing.assert_close(_render(load_generator(tmp_path / "old.pt"), ws), _render(G, ws))


# ------------------------------------------------------------------------ untrusted files (issue 16, item 6)

from rls_lightning.flow.checkpoint import (FlowBundle, FlowCheckpointError, load_flow, save_flow,  # noqa: E402
                                           state_dict_shapes as flow_state_dict_shapes)
from rls_lightning.flow.maf import FlowConfig, LatentFlow  # noqa: E402
from rls_lightning.stylegan import Generator, GeneratorConfig  # noqa: E402
from rls_lightning.stylegan.loading import state_dict_shapes  # noqa: E402


@pytest.mark.parametrize("config", [
    dict(img_resolution=4, z_dim=3, w_dim=5, mapping_layers=1, channel_base=16, channel_max=8),
    dict(img_resolution=64, z_dim=16, w_dim=24, img_channels=1, channel_base=512, channel_max=32),
    dict(img_resolution=32, z_dim=8, w_dim=8, mapping_layers=3, channel_base=32, channel_max=64),  # C(32) = 1
])
def test_generator_shapes_are_computed_without_building_and_match_the_network(config):
    config = GeneratorConfig(**config)
    built = {k: tuple(v.shape) for k, v in Generator(config).state_dict().items()}
    assert state_dict_shapes(config) == built


@pytest.mark.parametrize("config", [
    dict(features=5, num_blocks=2, hidden_features=16),
    dict(features=3, num_blocks=3, hidden_features=7, made_residual_blocks=0, batch_norm=False),
    dict(features=1, num_blocks=1, hidden_features=4, made_residual_blocks=3),
])
def test_flow_shapes_are_computed_without_building_and_match_the_network(config):
    config = FlowConfig(**config)
    built = {k: tuple(v.shape) for k, v in LatentFlow(config).state_dict().items()}
    assert flow_state_dict_shapes(config) == built


@pytest.mark.parametrize("field,value,message", [
    ("img_resolution", 2 ** 15, "img_resolution must be an integer from 4 to 4096, got 32768"),
    ("img_resolution", 48, "img_resolution must be a power of two from 4 to 4096, got 48"),
    ("img_resolution", 2, "img_resolution must be an integer from 4 to 4096, got 2"),
    ("z_dim", -1, "z_dim must be an integer from 1 to 8192, got -1"),
    ("w_dim", 0, "w_dim must be an integer from 1 to 8192, got 0"),
    ("w_dim", 2 ** 200, "w_dim must be an integer from 1 to 8192, got an integer of 201 bits"),
    ("img_channels", True, "img_channels must be an integer, got bool"),
    ("mapping_layers", 8.0, "mapping_layers must be an integer, got float"),
    ("channel_base", 0, "channel_base must be an integer from 1 to 1073741824, got 0"),
    ("channel_base", 512, "channel_base 512 leaves no channels at 1024 px (channel_base // resolution must be >= 1, "
                          "so channel_base >= 1024)"),
    ("channel_max", "512", "channel_max must be an integer, got str"),
    ("mapping_lr_multiplier", 0.0, "mapping_lr_multiplier must be a finite number > 0, got 0.0"),
    ("mapping_lr_multiplier", 10 ** 400, "mapping_lr_multiplier must be a finite number > 0, got inf"),
    ("conv_clamp", float("nan"), "conv_clamp must be a finite number > 0, got nan"),
    ("conv_clamp", torch.tensor(256.0), "conv_clamp must be a number, got Tensor"),
])
def test_generator_config_refuses_every_implausible_field(field, value, message):
    with pytest.raises(ValueError) as info:
        GeneratorConfig(**{field: value})
    assert str(info.value) == message


def test_generator_config_stores_plain_numbers():
    config = GeneratorConfig(z_dim=np.int64(7), conv_clamp=256, mapping_lr_multiplier=np.float32(0.5))
    assert type(config.z_dim) is int and type(config.conv_clamp) is float and config.mapping_lr_multiplier == 0.5


@pytest.mark.parametrize("field,value,message", [
    ("features", 0, "features must be an integer from 1 to 8192, got 0"),
    ("num_blocks", 0, "num_blocks must be an integer from 1 to 64, got 0"),
    ("hidden_features", 10 ** 9, "hidden_features must be an integer from 1 to 16384, got 1000000000"),
    ("made_residual_blocks", -1, "made_residual_blocks must be an integer from 0 to 16, got -1"),
    ("batch_norm", 1, "batch_norm must be true or false, got int"),
])
def test_flow_config_refuses_every_implausible_field(field, value, message):
    with pytest.raises(ValueError) as info:
        FlowConfig(**{field: value})
    assert str(info.value) == message


def test_error_messages_are_one_clean_line():
    err = CheckpointError("odd\nname.pt", "torch said \x1b[1mbold\x1b[0m\n\tand more")
    assert str(err) == "odd\\nname.pt: torch said bold and more"
    assert str(FlowCheckpointError("f.pt", "a\nb")) == "f.pt: a b"


def _expect(path, message, loader=load_generator):
    with pytest.raises(CheckpointError if loader is load_generator else FlowCheckpointError) as info:
        loader(path)
    assert str(info.value) == f"{path}: {message}"


def test_folders_and_special_files_are_not_checkpoints(tmp_path):
    _expect(tmp_path, "a folder, not a checkpoint file")
    _expect(tmp_path, "a folder, not a flow checkpoint file", load_flow)
    os.mkfifo(tmp_path / "pipe")  # opening it would block forever
    _expect(tmp_path / "pipe", "not a regular file")
    _expect(tmp_path / "pipe", "not a regular file", load_flow)


@pytest.mark.parametrize("fmt", ["native", "nvidia", "rosinality", "legacy"])
def test_damaged_files_only_ever_raise_checkpoint_errors(tmp_path, fmt):
    """Cuts and flipped bytes anywhere in each format: the load succeeds (a flipped weight) or is refused in one
    line; nothing else (OSError, struct.error, KeyError, ... from torch's readers before) reaches the caller."""
    G = randomized_generator(img_resolution=8)
    path = tmp_path / "good"
    if fmt == "native":
        save_generator(G, path)
    elif fmt == "nvidia":
        write_nvidia_pickle(G, path)
    elif fmt == "rosinality":
        write_rosinality(G, path)
    else:
        from support.checkpoint_writers import rosinality_state
        torch.save({"g_ema": rosinality_state(G)}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    outcomes = set()
    for position in rng.choice(len(data), size=24, replace=False):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        for blob in (data[:position], bytes(damaged)):
            (tmp_path / "bad").write_bytes(blob)
            try:
                load_generator(tmp_path / "bad")
                outcomes.add("loaded")
            except CheckpointError as err:
                assert "\n" not in str(err) and "weights_only" not in str(err) and "\x1b" not in str(err)
                outcomes.add("refused")
    assert "refused" in outcomes


def test_module_tree_must_be_a_tree(tmp_path):
    G = randomized_generator(img_resolution=8)
    with nvidia_modules():
        record = nvidia_generator_record(G)
        modules = record.meta["state"]["_modules"]
        modules["synthesis"].meta["state"]["_modules"]["b4"].meta["state"]["_modules"]["again"] = modules["mapping"]
    write_pickle_of({"G_ema": record}, tmp_path / "shared.pkl")
    _expect(tmp_path / "shared.pkl", "the network's module tree is not a tree: 'mapping' is reached twice (a module "
                                     "that contains itself?)")


def test_nvidia_kwargs_of_the_wrong_type_are_named(tmp_path):
    G = randomized_generator(img_resolution=8)
    for kwargs, message in [
        ({"c_dim": "ten"}, "G_ema.init_kwargs: c_dim is 'ten', expected an integer >= 0"),
        ({"mapping_kwargs": [1, 2]}, "G_ema.init_kwargs: 'mapping_kwargs' is a list, expected a dict"),
        ({"synthesis_kwargs": EasyDict(architecture=["skip"])}, "synthesis architecture a list is not supported "
                                                                "(only 'skip')"),
        ({"z_dim": None}, "G_ema.init_kwargs lacks z_dim"),
        ({"z_dim": torch.tensor(32)}, "implausible G_ema.init_kwargs: z_dim must be an integer, got Tensor"),
    ]:
        with nvidia_modules():
            record = nvidia_generator_record(G, init_kwargs=kwargs)
        write_pickle_of({"G_ema": record}, tmp_path / "kw.pkl")
        _expect(tmp_path / "kw.pkl", message)


def test_w_avg_of_another_size_is_refused(tmp_path):
    G = randomized_generator(img_resolution=8)
    from support.checkpoint_writers import rosinality_state
    torch.save({"g_ema": rosinality_state(G), "latent_avg": torch.zeros(G.w_dim + 1)}, tmp_path / "avg.pt")
    _expect(tmp_path / "avg.pt", f"'mapping.w_avg' has shape ({G.w_dim + 1},), expected ({G.w_dim},)")


def test_integer_weights_are_refused(tmp_path):
    G = randomized_generator(img_resolution=8)
    save_generator(G, tmp_path / "g.pt")
    payload = torch.load(tmp_path / "g.pt", weights_only=True)
    payload["state_dict"]["mapping.fc0.bias"] = payload["state_dict"]["mapping.fc0.bias"].long()
    torch.save(payload, tmp_path / "int.pt")
    _expect(tmp_path / "int.pt", "tensor 'mapping.fc0.bias' has dtype torch.int64, expected floating point")


def _flow_file(tmp_path, **changes):
    flow = LatentFlow(FlowConfig(features=4, hidden_features=8, num_blocks=2)).eval()
    save_flow(FlowBundle(flow=flow, w_init=torch.zeros(4), generator_fingerprint="x"), tmp_path / "flow.pt")
    payload = torch.load(tmp_path / "flow.pt", weights_only=True)
    payload.update(changes)
    return payload


@pytest.mark.parametrize("change,message", [
    (lambda p: p["state_dict"].update({"w_std": -torch.ones(4)}), "'w_std' has values <= 0"),
    (lambda p: p.update(w_init=torch.zeros(5)), "'w_init' is (5,), expected a tensor of shape (4,)"),
    (lambda p: p.update(w_dim=8), "'w_dim' 8 disagrees with its flow configuration (features=4)"),
    (lambda p: p.update(version="2"), "flow format version 'str' is not supported"),
    (lambda p: p["state_dict"]["transform._transforms.2._permutation"].copy_(torch.arange(4)),
     "'transform._transforms.2._permutation' differs from the one its flow configuration implies (a damaged or "
     "altered file)"),
    (lambda p: p["state_dict"].update({"transform._transforms.0.autoregressive_net.initial_layer.bias":
                                       torch.zeros(9)}),
     "'transform._transforms.0.autoregressive_net.initial_layer.bias' has shape (9,), its flow configuration "
     "implies (8,)"),
    (lambda p: p["flow_config"].update(colour="red"), "unknown flow config field(s): colour"),
    (lambda p: p.update(generator_fingerprint=None), "'generator_fingerprint' is of type NoneType, not a string"),
])
def test_implausible_flow_files_are_refused(tmp_path, change, message):
    payload = _flow_file(tmp_path)
    change(payload)
    torch.save(payload, tmp_path / "bad.pt")
    _expect(tmp_path / "bad.pt", message, load_flow)


def test_version_1_flow_with_altered_masks_is_refused(tmp_path):
    payload = _flow_file(tmp_path, version=1)
    flow = LatentFlow(FlowConfig(**payload["flow_config"]))
    masks = {k: v for k, v in flow.state_dict().items() if k.endswith(".mask")}
    payload["state_dict"].update(masks)
    torch.save(payload, tmp_path / "v1.pt")
    load_flow(tmp_path / "v1.pt")  # the genuine masks load
    key = next(iter(masks))
    payload["state_dict"][key] = torch.ones_like(masks[key])  # no longer autoregressive
    torch.save(payload, tmp_path / "v1-altered.pt")
    _expect(tmp_path / "v1-altered.pt", f"'{key}' differs from the one its flow configuration implies (a damaged "
                                        "or altered file)", load_flow)
