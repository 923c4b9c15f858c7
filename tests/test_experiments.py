import json

import numpy as np
import pytest
import torch
from PIL import Image
from support.inversion_fixtures import known_latents, toy_flow, toy_generator

from rls_lightning.cli.experiments import markdown_table, study_plan
from rls_lightning.flow.checkpoint import save_flow
from rls_lightning.image_io import to_uint8
from rls_lightning.stylegan import save_generator


def test_every_study_has_a_plan():
    assert [m.label for m in study_plan("table1", None)[1]] == ["Bicubic", "PULSE", "BRGM", "RLS", "RLS+"]
    assert study_plan("table1", None)[0] == [64, 8]
    assert len(study_plan("ablation-refine", None)[1]) == 6 and study_plan("ablation-prior", None)[0] == [64]
    assert [m.corruption for m in study_plan("robustness", None)[1]] == [None, "gaussian-noise", "salt-pepper",
                                                                         "gaussian-blur", "motion-blur"]
    sweep = study_plan("tradeoff", None)[1]
    assert all(m.settings.search.lambda_c == 0 for m in sweep)
    assert all(m.num_samples == 5 for m in study_plan("diversity", None)[1])
    with pytest.raises(ValueError, match="unknown study"):
        study_plan("table9", None)


def test_markdown_table_layout():
    results = [{"method": "RLS", "factor": 8, "metrics": {"FID": 27.6691, "KID": 0.0130044, "PSNR": 24.28}},
               {"method": "Bicubic", "factor": 8, "metrics": {"PSNR": 28.0067}}]
    table = markdown_table(results, group_by_factor=True)
    lines = table.strip().splitlines()
    assert lines[0] == "| Scale | Method | FID ↓ | KID (x10³) ↓ | PSNR ↑ |"
    assert lines[2] == "| 8x | RLS | 27.6691 | 13.0044 | 24.2800 |"
    assert lines[3] == "| 8x | Bicubic |  |  | 28.0067 |"


def test_every_method_of_a_study_has_its_own_results_folder():
    from rls_lightning.cli.experiments import STUDIES, _slug
    for study in STUDIES:
        folders = [_slug(m.label) for m in study_plan(study, None)[1]]
        assert len(set(folders)) == len(folders), (study, folders)


# MATLAB rgb2ycbcr's Y row (evaluate's default channel), on 0..255 for RGB in [0, 1]
_LUMA = np.array([65.481, 128.553, 24.966])


