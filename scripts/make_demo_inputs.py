"""Make the demo inputs and the model card's sample grid from the trained demo generator.

    python scripts/make_demo_inputs.py                      # checkpoints/demo64/generator.pt -> data/demo/

Writes ``data/demo/hr/demoNN.png`` (faces generated from seeds DEMO_SEEDS, used nowhere else: training used seed 0
and its own streams, the sample grid uses GRID_SEED; truncation psi = DEMO_TRUNCATION towards the generator's mean
w, as in the StyleGAN papers' figures, because a briefly trained 64 px model draws some distorted faces without
it), their bicubic LR versions ``data/demo/lr8x`` (8x8) and ``data/demo/lr4x`` (16x16) made with the PIL-exact
antialiased bicubic D of paper Eq. 3, and
``checkpoints/demo64/samples.png``: 32 faces from GRID_SEED, without truncation (the same z as the
training run's own ``samples.png``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rls_lightning.paths import DEMO_DIR, DEMO_GENERATOR
from rls_lightning.degradations import downsample_bicubic
from rls_lightning.image_io import image_grid, save_png_atomic, to_uint8
from rls_lightning.stylegan import load_generator

DEMO_SEEDS = range(20261127, 20261135)  # 8 faces, one z per seed
DEMO_TRUNCATION = 0.7
GRID_SEED = 1234  # 32 z in one draw, as the training run's own sample grid
FACTORS = (8, 4)


@torch.no_grad()
def render(G, z: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
    """G(z) with w pulled towards ``G.w_avg`` by ``truncation`` (1 = none) and the generator's constant noise,
    in [-1, 1]."""
    w = G.mapping(z, truncation_psi=truncation)
    return G.synthesis(w[:, None].expand(-1, G.num_ws, -1)).clamp(-1, 1)


def seeded_z(G, seed: int, n: int = 1) -> torch.Tensor:
    return torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", type=Path, default=DEMO_GENERATOR)
    parser.add_argument("--out-dir", type=Path, default=Path("data/demo"))
    parser.add_argument("--grid", type=Path, default=DEMO_DIR / "samples.png")
    args = parser.parse_args(argv)
    G = load_generator(args.generator)
    hr = render(G, torch.cat([seeded_z(G, seed) for seed in DEMO_SEEDS]), DEMO_TRUNCATION)
    hr_8bit = to_uint8(hr)  # [N, H, W, C]; the LR files are made from these, as a user's would be
    for i, seed in enumerate(DEMO_SEEDS):
        name = f"demo{i:02d}.png"
        save_png_atomic(hr_8bit[i], args.out_dir / "hr" / name)
        saved_hr = torch.from_numpy(hr_8bit[i]).permute(2, 0, 1)[None].float() / 127.5 - 1
        for factor in FACTORS:
            save_png_atomic(to_uint8(downsample_bicubic(saved_hr, factor)[0]), args.out_dir / f"lr{factor}x" / name)
    save_png_atomic(image_grid(render(G, seeded_z(G, GRID_SEED, 32)), columns=8), args.grid)
    print(f"{len(DEMO_SEEDS)} faces in {args.out_dir}/hr, lr8x, lr4x; sample grid {args.grid}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
