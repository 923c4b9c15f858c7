"""The hostile corpus of train_flow, train_stylegan, inspect_generator and experiments (see hostile_corpus.py):
every option given a value a user could type by mistake. Each case must end in exit 2 with one ``error:`` line
naming the option (or the file) and the value, before any work, and without touching a file."""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from support.hostile_corpus import Case
from support.inversion_fixtures import toy_generator

from rls_lightning.stylegan import save_generator


@functools.cache
def _generator_bytes() -> bytes:
    """The toy generator's file, made once per test session."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "G.pt"
        save_generator(toy_generator(), path)
        return path.read_bytes()


def _generator(folder: Path) -> Path:
    path = folder / "G.pt"
    path.write_bytes(_generator_bytes())
    return path


def _file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def _images(folder: Path, count: int = 10) -> Path:
    data = folder / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(data / f"{i:02d}.png")
    return data


def _hr(folder: Path) -> Path:
    hr = folder / "hr"
    hr.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(hr / "face0.png")
    return hr


def _nothing_written(*names: str):
    def check(folder: Path, outcome) -> None:
        for name in names:
            assert not (folder / name).exists(), f"{name} was created"
    return check


# ---------------------------------------------------------------------- train_flow

def _flow(*extra: str):
    """``setup`` for train_flow: a tiny generator, output and run folder in the case folder, then ``extra``."""
    def setup(folder: Path) -> list[str]:
        return ["--generator", str(_generator(folder)), "--output", str(folder / "flow.pt"), "--run-dir",
                str(folder / "run"), "--accelerator", "cpu", *[a.format(folder=folder) for a in extra]]
    return setup


def _flow_with(make, *extra: str):
    """train_flow with a file made by ``make(folder) -> Path`` standing for ``{made}`` in ``extra``."""
    def setup(folder: Path) -> list[str]:
        made = make(folder)
        return _flow(*[a.replace("{made}", str(made)) for a in extra])(folder)
    return setup


def _other_architecture_ckpt(folder: Path) -> Path:
    path = folder / "run" / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": {"flow.weight": torch.zeros(3)}, "global_step": 5}, path)
    return path


def _folder(folder: Path, name: str) -> Path:
    (folder / name).mkdir()
    return folder / name


FLOW_NOT_RUN = _nothing_written("flow.pt", "run/logs")

TRAIN_FLOW = [
    Case("train_flow-num-samples-0", "train_flow", _flow("--num-samples", "0"), culprit="--num-samples 0"),
    Case("train_flow-batch-size-negative", "train_flow", _flow("--batch-size", "-1"), culprit="--batch-size -1"),
    Case("train_flow-batch-size-1-with-batch-norm", "train_flow", _flow("--batch-size", "1"),
         culprit="--batch-size 1"),
    Case("train_flow-blocks-0", "train_flow", _flow("--blocks", "0"), culprit="--blocks 0"),
    Case("train_flow-hidden-0", "train_flow", _flow("--hidden", "0"), culprit="--hidden 0"),
    Case("train_flow-made-blocks-99", "train_flow", _flow("--made-blocks", "99"), culprit="--made-blocks 99"),
    Case("train_flow-lr-negative", "train_flow", _flow("--lr", "-1"), culprit="--lr -1"),
    Case("train_flow-lr-nan", "train_flow", _flow("--lr", "nan"), culprit="--lr 'nan'"),
    Case("train_flow-val-every-0", "train_flow", _flow("--val-every", "0"), culprit="--val-every 0"),
    Case("train_flow-val-samples-0", "train_flow", _flow("--val-samples", "0"), culprit="--val-samples 0"),
    Case("train_flow-stats-samples-1", "train_flow", _flow("--stats-samples", "1"), culprit="--stats-samples 1"),
    Case("train_flow-patience-negative", "train_flow", _flow("--patience", "-3"), culprit="--patience -3"),
    Case("train_flow-seed-negative", "train_flow", _flow("--seed", "-1"), culprit="--seed -1"),
    Case("train_flow-report-samples-0", "train_flow", _flow("--report-samples", "0"),
         culprit="--report-samples 0"),
    Case("train_flow-batch-size-not-a-number", "train_flow", _flow("--batch-size", "many"),
         culprit="--batch-size 'many'"),
    Case("train_flow-precision-garbage", "train_flow", _flow("--precision", "garbage"),
         culprit="--precision garbage"),
    Case("train_flow-devices-0", "train_flow", _flow("--devices", "0"), culprit="--devices 0"),
    Case("train_flow-num-nodes-0", "train_flow", _flow("--num-nodes", "0"), culprit="--num-nodes 0"),
    Case("train_flow-accelerator-tpu", "train_flow", _flow("--accelerator", "tpu"), culprit="--accelerator tpu"),
    Case("train_flow-logger-foo", "train_flow", _flow("--logger", "foo"), culprit="--logger foo"),
    Case("train_flow-unknown-option", "train_flow", _flow("--bogus", "1"), culprit="--bogus"),
    Case("train_flow-generator-missing", "train_flow", _flow("--generator", "{folder}/absent.pt"),
         culprit="absent.pt: no such file"),
    Case("train_flow-generator-is-a-folder", "train_flow",
         _flow_with(lambda f: _folder(f, "gen"), "--generator", "{made}"), culprit="--generator"),
    Case("train_flow-generator-not-a-checkpoint", "train_flow",
         _flow_with(lambda f: _file(f, "text.pt", "not a checkpoint\n"), "--generator", "{made}"),
         culprit="text.pt", check=FLOW_NOT_RUN),
    Case("train_flow-output-is-a-folder", "train_flow", _flow_with(lambda f: _folder(f, "out"), "--output",
                                                                   "{made}"), culprit="--output"),
    Case("train_flow-output-under-a-file", "train_flow",
         _flow_with(lambda f: _file(f, "plain.txt", "x"), "--output", "{made}/sub/flow.pt"),
         culprit="--output"),
    Case("train_flow-output-is-the-generator", "train_flow", _flow("--output", "{folder}/G.pt"),
         culprit="--output"),
    Case("train_flow-run-dir-is-a-file", "train_flow",
         _flow_with(lambda f: _file(f, "run.txt", "x"), "--run-dir", "{made}"), culprit="--run-dir"),
    Case("train_flow-resume-last-without-checkpoint", "train_flow", _flow("--resume", "last"),
         culprit="--resume last", check=FLOW_NOT_RUN),
    Case("train_flow-resume-garbage-checkpoint", "train_flow",
         _flow_with(lambda f: _file(f, "junk.ckpt", "garbage"), "--resume", "{made}"), culprit="junk.ckpt"),
    Case("train_flow-resume-other-architecture", "train_flow",
         _flow_with(_other_architecture_ckpt, "--resume", "last"), culprit="other architecture options",
         check=FLOW_NOT_RUN),
    Case("train_flow-config-broken-yaml", "train_flow",
         _flow_with(lambda f: _file(f, "broken.yaml", "lr: [1\n  x: : y\n"), "--config", "{made}"),
         culprit="broken.yaml: invalid YAML (line 2"),
    Case("train_flow-config-unknown-key", "train_flow",
         _flow_with(lambda f: _file(f, "typo.yaml", "bach_size: 3\n"), "--config", "{made}"),
         culprit="typo.yaml: unknown option 'bach_size' (did you mean batch_size?)"),
    Case("train_flow-config-wrong-type", "train_flow",
         _flow_with(lambda f: _file(f, "type.yaml", "batch_size: abc\n"), "--config", "{made}"),
         culprit="type.yaml: batch_size 'abc': must be an integer"),
    Case("train_flow-config-bad-value", "train_flow",
         _flow_with(lambda f: _file(f, "value.yaml", "lr: .nan\n"), "--config", "{made}"), culprit="--lr nan"),
    Case("train_flow-config-a-list", "train_flow",
         _flow_with(lambda f: _file(f, "list.yaml", "- 1\n- 2\n"), "--config", "{made}"), culprit="list.yaml"),
    Case("train_flow-config-missing", "train_flow", _flow("--config", "{folder}/absent.yaml"),
         culprit="--config"),
]


# ---------------------------------------------------------------------- train_stylegan

def _gan(*extra: str, images: int = 10):
    def setup(folder: Path) -> list[str]:
        data = _images(folder, images) if images else _folder(folder, "data")
        return ["--data", str(data), "--out", str(folder / "G.pt"), "--run-dir", str(folder / "run"),
                "--resolution", "8", "--w-dim", "16", "--mapping-layers", "2", "--channel-base", "64",
                "--channel-max", "16", "--batch-size", "4", "--holdout", "2", "--accelerator", "cpu",
                "--workers-progress", "false", *[a.format(folder=folder) for a in extra]]
    return setup


GAN_NOT_RUN = _nothing_written("G.pt", "run")

TRAIN_STYLEGAN = [
    Case("train_stylegan-resolution-48", "train_stylegan", _gan("--resolution", "48"), culprit="--resolution 48",
         check=GAN_NOT_RUN),
    Case("train_stylegan-resolution-0", "train_stylegan", _gan("--resolution", "0"), culprit="--resolution 0"),
    Case("train_stylegan-kimg-0", "train_stylegan", _gan("--kimg", "0"), culprit="--kimg 0"),
    Case("train_stylegan-kimg-below-one-step", "train_stylegan", _gan("--kimg", "0.001"), culprit="--kimg 0.001"),
    Case("train_stylegan-batch-size-0", "train_stylegan", _gan("--batch-size", "0"), culprit="--batch-size 0"),
    Case("train_stylegan-lr-inf-in-yaml", "train_stylegan",
         lambda f: _gan("--config", str(_file(f, "gan.yaml", "lr: .inf\n")))(f), culprit="--lr inf"),
    Case("train_stylegan-style-mixing-2", "train_stylegan", _gan("--style-mixing", "2"),
         culprit="--style-mixing 2"),
    Case("train_stylegan-snapshot-every-0", "train_stylegan", _gan("--snapshot-every", "0"),
         culprit="--snapshot-every 0"),
    Case("train_stylegan-max-minutes-negative", "train_stylegan", _gan("--max-minutes", "-5"),
         culprit="--max-minutes -5"),
    Case("train_stylegan-precision-garbage", "train_stylegan", _gan("--precision", "fp8"),
         culprit="--precision fp8"),
    Case("train_stylegan-devices-0", "train_stylegan", _gan("--devices", "0"), culprit="--devices 0"),
    Case("train_stylegan-data-missing", "train_stylegan", _gan("--data", "{folder}/absent"),
         culprit="--data"),
    Case("train_stylegan-data-empty-folder", "train_stylegan", _gan(images=0), culprit="no images",
         check=GAN_NOT_RUN),
    Case("train_stylegan-data-not-a-zip", "train_stylegan",
         lambda f: _gan("--data", str(_file(f, "faces.zip", "not a zip")))(f), culprit="faces.zip"),
    Case("train_stylegan-holdout-all", "train_stylegan", _gan("--holdout", "10"), culprit="--holdout 10"),
    Case("train_stylegan-out-is-a-folder", "train_stylegan", _gan("--out", "{folder}/data"), culprit="--out"),
    Case("train_stylegan-resume-last-without-checkpoint", "train_stylegan", _gan("--resume", "last"),
         culprit="--resume last", check=GAN_NOT_RUN),
    Case("train_stylegan-data-option-forgotten", "train_stylegan", lambda f: ["--resolution", "8"],
         culprit="--data is required"),
]


# ---------------------------------------------------------------------- inspect_generator

def _inspect(*extra: str):
    def setup(folder: Path) -> list[str]:
        return [str(_generator(folder)), *[a.format(folder=folder) for a in extra]]
    return setup


INSPECT_GENERATOR = [
    Case("inspect_generator-seeds-empty", "inspect_generator", _inspect("--seeds"), culprit="--seeds"),
    Case("inspect_generator-seeds-negative", "inspect_generator", _inspect("--seeds", "1", "-4"),
         culprit="--seeds -4"),
    Case("inspect_generator-truncation-nan", "inspect_generator", _inspect("--truncation", "nan"),
         culprit="--truncation 'nan'"),
    Case("inspect_generator-truncation-without-w-avg", "inspect_generator",
         _inspect("--truncation", "0.7", "--out", "{folder}/grid.png"), culprit="--truncation 0.7",
         check=_nothing_written("grid.png")),
    Case("inspect_generator-device-tpu", "inspect_generator", _inspect("--device", "tpu"),
         culprit="--device 'tpu'"),
    Case("inspect_generator-noise-mode-typo", "inspect_generator", _inspect("--noise-mode", "cosnt"),
         culprit="--noise-mode 'cosnt'"),
    Case("inspect_generator-out-under-a-file", "inspect_generator",
         lambda f: _inspect("--out", str(_file(f, "notes.txt", "x")) + "/new/grid.png")(f), culprit="--out"),
    Case("inspect_generator-out-is-a-folder", "inspect_generator", lambda f: _inspect(
        "--out", str(_folder(f, "pictures")))(f), culprit="--out"),
    Case("inspect_generator-checkpoint-missing", "inspect_generator", lambda f: [str(f / "absent.pt")],
         culprit="absent.pt: no such file"),
]


# ---------------------------------------------------------------------- experiments

def _study(*extra: str, study: str = "table1"):
    def setup(folder: Path) -> list[str]:
        return [study, "--hr-dir", str(_hr(folder)), "--generator", str(_generator(folder)), "--out-dir",
                str(folder / "study"), "--device", "cpu", *[a.format(folder=folder) for a in extra]]
    return setup


STUDY_NOT_RUN = _nothing_written("study")

EXPERIMENTS = [
    Case("experiments-limit-0", "experiments", _study("--limit", "0"), culprit="--limit 0", check=STUDY_NOT_RUN),
    Case("experiments-factors-0", "experiments", _study("--factors", "0"), culprit="--factors 0"),
    Case("experiments-factors-none-divides", "experiments", _study("--factors", "3", "5"),
         culprit="--factors 3 5", check=STUDY_NOT_RUN),
    Case("experiments-steps-negative", "experiments", _study("--steps", "-1"), culprit="--steps -1"),
    Case("experiments-refine-steps-0", "experiments", _study("--refine-steps", "0"), culprit="--refine-steps 0"),
    Case("experiments-batch-size-0", "experiments", _study("--batch-size", "0"), culprit="--batch-size 0"),
    Case("experiments-unknown-study", "experiments", _study(study="table9"), culprit="study 'table9'"),
    Case("experiments-device-tpu", "experiments", _study("--device", "tpu"), culprit="--device 'tpu'"),
    Case("experiments-limit-not-a-number", "experiments", _study("--limit", "ten"), culprit="--limit 'ten'"),
    Case("experiments-hr-dir-missing", "experiments", _study("--hr-dir", "{folder}/absent"),
         culprit="--hr-dir"),
    Case("experiments-hr-dir-without-images", "experiments",
         lambda f: _study("--hr-dir", str(_folder(f, "empty")))(f), culprit="no images"),
    Case("experiments-out-dir-is-the-hr-dir", "experiments", _study("--out-dir", "{folder}/hr"),
         culprit="--out-dir"),
    Case("experiments-flow-missing", "experiments", _study("--flow", "{folder}/absent-flow.pt"),
         culprit="--flow"),
    Case("experiments-weights-dir-is-a-file", "experiments",
         lambda f: _study("--weights-dir", str(_file(f, "weights.txt", "x")))(f), culprit="--weights-dir"),
]

CASES = [*TRAIN_FLOW, *TRAIN_STYLEGAN, *INSPECT_GENERATOR, *EXPERIMENTS]