def _read(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def _luma(rgb: np.ndarray) -> np.ndarray:
    return 16 + rgb.astype(np.float64) / 255 @ _LUMA


def _psnr_y(sr: np.ndarray, hr: np.ndarray) -> float:
    return 10 * np.log10(255 ** 2 / np.mean((_luma(sr) - _luma(hr)) ** 2))


def _ssim_y(sr: np.ndarray, hr: np.ndarray) -> float:
    """Wang et al. 2004 as ssim.m: 11x11 Gaussian window of std 1.5 (fspecial), 'valid' filtering, L = 255."""
    from scipy.signal import correlate2d
    g = np.exp(-np.arange(-5, 6) ** 2 / (2 * 1.5 ** 2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    x, y = _luma(sr), _luma(hr)

    def local(t):
        return correlate2d(t, window, mode="valid")

    mx, my = local(x), local(y)
    vx, vy, cxy = local(x * x) - mx ** 2, local(y * y) - my ** 2, local(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float(np.mean((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))))


def _lr_l1(sr: np.ndarray, lr: np.ndarray) -> float:
    """mean |D(x) - y| on [0, 1], D being PIL's bicubic shrink of the float image, channel by channel."""
    shrunk = np.stack([np.asarray(Image.fromarray((sr[..., c] / 255).astype(np.float32)).resize(
        lr.shape[:2][::-1], Image.BICUBIC)) for c in range(3)], -1)
    return float(np.abs(shrunk - lr / 255).mean())


@pytest.mark.slow
def test_table1_end_to_end_on_a_tiny_model(tmp_path):
    from rls_lightning.cli.experiments import main
    G = toy_generator()
    save_generator(G, tmp_path / "G.pt")
    save_flow(toy_flow(G), tmp_path / "flow.pt")
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    with torch.no_grad():
        hr = G.synthesis(known_latents(G, 3, seed=21)).clamp(-1, 1)
    for i in range(3):
        Image.fromarray(to_uint8(hr[i])).save(hr_dir / f"face{i}.png")
    out = tmp_path / "study"
    assert main(["table1", "--hr-dir", str(hr_dir), "--out-dir", str(out), "--generator", str(tmp_path / "G.pt"),
                 "--flow", str(tmp_path / "flow.pt"), "--factors", "4", "--steps", "4", "--refine-steps", "2",
                 "--device", "cpu"]) == 0
    table = (out / "table1.md").read_text().splitlines()
    header = next(line for line in table if line.startswith("| Method"))
    assert "PSNR ↑" in header and "SSIM ↑" in header and "LR-L1 ↓" in header
    rows = [line for line in table if line.startswith("| ") and not line.startswith("| Method")]
    assert [r.split(" | ")[0].strip("| ") for r in rows] == ["Bicubic", "PULSE", "BRGM", "RLS", "RLS+"]

    faces = [f"face{i}" for i in range(3)]
    gt = {f: _read(hr_dir / f"{f}.png") for f in faces}
    lr = {f: _read(out / "lr_x4" / "bicubic" / f"{f}.png") for f in faces}
    for f in faces:  # the LR set: PIL's bicubic shrink of the HR image
        pil = np.asarray(Image.fromarray(gt[f]).resize((8, 8), Image.BICUBIC), int)
        assert np.abs(lr[f].astype(int) - pil).max() <= 1
    folders = {"Bicubic": "bicubic", "PULSE": "pulse", "BRGM": "brgm", "RLS": "rls", "RLS+": "rls-plus"}
    numbers = json.loads((out / "table1.json").read_text())
    assert [r["method"] for r in numbers] == list(folders)
    sr = {}
    for row in numbers:  # every row recomputed from the images the method saved
        folder = out / "x4" / folders[row["method"]]
        assert row["folder"] == str(folder)
        sr[row["method"]] = {f: _read(folder / f"{f}.png") for f in faces}
        images = sr[row["method"]]
        expected = {"PSNR": np.mean([_psnr_y(images[f], gt[f]) for f in faces]),
                    "SSIM": np.mean([_ssim_y(images[f], gt[f]) for f in faces]),
                    "LR-L1": np.mean([_lr_l1(images[f], lr[f]) for f in faces])}
        assert set(row["metrics"]) == set(expected), row["method"]
        for key, value in expected.items():
            assert row["metrics"][key] == pytest.approx(value, abs={"PSNR": 1e-3, "SSIM": 1e-5, "LR-L1": 1e-5}[key]), \
                (row["method"], key)
    # the bicubic method is PIL's bicubic enlargement of the LR image (in float, then rounded to 8 bits)
    for f in faces:
        pil = np.stack([np.asarray(Image.fromarray(lr[f][..., c].astype(np.float32)).resize((32, 32), Image.BICUBIC))
                        for c in range(3)], -1)
        assert np.abs(sr["Bicubic"][f] - pil.clip(0, 255)).max() < 0.5 + 1e-3
    # the grid shows, for each face, LR | each method's saved image | HR (cells of 128 px, nearest, under an
    # 18 px header)
    grid = np.asarray(Image.open(out / "table1_x4.png").convert("RGB"))
    assert grid.shape == (18 + 128 * 3, 128 * 7, 3)
    for r, f in enumerate(faces):
        cells = [grid[18 + 128 * r:18 + 128 * (r + 1), 128 * c:128 * (c + 1)] for c in range(7)]
        assert np.array_equal(cells[0][::16, ::16], lr[f])
        for c, method in enumerate(folders, start=1):
            assert np.array_equal(cells[c][::4, ::4], sr[method][f]), (f, method)
        assert np.array_equal(cells[6][::4, ::4], gt[f])
