"""Whether precision or CPU kernels change the picture: the default RLS / RLS+ on held-out real faces, once per
setting, compared face by face (issue 29); prints one JSON line.

    python benchmarks/precision_stability.py run --precision 32-true --out runs/stability/f32.pt
    python benchmarks/precision_stability.py run --precision bf16-mixed --out runs/stability/bf16.pt
    ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
        python benchmarks/precision_stability.py run --precision 32-true --out runs/stability/avx2.pt
    python benchmarks/precision_stability.py compare runs/stability/f32.pt runs/stability/bf16.pt runs/stability/avx2.pt
    # float64 (64-true), the same picture on every kernel set: compare f64.pt against f64-avx2.pt
    # another machine against the float64 results shipped for the eight demo faces:
    python benchmarks/precision_stability.py run --demo --precision 64-true --out runs/stability/demo-f64.pt
    python benchmarks/precision_stability.py compare benchmarks/reference/demo8x-f64-amd-epyc.pt \
        runs/stability/demo-f64.pt

``run`` inverts the first ``--limit`` held-out faces of the demo model's split (``--holdout 1000 --split-seed 0``,
as the model card) from their 8-bit bicubic LR images and saves the RLS and RLS+ results as 8-bit images;
``compare`` gives, for each later file against the first, the PSNR of every face's RLS and RLS+ result (min, median),
and for every face whose RLS results differ by more than rounding (below ``--rounding-db``, 30 dB) the RLS objective
(Eq. 6, the total the search minimised) each setting reached: where one setting stops in a worse local minimum of the
same objective, the lower total says which picture the method prefers.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from _common import emit

from rls_lightning.runtime import resolve_precision
from rls_lightning.paths import DEMO_FLOW, DEMO_GENERATOR, PROJECT_ROOT
from rls_lightning.degradations import downsample_bicubic
from rls_lightning.flow.checkpoint import load_flow
from rls_lightning.inversion.job import InversionJob, TrainerOptions
from rls_lightning.inversion.presets import get_preset
from rls_lightning.lr_images import LowResImage
from rls_lightning.stylegan import load_generator
from rls_lightning.stylegan.image_folder import list_images, load_images, split_names


DEMO_HR = PROJECT_ROOT / "data" / "demo" / "hr"


def eight_bit(images: torch.Tensor) -> torch.Tensor:
    return ((images.clamp(-1, 1) + 1) * 127.5).round()


def run(args: argparse.Namespace) -> None:
    generator, flow = load_generator(DEMO_GENERATOR), load_flow(DEMO_FLOW)
    if args.demo:  # the eight faces the demo model drew (data/demo/hr), shipped: a file to compare across machines
        args.data, names = DEMO_HR, list_images(DEMO_HR)
    else:
        _, held_out = split_names(list_images(args.data), 1000, 0)
        names = held_out[args.skip:args.skip + args.limit]
    hr = load_images(args.data, names, resolution=generator.img_resolution).float() / 255
    lr = eight_bit(downsample_bicubic(hr * 2 - 1, args.factor)) / 127.5 - 1
    images = [LowResImage(path=Path(n), stem=Path(n).stem, pixels=lr[i], factor=args.factor)
              for i, n in enumerate(names)]
    job = InversionJob(generator, flow, get_preset(args.preset), Path(args.out).parent, batch_size=args.batch_size,
                       trainer=TrainerOptions(precision=resolve_precision(args.precision, "cpu")),
                       log=lambda line: None)
    results: dict[str, torch.Tensor] = {}
    objectives: dict[str, float] = {}

    def keep(image: LowResImage, samples: list) -> None:
        results[image.stem] = torch.cat([eight_bit(samples[0].image_rls), eight_bit(samples[0].image)]).to(torch.uint8)
        objectives[image.stem] = samples[0].terms_rls["total"]

    job.solver.optimise(images, keep)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save({"precision": args.precision, "faces": results, "rls_objective": objectives}, args.out)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a.double() - b.double()).square().mean())  # files before this one held floats, now uint8
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def compare(paths: list[str], rounding_db: float) -> None:
    reference = torch.load(paths[0], weights_only=True)
    for path in paths[1:]:
        other = torch.load(path, weights_only=True)
        fields = {"reference": paths[0], "against": path, "faces": len(reference["faces"])}
        per_face = {stage: {s: psnr(reference["faces"][s][k], other["faces"][s][k]) for s in reference["faces"]}
                    for k, stage in enumerate(("rls", "rls+"))}
        for stage, by_face in per_face.items():
            values = sorted(by_face.values())
            fields[f"{stage}_psnr_db_min"] = round(values[0], 2)
            fields[f"{stage}_psnr_db_median"] = round(values[len(values) // 2], 2)
        if "rls_objective" in reference and "rls_objective" in other:  # files written before they were recorded
            fields["rls_differs"] = [
                {"face": s, "psnr_db": round(db, 2), "objective_reference": reference["rls_objective"][s],
                 "objective_against": other["rls_objective"][s]}
                for s, db in per_face["rls"].items() if db < rounding_db]
        emit("precision_stability", torch.device("cpu"), **fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run")
    one.add_argument("--data", type=Path, default=Path("../shared/data/faces64/faces64.zip"),
                     help="the demo training zip or folder")
    one.add_argument("--skip", type=int, default=0, help="held-out faces to pass over before the first one inverted")
    one.add_argument("--limit", type=int, default=16, help="how many held-out faces to invert")
    one.add_argument("--demo", action="store_true",
                     help="invert the eight shipped demo faces instead of held-out faces (--data, --skip and --limit "
                          "are ignored): benchmarks/reference/ holds float64 results of these to compare against")
    one.add_argument("--factor", type=int, default=8, help="down-scaling factor of the LR inputs")
    one.add_argument("--batch-size", type=int, default=8, help="faces per batch (the batch's shape picks rounding too)")
    one.add_argument("--precision", default="32-true", help="'32-true', '64-true' or 'bf16-mixed'")
    one.add_argument("--preset", default="rls+", help="the inversion preset (default: rls+, the default method)")
    one.add_argument("--out", required=True, help="where the 8-bit results go (.pt)")
    both = sub.add_parser("compare")
    both.add_argument("paths", nargs="+")
    both.add_argument("--rounding-db", type=float, default=30.0,
                      help="RLS results closer than this (PSNR between them) count as equal up to rounding")
    args = parser.parse_args(argv)
    run(args) if args.command == "run" else compare(args.paths, args.rounding_db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
