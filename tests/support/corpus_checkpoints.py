"""Issue 16's corpus, item 6: hostile checkpoint files given to the commands as a user would give them.

Every case runs a real command (``invert``, ``train_flow`` or ``inspect_generator``) on one bad generator or flow
file and expects exit code 2 and exactly one ``error:`` line holding the file's name *and* the full reason, so each
case pins the message. The memory bombs (files that declare a model far larger than what they hold) are first
loaded in a child process whose address space is capped; its peak resident memory must stay within
``BOMB_RSS_LIMIT``, so a regression fails that assertion instead of allocating gigabytes in the test process.

Good inputs are tiny and made once per session: the toy generator of ``inversion_fixtures`` (32 px, w_dim 16) and
an untrained flow for it (a flow is loaded, never fitted, in these cases: every case fails before inversion).
"""
from __future__ import annotations

import functools
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from PIL import Image
from support.checkpoint_writers import (EasyDict, PersistentRecord, _module_state, nvidia_generator_record,
                                        nvidia_modules, rosinality_state, write_nvidia_pickle, write_pickle_of,
                                        write_rosinality)
from support.hostile_corpus import Case
from support.inversion_fixtures import toy_generator

from rls_lightning.flow.checkpoint import (FLOW_FORMAT, FlowBundle, mapping_fingerprint, save_flow,
                                           state_dict_shapes)
from rls_lightning.flow.lightning_module import flow_config_for
from rls_lightning.flow.maf import FlowConfig, LatentFlow
from rls_lightning.stylegan import Generator, GeneratorConfig
from rls_lightning.stylegan.loading import NATIVE_FORMAT

BOMB_RSS_LIMIT = 32 * 2 ** 20  # bytes of peak-RSS growth allowed while a bomb is refused (the bombs claim ~2 GB)
BOMB_ADDRESS_SPACE = 3 * 2 ** 30  # the child's cap above its size after imports: a regression fails, no OOM
NEVER_EXECUTES = "rls-lightning never executes code from checkpoints"


# ------------------------------------------------------------------------------------------- good inputs


@functools.cache
def _good_generator() -> Generator:
    G = toy_generator()
    G.w_avg = torch.linspace(-1, 1, G.w_dim)  # NVIDIA files always carry one
    return G


@functools.cache
def _good_generator_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save(_native_payload(), buffer)
    return buffer.getvalue()


def _native_payload(**changes) -> dict:
    """What ``save_generator`` writes for the toy generator, with ``changes`` to its top-level entries."""
    G = _good_generator()
    payload = {"format": NATIVE_FORMAT, "version": 1, "config": G.config.to_dict(),
               "state_dict": {k: v.detach().clone() for k, v in G.state_dict().items()}, "extra": {}}
    payload.update(changes)
    return payload


def _good_flow_bundle(w_dim: int = 16) -> FlowBundle:
    G = _good_generator()
    flow = LatentFlow(flow_config_for(w_dim, num_blocks=1, hidden_features=16)).eval()
    return FlowBundle(flow=flow, w_init=torch.zeros(w_dim), generator_fingerprint=mapping_fingerprint(G.mapping))


def good_generator(folder: Path) -> Path:
    path = folder / "generator.pt"
    path.write_bytes(_good_generator_bytes())
    return path


def good_flow(folder: Path) -> Path:
    path = folder / "flow.pt"
    save_flow(_good_flow_bundle(), path)
    return path


def lr_folder(folder: Path) -> Path:
    """One valid 8x8 PNG (x4 for the 32 px toy generator)."""
    lr = folder / "lr"
    lr.mkdir()
    Image.new("RGB", (8, 8), (120, 90, 60)).save(lr / "face.png")
    return lr


# -------------------------------------------------------------------------------------- command lines


def invert_with(make_generator=good_generator, make_flow=good_flow):
    def setup(folder: Path) -> list[str]:
        return ["--lr-dir", str(lr_folder(folder)), "--out-dir", str(folder / "out"),
                "--generator", str(make_generator(folder)), "--flow", str(make_flow(folder)),
                "--steps", "1", "--refine-steps", "1", "--accelerator", "cpu"]
    return setup


