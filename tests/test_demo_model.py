"""The embedded demo model and its inputs agree with each other, with PIL and with the issue's size limits."""
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from support.repo_scripts import load_script

from rls_lightning.flow.checkpoint import load_flow
from rls_lightning.stylegan import load_generator

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = ROOT / "checkpoints" / "demo64"
DATA = ROOT / "data" / "demo"


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_demo_model_files_stay_small_and_belong_together():
    for name in ("generator.pt", "flow.pt"):
        assert (DEMO_DIR / name).stat().st_size < 30e6, name
    G = load_generator(DEMO_DIR / "generator.pt")
    assert (G.img_resolution, G.w_dim, G.num_ws) == (64, 256, 10)
    assert sum(p.numel() for p in G.parameters()) < 6e6
    load_flow(DEMO_DIR / "flow.pt", generator=G)  # the fingerprint of G's mapping must match, else it raises


def test_demo_hr_faces_are_what_the_demo_generator_draws_from_their_seeds():
    script = load_script("make_demo_inputs")
    G = load_generator(DEMO_DIR / "generator.pt")
    z = torch.cat([script.seeded_z(G, seed) for seed in script.DEMO_SEEDS])
    images = script.render(G, z, script.DEMO_TRUNCATION)
    expected = ((images + 1) * 127.5).round().clamp(0, 255).permute(0, 2, 3, 1).numpy()
    names = sorted(p.name for p in (DATA / "hr").glob("*.png"))
    assert len(names) == len(script.DEMO_SEEDS)
    for i, name in enumerate(names):
        assert np.abs(_png(DATA / "hr" / name) - expected[i]).max() <= 1, name  # float rounding across machines


def test_demo_lr_inputs_are_pil_bicubic_downscalings_of_the_hr_faces():
    for hr_path in sorted((DATA / "hr").glob("*.png")):
        hr = Image.open(hr_path).convert("RGB")
        for factor, size in ((8, 8), (4, 16)):
            pil = np.asarray(hr.resize((size, size), Image.BICUBIC), dtype=np.int16)
            ours = _png(DATA / f"lr{factor}x" / hr_path.name)
            assert ours.shape == (size, size, 3)
            assert np.abs(ours - pil).max() <= 1, (hr_path.name, factor)
