import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
LR_CONSISTENCY_BOUND = 0.03  # mean |D(x) - y| on [0, 1]; the demo faces measure 0.002-0.016 after RLS+


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def _tile(grid: np.ndarray, row: int, column: int, size: int = 128, gap: int = 2, top: int = 24) -> np.ndarray:
    """One tile of an overview.png: tiles of ``size`` px (64 px faces shown 2x), ``gap`` px of white between them,
    under a ``top`` px band of column captions."""
    step = size + gap
    return grid[top + row * step:top + row * step + size, column * step:column * step + size]


def _shown_2x(image: Image.Image) -> np.ndarray:
    """A 64 px face as overview.png shows it: each pixel repeated 2x2."""
    return np.asarray(image.convert("RGB")).repeat(2, axis=0).repeat(2, axis=1)


def test_readme_opens_with_two_commands_and_ci_runs_the_second():
    text = (ROOT / "README.md").read_text()
    assert text.index("```bash") < text.index("\n## ")  # the commands come first
    commands = _readme_commands()
    assert len(commands) == 2
    assert "pytest" in commands[1] and "pip install" in commands[0]
    script = (ROOT / ".ci" / "run").read_text().replace("\\\n", " ")  # continued lines as one
    ci_lines = [line for line in script.splitlines()
                if line.strip() and not line.startswith(("#", "set ", "cd ", "command -v chromium",
                                                        "python3 -m pip download"))]
    assert ci_lines == [commands[1]]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.mark.slow
def test_first_readme_command_runs_after_its_install_and_draws_the_readme_figure(tmp_path):
    """The program part of the first command on four of its eight demo faces, demo02-demo05 (one batch of the
    default --batch-size, half the time of all eight; every other argument as written), outputs sent to tmp_path
    (in the README they go to data/demo/lr8x_rls+, which a second run would resume instead of recompute).

    Every result must give back its LR input under PIL's bicubic downscaling, overview.png must hold
    LR | RLS | RLS+ | HR for each face, and the README's figure (``demo_overview_8x.png``, written by
    ``scripts/make_readme_figure.py`` with the current defaults) must agree with what the command draws to 27 dB:
    rounding, never another picture (it passes with oneDNN/MKL held to AVX2 too). demo02 and demo05 are the two
    faces an older RLS+ damaged; measured (benchmarks/RESULTS.md, precision stability): another CPU's kernels or
    bf16 leave 15 of 16 held-out faces' results at least 27.7 dB from float32's (one face took another branch,
    21 dB); the defaults before issue 29 drew these two faces' tiles 17-23 dB away."""
    install, program = _readme_commands()[0].rsplit("&& .venv/bin/python ", 1)
    assert "pip install -e ." in install
    args = shlex.split(program)
    readme_lr = ROOT / args[args.index("--lr-dir") + 1]
    all_faces = sorted(readme_lr.glob("*.png"))
    assert len(all_faces) == 8 and all(Image.open(p).size == (8, 8) for p in all_faces)
    (tmp_path / "lr").mkdir()
    for path in all_faces[2:6]:
        (tmp_path / "lr" / path.name).write_bytes(path.read_bytes())
    args[args.index("--lr-dir") + 1] = str(tmp_path / "lr")
    result = subprocess.run([sys.executable, *args, "--out-dir", str(tmp_path / "out")], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    lr_paths = sorted((tmp_path / "lr").glob("*.png"))
    assert [p.stem for p in lr_paths] == ["demo02", "demo03", "demo04", "demo05"]
    for lr_path in lr_paths:
        lr = np.asarray(Image.open(lr_path).convert("RGB"), dtype=np.float64)
        sr = Image.open(tmp_path / "out" / lr_path.name).convert("RGB")
        assert sr.size == (64, 64)
        down = np.asarray(sr.resize(lr.shape[1::-1], Image.BICUBIC), dtype=np.float64)
        assert np.abs(down - lr).mean() / 255 < LR_CONSISTENCY_BOUND, lr_path.name
    overview = np.asarray(Image.open(tmp_path / "out" / "overview.png").convert("RGB"))
    hr_dir = ROOT / args[args.index("--hr-dir") + 1]
    figure = np.asarray(Image.open(ROOT / "checkpoints" / "demo64" / "demo_overview_8x.png").convert("RGB"))
    assert figure.shape == (24 + 8 * 130 - 2, 4 * 130 - 2, 3)  # the eight demo faces, one per row
    for row, lr_path in enumerate(lr_paths):  # columns: LR, RLS, RLS+, HR
        assert np.array_equal(_tile(overview, row, 2), _shown_2x(Image.open(tmp_path / "out" / lr_path.name)))
        assert np.array_equal(_tile(overview, row, 3), _shown_2x(Image.open(hr_dir / lr_path.name)))
        for column in (1, 2):
            drawn, shown = _tile(overview, row, column), _tile(figure, int(lr_path.stem[-2:]), column)
            assert _psnr(drawn, shown) > 27, (lr_path.stem, column, _psnr(drawn, shown))


def test_auto_precision_reads_the_cpu_flags(tmp_path):
    from rls_lightning.runtime import cpu_has_native_bf16, resolve_precision

    with_bf16, without = tmp_path / "with", tmp_path / "without"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n")
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\nbugs\t: avx512_bf16_is_not_a_flag_here\n")
    assert cpu_has_native_bf16(with_bf16) and not cpu_has_native_bf16(without)
    assert not cpu_has_native_bf16(tmp_path / "absent")
    assert resolve_precision("32-true", "cpu") == "32-true"  # an explicit choice is kept


def test_the_plain_install_and_the_extras_resolve_to_the_same_pillow():
    """pip resolves ``pip install -e .`` without the extras' pins: our Pillow range must already be within what the
    [app] extra's gradio accepts, else the second README command downgrades Pillow (13.0 -> 12.3 once) and the
    demo and the tests run under different versions."""
    import configparser
    from importlib import metadata

    from packaging.requirements import Requirement

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    ours = next(Requirement(line.split("#")[0].strip()) for line in config["options"]["install_requires"].splitlines()
                if line.strip().lower().startswith("pillow"))
    try:
        gradio = [Requirement(r) for r in metadata.requires("gradio") or []]
    except metadata.PackageNotFoundError:
        pytest.skip("gradio is not installed (the [app] extra)")
    theirs = next(r for r in gradio if r.name.lower() == "pillow")
    upper = [s.version for s in theirs.specifier if s.operator in ("<", "<=")]
    # every version we allow up to the next release past our bound must be one gradio allows
    for version in ("10.0.0", "11.3.0", "12.0.0", "12.3.0", "12.99", "13.0.0", "13.1.0", "14.0.0"):
        if ours.specifier.contains(version, prereleases=False):
            assert theirs.specifier.contains(version, prereleases=False), (version, str(ours), str(theirs))
    assert upper, "gradio bounds Pillow from above; so must we"