def train_flow_with(make_generator):
    def setup(folder: Path) -> list[str]:
        return ["--generator", str(make_generator(folder)), "--output", str(folder / "f.pt"),
                "--run-dir", str(folder / "run"), "--num-samples", "64", "--batch-size", "32", "--val-samples", "32",
                "--stats-samples", "64", "--report", "false", "--accelerator", "cpu"]
    return setup


def inspect_with(make_generator):
    def setup(folder: Path) -> list[str]:
        return [str(make_generator(folder))]
    return setup


# ------------------------------------------------------------------------------------------ bad files


def truncated_native(folder: Path) -> Path:
    path = folder / "cut.pt"
    data = _good_generator_bytes()
    path.write_bytes(data[: len(data) // 2])  # an interrupted download
    return path


def truncated_nvidia(folder: Path) -> Path:
    write_nvidia_pickle(_good_generator(), folder / "full.pkl")
    data = (folder / "full.pkl").read_bytes()
    (folder / "full.pkl").unlink()
    path = folder / "cut.pkl"
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_legacy(folder: Path) -> Path:
    buffer = io.BytesIO()
    torch.save({"g_ema": rosinality_state(_good_generator())}, buffer, _use_new_zipfile_serialization=False)
    path = folder / "old-cut.pt"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 2 // 3])
    return path


def native_with_config(name: str, **config):
    def make(folder: Path) -> Path:
        path = folder / name
        torch.save(_native_payload(config={**_good_generator().config.to_dict(), **config}), path)
        return path
    return make


def nvidia_with_init_kwargs(name: str, **kwargs):
    def make(folder: Path) -> Path:
        path = folder / name
        write_nvidia_pickle(_good_generator(), path, init_kwargs=kwargs)
        return path
    return make


def rosinality_zero_channels(folder: Path) -> Path:
    """A rosinality file whose convolutions have no channels at all: the inferred channel_max is 0."""
    state = rosinality_state(_good_generator())
    state = {k: (v[:, :0] if k.endswith("conv.weight") and not k.startswith("to_rgb") else v)
             for k, v in state.items()}
    path = folder / "nochannels.pt"
    torch.save({"g_ema": state}, path)
    return path


def nvidia_self_referencing(folder: Path) -> Path:
    """``mapping.fc0`` shares its ``_modules`` dict with ``mapping``: the module tree contains itself."""
    with nvidia_modules():
        record = nvidia_generator_record(_good_generator())
        mapping = record.meta["state"]["_modules"]["mapping"]
        mapping.meta["state"]["_modules"]["fc0"].meta["state"]["_modules"] = mapping.meta["state"]["_modules"]
    path = folder / "loop.pkl"
    write_pickle_of({"G_ema": record}, path)
    return path


def write_native_resolution_bomb(path: Path) -> None:
    """The 1.5 kB file of the report: ours, declaring 2^15 px, with no tensors."""
    torch.save(_native_payload(config={**_good_generator().config.to_dict(), "img_resolution": 2 ** 15},
                               state_dict={}), path)
    assert path.stat().st_size < 2000


def _nvidia_without_tensors(path: Path, resolution: int) -> None:
    with nvidia_modules():
        synthesis = PersistentRecord("SynthesisNetwork", _module_state(
            modules={"b4": PersistentRecord("SynthesisBlock", _module_state(), "")}), "")
        g_ema = PersistentRecord("Generator", _module_state(modules={"synthesis": synthesis}, _init_kwargs=EasyDict(
            z_dim=512, w_dim=512, c_dim=0, img_resolution=resolution, img_channels=3)), "")
    write_pickle_of({"G_ema": g_ema}, path)


def write_nvidia_resolution_bomb(path: Path) -> None:
    """The ~500-byte pickle of the report: NVIDIA's layout, 2^15 px in init_kwargs, no tensors."""
    _nvidia_without_tensors(path, 2 ** 15)
    assert path.stat().st_size < 1000


def write_nvidia_empty_4096(path: Path) -> None:
    """Within every bound (4096 px, the defaults), but holding no tensors: refused before a generator is built."""
    _nvidia_without_tensors(path, 4096)


BROADCAST_CONFIG = GeneratorConfig(img_resolution=1024, z_dim=2048, w_dim=2048, mapping_layers=64,
                                   channel_base=2 ** 20, channel_max=1024)


@functools.cache
def _broadcast_shapes() -> dict[str, torch.Size]:
    with torch.device("meta"):  # the shapes, from the network itself, without memory
        return {k: v.shape for k, v in Generator(BROADCAST_CONFIG).state_dict().items()}


def write_native_broadcast_bomb(path: Path) -> None:
    """Every tensor of a 1.9 GB generator (486 M parameters), each a stride-0 view of one stored float: ~60 kB."""
    one = torch.ones(())
    torch.save(_native_payload(config=BROADCAST_CONFIG.to_dict(),
                               state_dict={k: one.expand(shape) for k, shape in _broadcast_shapes().items()}), path)


def torch_file_with_code(folder: Path) -> Path:
    path = folder / "evil.pt"
    torch.save({"format": NATIVE_FORMAT, "version": 1, "config": _Exploit(folder / "pwned")}, path)
    return path


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def nothing_ran(folder: Path, _outcome) -> None:
    assert not (folder / "pwned").exists()


def folder_as_generator(folder: Path) -> Path:
    (folder / "models").mkdir()
    return folder / "models"


def zero_bytes(folder: Path) -> Path:
    (folder / "empty.pt").write_bytes(b"")
    return folder / "empty.pt"


def random_bytes(folder: Path) -> Path:
    data = bytes(random.Random(1).randrange(256) for _ in range(4096))
    (folder / "noise.pt").write_bytes(b"\x13" + data)  # a first byte that is no known header
    return folder / "noise.pt"


def random_bytes_after_pickle_header(folder: Path) -> Path:
    data = bytes(random.Random(2).randrange(256) for _ in range(4096))
    (folder / "noise.pkl").write_bytes(b"\x80\x04" + data)
    return folder / "noise.pkl"


def foreign_zip(folder: Path) -> Path:
    with zipfile.ZipFile(folder / "photos.pt", "w") as archive:
        archive.writestr("photos/readme.txt", "not a model")
    return folder / "photos.pt"


def native_with_nan(folder: Path) -> Path:
    state = _native_payload()["state_dict"]
    state["synthesis.b8.conv0.weight"][0, 0, 1, 1] = float("nan")
    path = folder / "nan.pt"
    torch.save(_native_payload(state_dict=state), path)
    return path


def rosinality_with_inf(folder: Path) -> Path:
    G = toy_generator()
    G.w_avg = torch.zeros(G.w_dim)
    with torch.no_grad():
        G.mapping.fc1.bias[3] = float("inf")
    path = folder / "inf.pt"
    write_rosinality(G, path)
    return path


def rosinality_with_a_number(folder: Path) -> Path:
    state = rosinality_state(_good_generator())
    state["style.1.weight"] = 5
    path = folder / "number.pt"
    torch.save({"g_ema": state}, path)
    return path


def native_wrong_resolution(folder: Path) -> Path:
    """The 32 px toy's tensors under a config that says 16 px."""
    path = folder / "mislabelled.pt"
    torch.save(_native_payload(config={**_good_generator().config.to_dict(), "img_resolution": 16}), path)
    return path


# ------------------------------------------------------------------------------------------- bad flows


def text_as_flow(folder: Path) -> Path:
    (folder / "notes.txt").write_text("my flow is in the other folder\n")
    return folder / "notes.txt"


def _flow_payload(**changes) -> dict:
    bundle = _good_flow_bundle()
    payload = {"format": FLOW_FORMAT, "version": 2, "flow_config": bundle.flow.config.to_dict(),
               "state_dict": {k: v.detach().clone() for k, v in bundle.flow.state_dict().items()
                              if not k.endswith(".mask")},
               "w_dim": 16, "w_init": torch.zeros(16), "w_init_samples": 0,
               "generator_fingerprint": bundle.generator_fingerprint, "training": {}}
    payload.update(changes)
    return payload


def flow_for_w_dim_8(folder: Path) -> Path:
    path = folder / "flow8.pt"
    save_flow(_good_flow_bundle(w_dim=8), path)
    return path


def flow_with_nan(folder: Path) -> Path:
    payload = _flow_payload()
    payload["state_dict"]["transform._transforms.0.autoregressive_net.final_layer.bias"][2] = float("nan")
    path = folder / "nanflow.pt"
    torch.save(payload, path)
    return path


def truncated_flow(folder: Path) -> Path:
    good_flow(folder)
    data = (folder / "flow.pt").read_bytes()
    (folder / "flow.pt").unlink()
    (folder / "cutflow.pt").write_bytes(data[: len(data) // 3])
    return folder / "cutflow.pt"


def flow_with_implausible_width(folder: Path) -> Path:
    path = folder / "wide.pt"
    torch.save(_flow_payload(flow_config={**_flow_payload()["flow_config"], "hidden_features": 10 ** 9}), path)
    return path


def flow_with_code(folder: Path) -> Path:
    path = folder / "evilflow.pt"
    torch.save(_flow_payload(training=_Exploit(folder / "pwned")), path)
    return path


BROADCAST_FLOW = FlowConfig(features=16, num_blocks=2, hidden_features=8192, made_residual_blocks=2)


def write_flow_broadcast_bomb(path: Path) -> None:
    """A flow of 2.1 GB of weights (4.3 GB with its masks; hidden width 8192), each a stride-0 view of one number."""
    one, index = torch.ones(()), torch.zeros((), dtype=torch.int64)
    state = {k: (index if k.endswith(("degrees", "_permutation")) else one).expand(shape)
             for k, shape in state_dict_shapes(BROADCAST_FLOW).items() if not k.endswith(".mask")}
    torch.save(_flow_payload(flow_config=BROADCAST_FLOW.to_dict(), state_dict=state), path)


# ---------------------------------------------------------------------------------- the memory check

_BROADCAST_BYTES = 1_945_635_568  # 4 x the parameters and buffers of BROADCAST_CONFIG
_FLOW_BROADCAST_BYTES = 2_150_958_016  # 4 x the learned values of BROADCAST_FLOW, w_init included
BOMBS = {  # file name: (loader, writer, the one reason expected)
    "huge.pt": ("generator", write_native_resolution_bomb,
                "implausible generator config: img_resolution must be an integer from 4 to 4096, got 32768"),
    "huge.pkl": ("generator", write_nvidia_resolution_bomb,
                 "implausible G_ema.init_kwargs: img_resolution must be an integer from 4 to 4096, got 32768"),
    "empty4096.pkl": ("generator", write_nvidia_empty_4096,
                      "tensors do not match a 4096px StyleGAN2 generator: missing ['mapping.fc0.bias', "
                      "'mapping.fc0.weight', 'mapping.fc1.bias', 'mapping.fc1.weight']..."),
    "broadcast.pt": ("generator", write_native_broadcast_bomb,
                     f"its tensors claim {_BROADCAST_BYTES:,} bytes of values, but the file stores only 4 "
                     "(overlapping or broadcast views)"),
    "broadflow.pt": ("flow", write_flow_broadcast_bomb,
                     f"its tensors claim {_FLOW_BROADCAST_BYTES:,} bytes of values, but the file stores only 68 "
                     "(overlapping or broadcast views)"),
}

_CHILD = r"""
import json, resource, sys
from rls_lightning.flow.checkpoint import load_flow
from rls_lightning.stylegan import load_generator

def status(field):
    with open("/proc/self/status") as lines:
        return int(lines.read().split(field + ":")[1].split()[0]) * 1024

def reset_peak():  # Linux >= 4.0: VmHWM restarts from the current RSS, so each load is measured alone
    with open("/proc/self/clear_refs", "w") as control:
        control.write("5")

jobs, extra = json.loads(sys.argv[1]), int(sys.argv[2])
size = status("VmSize")
resource.setrlimit(resource.RLIMIT_AS, (size + extra, size + extra))
results = {}
for kind, path in jobs:
    reset_peak()
    before = status("VmRSS")
    try:
        (load_flow if kind == "flow" else load_generator)(path)
        error = None
    except BaseException as err:
        error = f"{type(err).__name__}: {err}"
    results[path] = {"error": error, "rss_increase": status("VmHWM") - before}
print(json.dumps(results))
"""


@functools.cache
def _bomb_outcomes() -> dict[str, dict]:
    """Every bomb loaded once, in one fresh process (a torch import is seconds on a busy CPU), capped at
    ``BOMB_ADDRESS_SPACE`` above its size after the imports: a regression then fails the assertions below instead
    of exhausting the machine. ``rss_increase`` is the peak resident memory during that one load, above the
    resident memory before it (Linux's ``VmHWM``, reset before each load)."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as folder:
        jobs = []
        for name, (kind, write, _reason) in BOMBS.items():
            write(Path(folder) / name)
            jobs.append((kind, str(Path(folder) / name)))
        child = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(jobs), str(BOMB_ADDRESS_SPACE)],
                               capture_output=True, text=True, timeout=300, env=env, cwd=root)
        assert child.returncode == 0, child.stderr[-3000:]
        outcomes = json.loads(child.stdout.strip().splitlines()[-1])
        return {Path(path).name: {**outcome, "error": (outcome["error"] or "").replace(folder, "<folder>")}
                for path, outcome in outcomes.items()}


def bomb(name: str):
    """A setup that writes the bomb ``name`` after asserting that loading it is refused, cheaply."""
    kind, write, reason = BOMBS[name]

    def make(folder: Path) -> Path:
        outcome = _bomb_outcomes()[name]
        error_type = "FlowCheckpointError" if kind == "flow" else "CheckpointError"
        assert outcome["error"] == f"{error_type}: <folder>/{name}: {reason}", outcome
        assert outcome["rss_increase"] < BOMB_RSS_LIMIT, outcome
        write(folder / name)
        return folder / name
    return make


# ----------------------------------------------------------------------------------------------- cases

ZIP_CUT = "truncated or damaged torch file: its zip directory is missing (an interrupted download or copy?)"

CASES = [
    Case("checkpoint-truncated-native", "invert", invert_with(truncated_native), culprit=f"cut.pt: {ZIP_CUT}"),
    Case("checkpoint-truncated-nvidia", "inspect_generator", inspect_with(truncated_nvidia),
         culprit="cut.pkl: truncated pickle data (the file was cut short?)"),
    Case("checkpoint-truncated-legacy-torch", "train_flow", train_flow_with(truncated_legacy),
         culprit="old-cut.pt: corrupt or truncated torch file (RuntimeError: unexpected EOF"),
    Case("checkpoint-z-dim-negative", "invert", invert_with(native_with_config("zneg.pt", z_dim=-1)),
         culprit="zneg.pt: implausible generator config: z_dim must be an integer from 1 to 8192, got -1"),
    Case("checkpoint-w-dim-zero-nvidia", "invert", invert_with(nvidia_with_init_kwargs("w0.pkl", w_dim=0)),
         culprit="w0.pkl: implausible G_ema.init_kwargs: w_dim must be an integer from 1 to 8192, got 0"),
    Case("checkpoint-channel-base-zero", "train_flow", train_flow_with(native_with_config("c0.pt", channel_base=0)),
         culprit="c0.pt: implausible generator config: channel_base must be an integer from 1 to 1073741824, got 0"),
    Case("checkpoint-rosinality-no-channels", "invert", invert_with(rosinality_zero_channels),
         culprit="nochannels.pt: implausible generator (inferred from the tensor shapes): channel_max must be an "
                 "integer from 1 to 8192, got 0"),
    Case("checkpoint-nvidia-self-referencing-modules", "invert", invert_with(nvidia_self_referencing),
         culprit="loop.pkl: the network's module tree is not a tree: 'mapping.fc0.fc0' is reached twice (a module "
                 "that contains itself?)"),
    Case("checkpoint-native-resolution-bomb", "invert", invert_with(bomb("huge.pt")),
         culprit="huge.pt: implausible generator config: img_resolution must be an integer from 4 to 4096, got 32768"),
    Case("checkpoint-nvidia-resolution-bomb", "inspect_generator", inspect_with(bomb("huge.pkl")),
         culprit="huge.pkl: implausible G_ema.init_kwargs: img_resolution must be an integer from 4 to 4096"),
    Case("checkpoint-nvidia-4096-without-tensors", "train_flow", train_flow_with(bomb("empty4096.pkl")),
         culprit="empty4096.pkl: tensors do not match a 4096px StyleGAN2 generator: missing"),
    Case("checkpoint-broadcast-bomb", "invert", invert_with(bomb("broadcast.pt")),
         culprit=f"broadcast.pt: its tensors claim {_BROADCAST_BYTES:,} bytes of values, but the file stores only 4"),
    Case("checkpoint-torch-file-with-code", "invert", invert_with(torch_file_with_code), check=nothing_ran,
         culprit=f"evil.pt: refused: the file contains Python objects other than tensors (global 'posix.system'); "
                 f"{NEVER_EXECUTES}"),
    Case("checkpoint-folder-as-generator", "train_flow", train_flow_with(folder_as_generator),
         culprit="models: a folder, not a"),
    Case("checkpoint-zero-bytes", "inspect_generator", inspect_with(zero_bytes),
         culprit="empty.pt: empty file (0 bytes)"),
    Case("checkpoint-random-bytes", "invert", invert_with(random_bytes),
         culprit="noise.pt: not a torch checkpoint nor a pickle (unrecognised file header)"),
    Case("checkpoint-random-bytes-after-pickle-header", "train_flow", train_flow_with(random_bytes_after_pickle_header),
         culprit="noise.pkl: corrupt pickle data (UnpicklingError: "),
    Case("checkpoint-foreign-zip", "invert", invert_with(foreign_zip),
         culprit="photos.pt: a zip archive, but not one written by torch.save (no data.pkl inside)"),
    Case("checkpoint-nan-weight", "invert", invert_with(native_with_nan),
         culprit="nan.pt: non-finite values in tensor 'synthesis.b8.conv0.weight'"),
    Case("checkpoint-rosinality-inf-weight", "inspect_generator", inspect_with(rosinality_with_inf),
         culprit="inf.pt: non-finite values in tensor 'style.2.bias'"),
    Case("checkpoint-rosinality-number-for-tensor", "invert", invert_with(rosinality_with_a_number),
         culprit="number.pt: 'style.1.weight' is not a tensor but int"),
    Case("checkpoint-config-disagrees-with-tensors", "invert", invert_with(native_wrong_resolution),
         culprit="mislabelled.pt: tensors do not match a 16px StyleGAN2 generator: unexpected"),
    Case("flow-text-file", "invert", invert_with(make_flow=text_as_flow),
         culprit="notes.txt: not an rls-lightning flow checkpoint (not a torch file; train one with train_flow.py)"),
    Case("flow-truncated", "invert", invert_with(make_flow=truncated_flow),
         culprit=f"cutflow.pt: not a readable flow checkpoint: {ZIP_CUT}"),
    Case("flow-for-another-w-dim", "invert", invert_with(make_flow=flow_for_w_dim_8),
         culprit="flow8.pt: flow is for w_dim=8, the generator has 16"),
    Case("flow-nan-weight", "invert", invert_with(make_flow=flow_with_nan),
         culprit="nanflow.pt: non-finite values in tensor "
                 "'transform._transforms.0.autoregressive_net.final_layer.bias'"),
    Case("flow-implausible-width", "invert", invert_with(make_flow=flow_with_implausible_width),
         culprit="wide.pt: implausible flow configuration: hidden_features must be an integer from 1 to 16384, "
                 "got 1000000000"),
    Case("flow-with-code", "invert", invert_with(make_flow=flow_with_code), check=nothing_ran,
         culprit=f"evilflow.pt: not a readable flow checkpoint: refused: the file contains Python objects other than "
                 f"tensors (global 'posix.system'); {NEVER_EXECUTES}"),
    Case("flow-broadcast-bomb", "invert", invert_with(make_flow=bomb("broadflow.pt")),
         culprit=f"broadflow.pt: its tensors claim {_FLOW_BROADCAST_BYTES:,} bytes of values"),
]
