"""Hostile cases of ``evaluate`` and ``make_lr`` (see hostile_corpus.py): odd bit depths, broken and non-finite
images, identical images (PSNR = inf), bad options. Every number a case checks is recomputed here with numpy
or Pillow, never taken from the package. The LR reader's cases (EXIF, 48-bit, frames, huge files, folders and
links named like images) are unit tests in test_image_io.py."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image
from support.hostile_corpus import Case, Outcome
from support.png_writers import write_png16

RNG_SEED = 16


# ------------------------------------------------------------------------------------------------ helpers

def _save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _rgb8(seed: int, side: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


def _noisy(array: np.ndarray, amount: int, seed: int) -> np.ndarray:
    """``array`` plus uniform noise of +-``amount`` in its own units, clipped to its dtype's range."""
    top = np.iinfo(array.dtype).max
    noise = np.random.default_rng(seed).integers(-amount, amount + 1, array.shape)
    return np.clip(array.astype(np.int64) + noise, 0, top).astype(array.dtype)


def _psnr(sr: np.ndarray, hr: np.ndarray) -> float:
    """evaluate's default PSNR of two images in [0, 1] (gray or RGB): on BT.601 luma (MATLAB rgb2ycbcr's
    16 + 65.481 R + 128.553 G + 24.966 B), data range 255."""
    def luma(image: np.ndarray) -> np.ndarray:
        image = image.astype(np.float64)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        return 16 + image[..., :3] @ np.array([65.481, 128.553, 24.966])

    return float(10 * np.log10(255 ** 2 / np.mean((luma(sr) - luma(hr)) ** 2)))


def _refuse(constant: str):
    raise AssertionError(f"metrics.json holds the non-standard JSON constant {constant}")


def _metrics(folder: Path) -> tuple[dict, dict[str, dict]]:
    """metrics.json, parsed strictly (Infinity / NaN refused), and metrics.csv's rows by stem."""
    result = json.loads((folder / "metrics.json").read_text(), parse_constant=_refuse)
    with open(folder / "metrics.csv", newline="") as f:
        return result, {row["stem"]: row for row in csv.DictReader(f)}


