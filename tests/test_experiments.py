import json

import numpy as np
import pytest
import torch
from inversion_fixtures import known_latents, toy_flow, toy_generator
from PIL import Image

from rls_lightning.experiments import markdown_table, study_plan
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


def test_table1_end_to_end_on_a_tiny_model(tmp_path):
    from rls_lightning.experiments import main
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
    numbers = json.loads((out / "table1.json").read_text())
    bicubic = next(r for r in numbers if r["method"] == "Bicubic")
    # bicubic upsampling of the 8x8 inputs, recomputed independently
    lr = np.stack([np.asarray(Image.open(out / "lr_x4" / "bicubic" / f"face{i}.png")) for i in range(3)])
    up = [np.asarray(Image.fromarray(a).resize((32, 32), Image.BICUBIC), float) / 255 for a in lr]
    gt = [np.asarray(Image.open(hr_dir / f"face{i}.png"), float) / 255 for i in range(3)]
    luma = np.array([65.481, 128.553, 24.966])  # evaluate's default: BT.601 Y (MATLAB rgb2ycbcr), range 255
    expected = np.mean([10 * np.log10(255 ** 2 / np.mean(((u - g) @ luma) ** 2)) for u, g in zip(up, gt)])
    assert bicubic["metrics"]["PSNR"] == pytest.approx(expected, abs=0.05)
    grid = Image.open(out / "table1_x4.png")
    assert grid.size == (128 * 7, 18 + 128 * 3)  # LR, bicubic, 4 methods, HR; one row per image
