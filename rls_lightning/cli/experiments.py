"""Whole studies of the paper as one command: LR sets, every method, metrics, a markdown table and pictures.

    python -m rls_lightning.cli.experiments table1 --hr-dir celeba_hr --generator ffhq.pkl --flow ffhq-flow.pt \
        --weights-dir ~/weights --out-dir runs/table1

Studies (paper section 4):
  table1          methods x metrics at --factors (default 64 and 8), bicubic included (Table 1)
  ablation-refine the RLS+ variants w/o anchor, noise, w, g, l1-ball at 16x (Table 2, Figure 5)
  ablation-prior  the RLS variants w/o regularisation, P_cross, W+ at 64x (Table 5, Figure 9)
  robustness      RLS+ on bicubic, Gaussian-noise, salt-and-pepper, Gaussian-blur and motion-blur inputs, 16x (Table 4)
  tradeoff        sweeps of lambda_w (lambda_g = lambda_c = 0) and lambda_g (lambda_w = lambda_c = 0), fidelity
                  against realism (Figure 2)
  diversity       several results per LR image from different initialisations, PULSE and RLS, 64x (Figure 7)

Each study writes <out-dir>/<study>.md (the table), <out-dir>/<study>.json (all numbers), comparison grids
<out-dir>/<study>_x<factor>.png (LR | bicubic | each method | HR, labelled), and keeps every intermediate folder
(LR sets, results, metrics), so an interrupted study resumes where it stopped.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from jsonargparse import ArgumentParser

from rls_lightning.api.settings import InversionSettings, get_preset
from rls_lightning.atomic import atomic_write_path
from rls_lightning.cli.arguments import ParagraphHelpFormatter
from rls_lightning.cli.errors import UsageError, guarded
from rls_lightning.lr_images import IMAGE_SUFFIXES
from rls_lightning.lr_sets import DEFAULT_STRENGTH, default_strength, degrade, image_seed
from rls_lightning.names import train_flow_command

METRIC_COLUMNS = [("FID", "FID ↓", 1.0), ("KID", "KID (x10³) ↓", 1e3), ("NIQE", "NIQE ↓", 1.0), ("ID", "ID ↑", 1.0),
                  ("LPIPS", "LPIPS ↓", 1.0), ("PSNR", "PSNR ↑", 1.0), ("SSIM", "SSIM ↑", 1.0),
                  ("MS-SSIM", "MS-SSIM ↑", 1.0), ("LR-L1", "LR-L1 ↓", 1.0)]


@dataclasses.dataclass
class Method:
    label: str
    settings: InversionSettings | None  # None: bicubic upsampling
    corruption: str | None = None
    num_samples: int = 1


def study_plan(name: str, factors: list[int] | None) -> tuple[list[int], list[Method]]:
    rls = get_preset("rls")
    if name == "table1":
        return factors or [64, 8], [Method("Bicubic", None)] + [
            Method(label, get_preset(preset)) for label, preset in
            [("PULSE", "pulse"), ("BRGM", "brgm"), ("RLS", "rls"), ("RLS+", "rls+")]]
    if name == "ablation-refine":
        return factors or [16], [Method(label, get_preset(preset)) for label, preset in
                                 [("w/o anchor", "no-anchor"), ("w/o noise", "no-noise"), ("w/o w", "no-w"),
                                  ("w/o g", "no-g"), ("w/o l1-ball", "no-l1-ball"), ("RLS+", "rls+")]]
    if name == "ablation-prior":
        return factors or [64], [Method(label, get_preset(preset)) for label, preset in
                                 [("w/o Regu.", "no-prior"), ("w/o P_cross", "no-cross"), ("w/o W+", "w-only"),
                                  ("RLS", "rls")]]
    if name == "robustness":
        return factors or [16], [Method("RLS+" if c is None else f"RLS+ ({c})", get_preset("rls+"), corruption=c)
                                 for c in [None, *DEFAULT_STRENGTH]]
    if name == "tradeoff":
        sweep = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
        return factors or [16], (
            [Method(f"lambda_w={v:g}", rls.replace(search=dict(lambda_w=v, lambda_g=0.0, lambda_c=0.0)))
             for v in sweep]
            + [Method(f"lambda_g={v:g}", rls.replace(search=dict(lambda_w=0.0, lambda_g=v, lambda_c=0.0)))
               for v in sweep])
    if name == "diversity":
        return factors or [64], [Method("PULSE", get_preset("pulse"), num_samples=5),
                                 Method("RLS", get_preset("rls"), num_samples=5)]
    raise ValueError(f"unknown study {name!r}")


STUDIES = ["table1", "ablation-refine", "ablation-prior", "robustness", "tradeoff", "diversity"]


def _slug(text: str) -> str:
    """The results folder of a method label; "+" is spelled out so that "RLS" and "RLS+" keep separate folders."""
    return "".join(c if c.isalnum() else "-" for c in text.replace("+", "-plus")).strip("-").lower()


def make_lr_set(hr_paths: list[Path], factor: int, corruption: str | None, out: Path, seed: int) -> Path:
    from rls_lightning.image_io import ImageReadError, load_rgb, save_png_atomic, to_uint8

    strength = default_strength(corruption, factor)
    for path in hr_paths:
        target = out / f"{path.stem}.png"
        if not target.is_file():
            try:
                hr = load_rgb(path)[None] * 2 - 1
            except ImageReadError as err:  # one unreadable HR image must not stop the study
                print(f"{err}: skipped", file=sys.stderr)
                continue
            save_png_atomic(to_uint8(degrade(hr, factor, corruption, strength, image_seed(seed, path.name))[0]), target)
    return out


def comparison_grid(rows: list[list[np.ndarray]], labels: list[str], path: Path, cell: int = 128) -> None:
    """A labelled grid: one row per image, one column per method (images resized to ``cell`` px, nearest)."""
    header = 18
    grid = Image.new("RGB", (cell * len(labels), header + cell * len(rows)), "white")
    draw = ImageDraw.Draw(grid)
    for c, label in enumerate(labels):
        draw.text((c * cell + 4, 3), label[:22], fill="black")
    for r, row in enumerate(rows):
        for c, array in enumerate(row):
            tile = Image.fromarray(array).resize((cell, cell), Image.NEAREST)
            grid.paste(tile, (c * cell, header + r * cell))
    with atomic_write_path(path) as tmp:
        grid.save(tmp, format="PNG")


def markdown_table(results: list[dict], group_by_factor: bool) -> str:
    present = [(k, title, scale) for k, title, scale in METRIC_COLUMNS if any(k in r["metrics"] for r in results)]
    head = (["Scale"] if group_by_factor else []) + ["Method"] + [title for _, title, _ in present]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [f"{r['factor']}x"] if group_by_factor else []
        cells.append(r["method"])
        for key, _, scale in present:
            value = r["metrics"].get(key)
            cells.append("" if value is None else f"{value * scale:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def tradeoff_plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    realism = next((k for k in ("FID", "NIQE", "LPIPS") if all(k in r["metrics"] for r in results)), "LR-L1")
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for prefix, marker in (("lambda_w", "o-"), ("lambda_g", "s-")):
        points = [r for r in results if r["method"].startswith(prefix)]
        ax.plot([r["metrics"]["PSNR"] for r in points], [r["metrics"][realism] for r in points], marker,
                label=f"{prefix} sweep")
        for r in points:
            ax.annotate(r["method"].split("=")[1], (r["metrics"]["PSNR"], r["metrics"][realism]), fontsize=7)
    ax.set_xlabel("PSNR (fidelity) →")
    ax.set_ylabel(f"{realism} (realism, lower is better)")
    ax.legend()
    fig.tight_layout()
    with atomic_write_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def run_study(name: str, hr_dir: Path, out_dir: Path, generator_path: Path, flow_path: Path | None, *,
              factors: list[int] | None = None, weights_dir: Path | None = None, limit: int | None = None,
              overrides: dict | None = None, batch_size: int = 4, seed: int = 0, device: str = "cpu",
              grid_rows: int = 4, log=print) -> list[dict]:
    from rls_lightning.api.loading import load_models
    from rls_lightning.api.model import RLS
    from rls_lightning.degradations import resize_bicubic
    from rls_lightning.image_io import load_rgb, open_image, save_png_atomic, to_uint8
    from rls_lightning.metrics.evaluator import evaluate, json_safe

    factors, methods = study_plan(name, factors)
    models = load_models(generator_path, flow_path)  # without a flow: the one trained for this generator, if any
    model, G = RLS(models, device=device), models.generator
    if not any(G.img_resolution % factor == 0 for factor in factors):
        raise UsageError(f"--factors {' '.join(map(str, factors))}: none divides the generator's "
                         f"{G.img_resolution} px")
    needs_flow = [m.label for m in methods if m.settings is not None and m.settings.needs_flow]
    if needs_flow and models.flow is None:
        raise UsageError(f"{', '.join(needs_flow)} need(s) a flow prior for {generator_path}: pass --flow (train one "
                         f"with: {train_flow_command(generator_path)})")
    if models.flow_source != "given":
        log(models.describe_flow())
    hr_paths = sorted(p for p in hr_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    results = []
    for factor in factors:
        if G.img_resolution % factor:
            log(f"{factor}x skipped: it does not divide the generator's {G.img_resolution}px")
            continue
        columns: dict[str, Path] = {}
        for method in methods:
            lr_dir = make_lr_set(hr_paths, factor, method.corruption,
                                 out_dir / f"lr_x{factor}" / (method.corruption or "bicubic"), seed)
            result_dir = out_dir / f"x{factor}" / _slug(method.label)
            if method.settings is None:
                for path in sorted(lr_dir.glob("*.png")):
                    up = resize_bicubic(load_rgb(path)[None] * 2 - 1, G.img_resolution)
                    save_png_atomic(to_uint8(up[0].clamp(-1, 1)), result_dir / path.name)
            else:
                model.super_resolve_folder(lr_dir, out_dir=result_dir, settings=method.settings.replace(
                    **(overrides or {})), batch_size=batch_size, num_samples=method.num_samples, seed=seed, log=log)
            metrics = evaluate(result_dir, hr_dir, lr_dir, weights_dir, device, progress=False)
            results.append({"method": method.label, "factor": factor, "folder": str(result_dir),
                            "metrics": {**metrics["set_metrics"], **metrics["summary"]}, "notes": metrics["notes"]})
            columns[method.label] = result_dir
            log(f"{name} x{factor} {method.label}: " + ", ".join(f"{k} {v:.4f}" for k, v in
                                                                 results[-1]["metrics"].items()))
        rows = []
        for path in [p for p in hr_paths if (out_dir / f"lr_x{factor}" / "bicubic" / f"{p.stem}.png").is_file()][
                :grid_rows]:  # an unreadable HR image has no LR image and no results
            lr = np.asarray(open_image(out_dir / f"lr_x{factor}" / "bicubic" / f"{path.stem}.png").convert("RGB"))
            row = [lr] + [np.asarray(open_image(folder / f"{path.stem}.png").convert("RGB"))
                          for folder in columns.values()]
            row.append(np.asarray(open_image(path).convert("RGB")))
            if methods[0].num_samples > 1:
                for folder in columns.values():
                    row += [np.asarray(open_image(s).convert("RGB"))
                            for s in sorted(folder.glob(f"{path.stem}_s*.png"))[1:]]
            rows.append(row)
        labels = ["LR"] + list(columns) + ["HR"]
        if methods[0].num_samples > 1:
            labels += [f"{m} sample {k}" for m in columns for k in range(1, methods[0].num_samples)]
        comparison_grid(rows, labels, out_dir / f"{name}_x{factor}.png")
    table = markdown_table(results, group_by_factor=len({r["factor"] for r in results}) > 1)
    notes = sorted({n for r in results for n in r["notes"]})
    text = f"# {name}\n\n{table}\n" + "".join(f"- {n}\n" for n in notes)
    with atomic_write_path(out_dir / f"{name}.md") as tmp:
        tmp.write_text(text)
    with atomic_write_path(out_dir / f"{name}.json") as tmp:
        tmp.write_text(json.dumps(json_safe(results), indent=2, allow_nan=False))
    if name == "tradeoff" and all("PSNR" in r["metrics"] for r in results):
        tradeoff_plot(results, out_dir / "tradeoff.png")
    return results


def build_parser() -> ArgumentParser:
    from rls_lightning.paths import DEMO_FLOW, DEMO_GENERATOR

    parser = ArgumentParser(prog="python -m rls_lightning.cli.experiments", description=__doc__, default_env=False,
                            formatter_class=ParagraphHelpFormatter)
    parser.add_argument("study", choices=STUDIES)
    parser.add_argument("--hr-dir", type=Path, required=True, help="ground-truth HR images (square)")
    parser.add_argument("--out-dir", type=Path, default=None, help="default: runs/<study>")
    parser.add_argument("--generator", type=Path, default=DEMO_GENERATOR,
                        help="StyleGAN2 checkpoint or registry name (python -m rls_lightning.weights list); "
                             "default: the demo model")
    parser.add_argument("--flow", type=Path, default=None,
                        help="flow prior; default: the one train_flow.py trained for --generator (in the weights "
                             f"cache), else {DEMO_FLOW} with the demo generator")
    parser.add_argument("--weights-dir", type=Path, default=None, help="feature networks for the metrics")
    parser.add_argument("--factors", type=int, nargs="+", default=None, help="override the study's factors")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N HR images")
    parser.add_argument("--steps", type=int, default=None, help="override every method's search steps")
    parser.add_argument("--refine-steps", type=int, default=None, help="override every method's RLS+ steps")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, or auto (cuda when a GPU is visible)")
    return parser


def validate_args(args) -> tuple[Path, Path | None]:
    """Every option checked before any work (one line naming option, value and what is allowed); returns the
    output folder and the flow file (None: the one found for the generator, see ``api.loading.flow_for``)."""
    from rls_lightning.cli.arguments import check_device, check_generator, check_input_file, check_output_folder
    from rls_lightning.cli.errors import check_input_dir, check_int

    check_input_dir("--hr-dir", args.hr_dir)
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in args.hr_dir.iterdir()):
        raise UsageError(f"--hr-dir {args.hr_dir}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in it")
    check_input_dir("--weights-dir", args.weights_dir, required=False)
    for factor in args.factors or []:
        check_int("--factors", factor, 2)
    check_int("--limit", args.limit, 1)
    check_int("--steps", args.steps, 1)
    check_int("--refine-steps", args.refine_steps, 1)  # 0 would turn the RLS+ methods into others
    check_int("--batch-size", args.batch_size, 1)
    check_int("--seed", args.seed, 0, 2**31 - 2)  # make_lr.image_seed works modulo 2^31 - 1
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    check_device("--device", args.device)
    args.generator = check_generator(args.generator, "pass --generator and --flow")
    check_input_file("--flow", args.flow, required=False)
    out_dir = args.out_dir or Path("runs") / args.study
    check_output_folder("--out-dir", out_dir, not_equal={"--hr-dir": args.hr_dir, "--weights-dir": args.weights_dir})
    return out_dir, args.flow


@guarded
def main(argv: list[str] | None = None) -> int:
    from rls_lightning.cli.arguments import parse_args
    from rls_lightning.runtime import silence_known_lightning_warnings

    args = parse_args(build_parser(), argv)
    out_dir, flow = validate_args(args)
    silence_known_lightning_warnings()
    overrides = {}
    if args.steps is not None:
        overrides["search"] = {"steps": args.steps}
    if args.refine_steps is not None:
        overrides["refine"] = {"steps": args.refine_steps}
    run_study(args.study, args.hr_dir, out_dir, args.generator, flow, factors=args.factors,
              weights_dir=args.weights_dir, limit=args.limit, overrides=overrides, batch_size=args.batch_size,
              seed=args.seed, device=args.device)
    print(f"wrote {out_dir / (args.study + '.md')} and its pictures")
    return 0


if __name__ == "__main__":  # python -m: the module is imported already; rls-* and the scripts hold signals meanwhile
    from rls_lightning.interrupts import for_process

    for_process(main)