def _pairs(folder: Path, pairs: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    for stem, (sr, hr) in pairs.items():
        _save(folder / "sr" / f"{stem}.png", sr)
        _save(folder / "hr" / f"{stem}.png", hr)


def _evaluate(folder: Path, *extra: str) -> list[str]:
    return ["--sr-dir", str(folder / "sr"), "--hr-dir", str(folder / "hr"), "--device", "cpu", *extra]


def _two_good_pairs(folder: Path) -> None:
    _pairs(folder, {stem: (_noisy(_rgb8(i), 20, i + 50), _rgb8(i)) for i, stem in enumerate(("a", "b"))})


def _mean_psnr_of_good_pairs(folder: Path) -> float:
    return float(np.mean([_psnr(np.asarray(Image.open(folder / "sr" / f"{s}.png")) / 255,
                                np.asarray(Image.open(folder / "hr" / f"{s}.png")) / 255) for s in ("a", "b")]))


def _truncated(path: Path, source: np.ndarray) -> None:
    _save(path, source)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# --------------------------------------------------------------------------------------- evaluate: numbers

def _setup_16_bit_gray(folder: Path) -> list[str]:
    rng = np.random.default_rng(RNG_SEED)
    same = rng.integers(0, 65536, (16, 16), dtype=np.uint16)
    other = rng.integers(0, 65536, (16, 16), dtype=np.uint16)
    _pairs(folder, {"same": (same, same), "close": (_noisy(other, 200, 1), other)})  # differ below 1/255
    return _evaluate(folder)


def _check_16_bit_gray(folder: Path, outcome: Outcome) -> None:
    result, rows = _metrics(folder / "sr")
    assert rows["same"]["PSNR"] == "inf" and float(rows["same"]["SSIM"]) == 1.0
    sr, hr = (np.asarray(Image.open(folder / d / "close.png"), np.float64) / 65535 for d in ("sr", "hr"))
    expected = _psnr(sr, hr)
    assert expected > 50  # would be read as (nearly) identical at 8 bits, and as 5.77 dB by convert("RGB")
    assert abs(float(rows["close"]["PSNR"]) - expected) < 1e-3
    assert abs(result["summary"]["PSNR"] - expected) < 1e-3  # the mean leaves the inf out, and says so
    assert "PSNR is infinite for 1 of 2 image(s) (SR identical to HR), left out of its mean" in result["notes"]
    assert "PSNR is infinite for 1 of 2" in outcome.stdout and result["pairs"] == 2


def _setup_48_bit_identical(folder: Path) -> list[str]:
    rng = np.random.default_rng(RNG_SEED + 1)
    for stem in ("a", "b"):
        image = rng.integers(0, 65536, (16, 16, 3), dtype=np.uint16)
        for side in ("sr", "hr"):
            (folder / side).mkdir(exist_ok=True)
            write_png16(folder / side / f"{stem}.png", image)
    return _evaluate(folder)


def _check_48_bit_identical(folder: Path, outcome: Outcome) -> None:
    result, rows = _metrics(folder / "sr")
    assert result["summary"]["PSNR"] == "inf" and {r["PSNR"] for r in rows.values()} == {"inf"}
    assert "PSNR: no finite value to average, mean reported as inf" in result["notes"]
    table = outcome.stdout[outcome.stdout.index("2 pairs"):]
    assert "inf" in table and "nan" not in table


def _setup_48_bit_close(folder: Path) -> list[str]:
    hr = np.random.default_rng(RNG_SEED + 2).integers(0, 65536, (16, 16, 3), dtype=np.uint16)
    for side, image in (("sr", _noisy(hr, 300, 2)), ("hr", hr)):
        (folder / side).mkdir(exist_ok=True)
        write_png16(folder / side / "a.png", image)
    (folder / "expected.txt").write_text(repr(_psnr(_noisy(hr, 300, 2) / 65535, hr / 65535)))
    return _evaluate(folder)


def _check_48_bit_close(folder: Path, outcome: Outcome) -> None:
    result, rows = _metrics(folder / "sr")
    expected = float((folder / "expected.txt").read_text())
    assert abs(float(rows["a"]["PSNR"]) - expected) < 1e-3 and abs(result["summary"]["PSNR"] - expected) < 1e-3


def _setup_mixed_sizes(folder: Path) -> list[str]:
    _pairs(folder, {"small": (_noisy(_rgb8(1, 16), 9, 3), _rgb8(1, 16)),
                    "large": (_noisy(_rgb8(2, 24), 30, 4), _rgb8(2, 24))})
    return _evaluate(folder, "--batch-size", "4")  # both in one batch: they cannot be stacked together


def _check_mixed_sizes(folder: Path, outcome: Outcome) -> None:
    result, rows = _metrics(folder / "sr")
    for stem in ("small", "large"):
        expected = _psnr(np.asarray(Image.open(folder / "sr" / f"{stem}.png")) / 255,
                         np.asarray(Image.open(folder / "hr" / f"{stem}.png")) / 255)
        assert abs(float(rows[stem]["PSNR"]) - expected) < 1e-3
    assert result["pairs"] == 2


def _setup_lr_sizes(folder: Path) -> list[str]:
    _two_good_pairs(folder)
    sr = np.asarray(Image.open(folder / "sr" / "a.png"))
    lr = np.stack([np.asarray(Image.fromarray(sr[..., c].astype(np.float32)).resize((4, 4), Image.BICUBIC))
                   for c in range(3)], -1)
    _save(folder / "lr" / "a.png", np.clip(np.round(lr + 10), 0, 255).astype(np.uint8))
    _save(folder / "lr" / "b.png", _rgb8(9, 7))  # 7 px does not divide 16 px
    return _evaluate(folder, "--lr-dir", str(folder / "lr"), "--out-dir", str(folder / "out"))


def _check_lr_sizes(folder: Path, outcome: Outcome) -> None:
    result, rows = _metrics(folder / "out")
    sr = np.asarray(Image.open(folder / "sr" / "a.png"), np.float32) / 255
    down = np.stack([np.asarray(Image.fromarray(sr[..., c]).resize((4, 4), Image.BICUBIC)) for c in range(3)], -1)
    expected = np.abs(down - np.asarray(Image.open(folder / "lr" / "a.png")) / 255).mean()
    assert abs(float(rows["a"]["LR-L1"]) - expected) < 1e-5 and rows["b"]["LR-L1"] == ""
    assert any(n.startswith(f"{folder / 'lr' / 'b.png'}: LR consistency skipped, size 7x7") for n in result["notes"])
    assert abs(result["summary"]["LR-L1"] - expected) < 1e-5  # the mean is over the pairs that have one


# ----------------------------------------------------------------------------- evaluate: unusable files

def _setup_truncated(folder: Path) -> list[str]:
    _two_good_pairs(folder)
    _save(folder / "hr" / "c.png", _rgb8(3))
    _truncated(folder / "sr" / "c.png", _rgb8(3))
    return _evaluate(folder)


def _check_skipped(*names: str, reason: str):
    def check(folder: Path, outcome: Outcome) -> None:
        result, rows = _metrics(folder / "sr")
        assert set(rows) == {"a", "b"} and result["pairs"] == 2 and result["skipped"] == len(names)
        assert abs(result["summary"]["PSNR"] - _mean_psnr_of_good_pairs(folder)) < 1e-3
        for name in names:
            assert any(n.startswith(f"{folder / 'sr' / name}: skipped, {reason}") for n in result["notes"]), \
                result["notes"]
            assert f"{folder / 'sr' / name}: skipped" in outcome.stdout
    return check


def _setup_one_pixel(folder: Path) -> list[str]:
    _two_good_pairs(folder)
    _save(folder / "sr" / "dot.png", _rgb8(8, 1))
    _save(folder / "hr" / "dot.png", _rgb8(9, 1))
    return _evaluate(folder)


def _check_one_pixel(folder: Path, outcome: Outcome) -> None:
    _check_skipped("dot.png", reason="size 1x1 is smaller than SSIM's 11x11 window")(folder, outcome)
    assert "(2 pairs, 1 skipped)" in outcome.stdout  # the table says how many pairs its means are over


def _setup_ambiguous_stems(folder: Path) -> list[str]:
    """a and b are pairs; demo00 has two HR files, c two SR files; a has two LR files, b none."""
    _two_good_pairs(folder)
    _save(folder / "sr" / "demo00.png", _rgb8(10))
    _save(folder / "hr" / "demo00.png", _rgb8(10))
    _save(folder / "hr" / "demo00.jpg", _rgb8(11))
    _save(folder / "sr" / "c.png", _rgb8(12))
    _save(folder / "sr" / "c.bmp", _rgb8(12))
    _save(folder / "hr" / "c.png", _rgb8(12))
    _save(folder / "lr" / "a.png", _rgb8(13, 4))
    _save(folder / "lr" / "a.jpg", _rgb8(13, 4))
    return _evaluate(folder, "--lr-dir", str(folder / "lr"))


def _check_ambiguous_stems(folder: Path, outcome: Outcome) -> None:
    result, rows = _metrics(folder / "sr")
    assert set(rows) == {"a", "b"} and result["pairs"] == 2 and result["skipped"] == 2
    assert abs(result["summary"]["PSNR"] - _mean_psnr_of_good_pairs(folder)) < 1e-3
    assert "LR-L1" not in rows["a"] and "LR-L1" not in result["summary"]  # a: ambiguous, b: no LR file
    for files, consequence in (([folder / "hr" / "demo00.jpg", folder / "hr" / "demo00.png"], "pair demo00 skipped"),
                               ([folder / "sr" / "c.bmp", folder / "sr" / "c.png"], "pair c skipped"),
                               ([folder / "lr" / "a.jpg", folder / "lr" / "a.png"], "LR consistency of a skipped")):
        lines = [line for line in outcome.stdout.splitlines() if all(str(f) in line for f in files)]
        assert len(lines) == 1 and "ambiguous" in lines[0] and lines[0].endswith(consequence), outcome.stdout
    assert result["unpaired"] == {"sr_only": [], "hr_only": []}  # skipped, not unpaired


def _setup_only_ambiguous(folder: Path) -> list[str]:
    _save(folder / "sr" / "demo00.png", _rgb8(1))
    _save(folder / "hr" / "demo00.png", _rgb8(1))
    _save(folder / "hr" / "demo00.jpg", _rgb8(1))
    return _evaluate(folder)


def _setup_nan_tiff(folder: Path) -> list[str]:
    _two_good_pairs(folder)
    pixels = np.full((16, 16), 0.5, np.float32)
    pixels[3, 4] = np.nan
    _save(folder / "sr" / "n.tif", pixels)
    _save(folder / "hr" / "n.png", _rgb8(4))
    return _evaluate(folder)


def _setup_wide_float(folder: Path) -> list[str]:
    _two_good_pairs(folder)
    _save(folder / "sr" / "w.tif", np.linspace(0, 255, 256, dtype=np.float32).reshape(16, 16))
    _save(folder / "hr" / "w.png", _rgb8(5))
    return _evaluate(folder)


def _setup_good_float(folder: Path) -> list[str]:
    hr = np.random.default_rng(6).integers(0, 256, (16, 16), dtype=np.uint8)
    sr = np.clip(hr / 255 + np.random.default_rng(7).normal(0, 0.01, hr.shape), 0, 1).astype(np.float32)
    _save(folder / "sr" / "f.tif", sr)
    _save(folder / "hr" / "f.png", hr)
    (folder / "expected.txt").write_text(repr(_psnr(sr, hr / 255)))
    return _evaluate(folder)


def _check_good_float(folder: Path, outcome: Outcome) -> None:
    _result, rows = _metrics(folder / "sr")
    assert abs(float(rows["f"]["PSNR"]) - float((folder / "expected.txt").read_text())) < 1e-3


def _setup_not_files(folder: Path) -> list[str]:
    _two_good_pairs(folder)
    (folder / "sr" / "x.png").mkdir()
    _save(folder / "hr" / "x.png", _rgb8(6))
    (folder / "sr" / "y.png").symlink_to(folder / "sr" / "gone.png")
    _save(folder / "hr" / "y.png", _rgb8(7))
    return _evaluate(folder)


def _setup_markup_names(folder: Path) -> list[str]:
    _two_good_pairs(folder)
    _save(folder / "hr" / "[red]c.png", _rgb8(3))
    _truncated(folder / "sr" / "[red]c.png", _rgb8(3))  # rich would read "[red]" as markup and hide it
    return _evaluate(folder)


def _setup_all_unreadable(folder: Path) -> list[str]:
    for stem in ("a", "b"):
        _save(folder / "hr" / f"{stem}.png", _rgb8(1))
        _truncated(folder / "sr" / f"{stem}.png", _rgb8(1))
    return _evaluate(folder)


def _check_nothing_written(folder: Path, outcome: Outcome) -> None:
    assert not (folder / "sr" / "metrics.json").exists() and not (folder / "sr" / "metrics.csv").exists()


# ------------------------------------------------------------------------------------ evaluate: options

def _check_weights_dir_not_there_yet(folder: Path, outcome: Outcome) -> None:
    result, rows = _metrics(folder / "sr")
    assert set(rows) == {"a", "b"} and "PSNR" in result["summary"]
    for name in ("weights-inception-2015-12-05-6726825d.pth", "alexnet-owt-7be5be79.pth",
                 "20180402-114759-vggface2.pt"):
        assert f"put it at {folder / 'nothing' / name}" in outcome.stdout
    assert not (folder / "nothing").exists()


def _setup_with(*extra: str, make=_two_good_pairs):
    def setup(folder: Path) -> list[str]:
        make(folder)
        return _evaluate(folder, *[e.format(folder=folder) for e in extra])
    return setup


def _setup_missing_sr(folder: Path) -> list[str]:
    _save(folder / "hr" / "a.png", _rgb8(1))
    return _evaluate(folder)


def _setup_hr_is_file(folder: Path) -> list[str]:
    _save(folder / "sr" / "a.png", _rgb8(1))
    (folder / "hr").write_text("a file, not a folder")
    return _evaluate(folder)


def _setup_no_common_names(folder: Path) -> list[str]:
    _save(folder / "sr" / "a.png", _rgb8(1))
    _save(folder / "hr" / "b.png", _rgb8(1))
    return _evaluate(folder)


def _setup_out_is_file(folder: Path) -> list[str]:
    _two_good_pairs(folder)
    (folder / "report").write_text("an existing file")
    return _evaluate(folder, "--out-dir", str(folder / "report"))


# ------------------------------------------------------------------------------------------------ make_lr

def _smooth_hr(side: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side] / side
    return np.clip(np.stack([128 + 100 * np.sin(2 * np.pi * (c + 1) * xx) * np.cos(2 * np.pi * yy)
                             for c in range(3)], -1), 0, 255).astype(np.uint8)


def _make_lr(folder: Path, *extra: str) -> list[str]:
    return ["--hr-dir", str(folder / "hr"), "--out-dir", str(folder / "lr"), *extra]


def _make_lr_setup(*extra: str):
    def setup(folder: Path) -> list[str]:
        _save(folder / "hr" / "a.png", _smooth_hr())
        return _make_lr(folder, *extra)
    return setup


def _pil_bicubic(hr01: np.ndarray, factor: int) -> np.ndarray:
    """Pillow's antialiased bicubic of each channel of a float image in [0, 1] (the paper's D)."""
    side = hr01.shape[0] // factor
    return np.stack([np.asarray(Image.fromarray(hr01[..., c].astype(np.float32)).resize((side, side), Image.BICUBIC))
                     for c in range(hr01.shape[2])], -1)


def _setup_truncated_hr(folder: Path) -> list[str]:
    _save(folder / "hr" / "a.png", _smooth_hr())
    _truncated(folder / "hr" / "broken.png", _smooth_hr())
    (folder / "hr" / "folder.png").mkdir()
    return _make_lr(folder, "--factor", "4")


def _check_truncated_hr(folder: Path, outcome: Outcome) -> None:
    ours = np.asarray(Image.open(folder / "lr" / "a.png"), np.float64)
    expected = np.clip(_pil_bicubic(_smooth_hr() / 255, 4), 0, 1) * 255
    assert ours.shape == (8, 8, 3) and np.abs(ours - expected).max() <= 0.5 + 1e-6
    assert sorted(p.name for p in (folder / "lr").iterdir()) == ["a.png", "degradation.json"]
    skipped = json.loads((folder / "lr" / "degradation.json").read_text())["skipped"]
    assert skipped == ["broken.png: unreadable image (image file is truncated)",
                       "folder.png: a folder, not an image"], skipped
    assert f"{folder / 'hr' / 'broken.png'}: unreadable image" in outcome.stderr


def _setup_16_bit_hr(folder: Path) -> list[str]:
    yy, xx = np.mgrid[0:32, 0:32] / 32
    gray = np.round((0.5 + 0.45 * np.sin(2 * np.pi * xx) * np.cos(4 * np.pi * yy)) * 65535).astype(np.uint16)
    _save(folder / "hr" / "g.png", gray)
    rgb = (np.stack([gray, gray[::-1], gray[:, ::-1]], -1)).astype(np.uint16)
    (folder / "hr").mkdir(exist_ok=True)
    write_png16(folder / "hr" / "c.png", rgb)
    return _make_lr(folder, "--factor", "4")


def _check_16_bit_hr(folder: Path, outcome: Outcome) -> None:
    gray = np.asarray(Image.open(folder / "hr" / "g.png"), np.float64) / 65535
    expected = np.clip(_pil_bicubic(np.repeat(gray[..., None], 3, 2), 4), 0, 1) * 255
    ours = np.asarray(Image.open(folder / "lr" / "g.png"), np.float64)
    assert np.abs(ours - expected).max() <= 0.5 + 1e-3  # convert("RGB") clipped 16-bit gray to white
    rgb = np.stack([gray, gray[::-1], gray[:, ::-1]], -1)
    ours = np.asarray(Image.open(folder / "lr" / "c.png"), np.float64)
    assert np.abs(ours - np.clip(_pil_bicubic(rgb, 4), 0, 1) * 255).max() <= 0.5 + 1e-3
    assert "g.png: grayscale replicated to RGB" in outcome.stderr


def _setup_blur_too_wide(folder: Path) -> list[str]:
    _save(folder / "hr" / "big.png", _smooth_hr(32))
    _save(folder / "hr" / "tiny.png", _smooth_hr(8))
    return _make_lr(folder, "--factor", "4", "--corruption", "gaussian-blur", "--strength", "1")


def _check_blur_too_wide(folder: Path, outcome: Outcome) -> None:
    sidecar = json.loads((folder / "lr" / "degradation.json").read_text())
    assert sidecar["skipped"] == ["tiny.png: its 2px LR image is too small for gaussian-blur of strength 1 "
                                  "(the blur needs more than 3 px)"]
    assert Image.open(folder / "lr" / "big.png").size == (8, 8) and not (folder / "lr" / "tiny.png").exists()


def _setup_stem_clash(folder: Path) -> list[str]:
    _save(folder / "hr" / "a.png", _smooth_hr())
    _save(folder / "hr" / "a.bmp", 255 - _smooth_hr())
    return _make_lr(folder, "--factor", "4")


def _check_stem_clash(folder: Path, outcome: Outcome) -> None:
    sidecar = json.loads((folder / "lr" / "degradation.json").read_text())
    assert sidecar["skipped"] == ["a.png: same name stem as a.bmp (both would be a.png)"]
    expected = np.clip(_pil_bicubic((255 - _smooth_hr()) / 255, 4), 0, 1) * 255
    assert np.abs(np.asarray(Image.open(folder / "lr" / "a.png"), np.float64) - expected).max() <= 0.5 + 1e-6


def _setup_all_hr_unreadable(folder: Path) -> list[str]:
    _truncated(folder / "hr" / "a.png", _smooth_hr())
    return _make_lr(folder, "--factor", "4")


def _check_no_lr_folder(folder: Path, outcome: Outcome) -> None:
    assert not (folder / "lr").exists()


def _setup_empty_hr(folder: Path) -> list[str]:
    (folder / "hr").mkdir()
    (folder / "hr" / "readme.txt").write_text("no images here")
    return _make_lr(folder, "--factor", "4")


def _setup_out_equals_hr(folder: Path) -> list[str]:
    _save(folder / "hr" / "a.png", _smooth_hr())
    return ["--hr-dir", str(folder / "hr"), "--factor", "4", "--out-dir", str(folder / "hr" / ".." / "hr")]


def _setup_lr_out_is_file(folder: Path) -> list[str]:
    _save(folder / "hr" / "a.png", _smooth_hr())
    (folder / "lr").write_text("an existing file")
    return _make_lr(folder, "--factor", "4")


CASES = [
    # evaluate: what a number means
    Case("evaluate-16-bit-gray-identical-is-inf", "evaluate", _setup_16_bit_gray, code=0, check=_check_16_bit_gray),
    Case("evaluate-48-bit-all-identical-mean-inf", "evaluate", _setup_48_bit_identical, code=0,
         check=_check_48_bit_identical),
    Case("evaluate-48-bit-rgb-full-precision", "evaluate", _setup_48_bit_close, code=0, check=_check_48_bit_close),
    Case("evaluate-float-tiff-in-range-scored", "evaluate", _setup_good_float, code=0, check=_check_good_float),
    Case("evaluate-mixed-sizes-in-one-batch", "evaluate", _setup_mixed_sizes, code=0, check=_check_mixed_sizes),
    Case("evaluate-lr-of-wrong-size-noted", "evaluate", _setup_lr_sizes, code=0, check=_check_lr_sizes),
    # evaluate: one unusable file is skipped with a note, the run goes on
    Case("evaluate-truncated-png-skipped", "evaluate", _setup_truncated, code=0,
         check=_check_skipped("c.png", reason="unreadable image (image file is truncated)")),
    Case("evaluate-nan-float-tiff-skipped", "evaluate", _setup_nan_tiff, code=0,
         check=_check_skipped("n.tif", reason="1 non-finite (NaN or infinite) float pixel(s)")),
    Case("evaluate-float-tiff-out-of-range-skipped", "evaluate", _setup_wide_float, code=0,
         check=_check_skipped("w.tif", reason="float pixels outside [0, 1] (from 0 to 255)")),
    Case("evaluate-folder-and-broken-link-named-like-images", "evaluate", _setup_not_files, code=0,
         check=_check_skipped("x.png", "y.png", reason="")),
    Case("evaluate-markup-in-a-file-name", "evaluate", _setup_markup_names, code=0,
         check=_check_skipped("[red]c.png", reason="unreadable image")),
    Case("evaluate-1x1-pair-skipped", "evaluate", _setup_one_pixel, code=0, check=_check_one_pixel),
    Case("evaluate-two-files-of-one-stem-skipped", "evaluate", _setup_ambiguous_stems, code=0,
         check=_check_ambiguous_stems),
    Case("evaluate-only-an-ambiguous-stem", "evaluate", _setup_only_ambiguous, culprit="demo00.jpg and "),
    Case("evaluate-every-pair-unreadable", "evaluate", _setup_all_unreadable, code=1, culprit="none of the 2 image",
         check=_check_nothing_written),
    # evaluate: options, checked before any work
    Case("evaluate-batch-size-0", "evaluate", _setup_with("--batch-size", "0"), culprit="--batch-size 0"),
    Case("evaluate-batch-size-negative", "evaluate", _setup_with("--batch-size", "-4"), culprit="--batch-size -4"),
    Case("evaluate-unknown-device", "evaluate", _setup_with("--device", "banana"), culprit="--device 'banana'"),
    Case("evaluate-absent-gpu", "evaluate", _setup_with("--device", "cuda:99"), culprit="--device cuda:99"),
    Case("evaluate-missing-sr-dir", "evaluate", _setup_missing_sr, culprit="--sr-dir"),
    Case("evaluate-hr-dir-is-a-file", "evaluate", _setup_hr_is_file, culprit="--hr-dir"),
    Case("evaluate-missing-lr-dir", "evaluate", _setup_with("--lr-dir", "{folder}/nothing"), culprit="--lr-dir"),
    # a --weights-dir that does not exist yet is where downloads would go; offline (as in every test) each
    # network metric is skipped with the path to put its file at, and the folder is not created
    Case("evaluate-weights-dir-not-there-yet", "evaluate", _setup_with("--weights-dir", "{folder}/nothing"),
         code=0, check=_check_weights_dir_not_there_yet),
    Case("evaluate-out-dir-is-a-file", "evaluate", _setup_out_is_file, culprit="--out-dir"),
    Case("evaluate-out-dir-is-the-hr-dir", "evaluate", _setup_with("--out-dir", "{folder}/hr"),
         culprit="must differ from --hr-dir"),
    Case("evaluate-no-names-in-common", "evaluate", _setup_no_common_names, culprit="no image name in common"),
    # make_lr: options, checked before any work
    Case("make-lr-factor-0", "make_lr", _make_lr_setup("--factor", "0"), culprit="--factor 0"),
    Case("make-lr-factor-negative", "make_lr", _make_lr_setup("--factor", "-3"), culprit="--factor -3"),
    Case("make-lr-strength-nan", "make_lr", _make_lr_setup("--factor", "4", "--corruption", "gaussian-noise",
                                                          "--strength", "nan"), culprit="--strength 'nan'"),
    Case("make-lr-strength-negative", "make_lr", _make_lr_setup("--factor", "4", "--corruption", "salt-pepper",
                                                               "--strength", "-1"), culprit="--strength -1"),
    Case("make-lr-salt-pepper-above-1", "make_lr", _make_lr_setup("--factor", "4", "--corruption", "salt-pepper",
                                                                 "--strength", "1.5"), culprit="--strength 1.5"),
    Case("make-lr-blur-of-zero", "make_lr", _make_lr_setup("--factor", "4", "--corruption", "gaussian-blur",
                                                          "--strength", "0"), culprit="--strength 0"),
    Case("make-lr-motion-blur-fractional", "make_lr", _make_lr_setup("--factor", "4", "--corruption", "motion-blur",
                                                                    "--strength", "2.5"), culprit="whole number"),
    Case("make-lr-strength-without-corruption", "make_lr", _make_lr_setup("--factor", "4", "--strength", "0.1"),
         culprit="needs --corruption"),
    Case("make-lr-missing-hr-dir", "make_lr", lambda folder: _make_lr(folder, "--factor", "4"), culprit="--hr-dir"),
    Case("make-lr-out-dir-is-the-hr-dir", "make_lr", _setup_out_equals_hr, culprit="must differ from --hr-dir"),
    Case("make-lr-out-dir-is-a-file", "make_lr", _setup_lr_out_is_file, culprit="exists and is not a folder"),
    Case("make-lr-no-images", "make_lr", _setup_empty_hr, culprit="no image files"),
    # make_lr: one unusable file is skipped, the others written
    Case("make-lr-truncated-hr-among-good", "make_lr", _setup_truncated_hr, code=0, check=_check_truncated_hr),
    Case("make-lr-16-bit-hr-full-precision", "make_lr", _setup_16_bit_hr, code=0, check=_check_16_bit_hr),
    Case("make-lr-blur-wider-than-the-image", "make_lr", _setup_blur_too_wide, code=0, check=_check_blur_too_wide),
    Case("make-lr-two-files-one-stem", "make_lr", _setup_stem_clash, code=0, check=_check_stem_clash),
    Case("make-lr-every-hr-unreadable", "make_lr", _setup_all_hr_unreadable, code=1, culprit="no LR image written",
         check=_check_no_lr_folder),
]
