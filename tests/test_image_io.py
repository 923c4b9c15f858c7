"""The one image decoder (image_io.read_image) and the LR reader built on it (lr_images), checked against
numbers computed independently with numpy and Pillow."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from support.png_writers import png_chunk, write_blank_png, write_png16, write_png_bomb

from rls_lightning.image_io import (ALLOWED_FORMAT_NAMES, ImageOpenError, ImageReadError, ImageTooLarge, load_rgb,
                                   open_image, read_image)
from rls_lightning.lr_images import load_low_res, scan_directory

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- bit depths

def test_48_bit_rgb_and_64_bit_rgba_pngs_keep_all_16_bits(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 65536, (11, 13, 3), dtype=np.uint16)
    write_png16(tmp_path / "rgb.png", rgb)
    decoded = read_image(tmp_path / "rgb.png")
    assert decoded.notes == []
    np.testing.assert_allclose(decoded.pixels, rgb / 65535.0, rtol=0, atol=1e-7)
    assert np.abs(decoded.pixels - (rgb >> 8) * 257 / 65535.0).max() > 1e-3  # the low bytes do count
    rgba = rng.integers(0, 65536, (9, 7, 4), dtype=np.uint16)
    write_png16(tmp_path / "rgba.png", rgba)
    decoded = read_image(tmp_path / "rgba.png")
    assert decoded.notes == ["alpha channel dropped"]
    np.testing.assert_allclose(decoded.pixels, rgba[..., :3] / 65535.0, rtol=0, atol=1e-7)
    gray = read_image(tmp_path / "rgb.png", channels=1)
    luma = (rgb / 65535.0) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(gray.pixels[..., 0], luma, rtol=0, atol=1e-6)
    assert gray.notes == ["RGB converted to L"]


def test_16_bit_grayscale_png_and_pgm_are_exact(tmp_path):
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 65536, (8, 12), dtype=np.uint16)
    Image.fromarray(gray).save(tmp_path / "g.png")  # Pillow writes I;16 as a 16-bit PNG
    decoded = read_image(tmp_path / "g.png")
    assert decoded.notes == ["grayscale replicated to RGB"] and decoded.pixels.shape == (8, 12, 3)
    np.testing.assert_allclose(decoded.pixels, np.repeat(gray[..., None], 3, 2) / 65535.0, rtol=0, atol=1e-7)
    (tmp_path / "g.pgm").write_bytes(b"P5\n12 8\n65535\n" + gray.astype(">u2").tobytes())
    np.testing.assert_allclose(read_image(tmp_path / "g.pgm", channels=1).pixels[..., 0], gray / 65535.0,
                               rtol=0, atol=1e-7)
    rounded = read_image(tmp_path / "g.png", eight_bit=True)
    assert rounded.notes == ["16-bit grayscale scaled to 8 bits", "grayscale replicated to RGB"]
    np.testing.assert_allclose(rounded.pixels[..., 0], np.round(gray / 65535.0 * 255) / 255, rtol=0, atol=1e-7)


def test_float_images_are_used_only_when_finite_and_in_range(tmp_path):
    good = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(good).save(tmp_path / "good.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "good.tif", channels=1).pixels[..., 0], good)
    nan = good.copy()
    nan[2, 3] = np.nan
    Image.fromarray(nan).save(tmp_path / "nan.tif")
    with pytest.raises(ImageReadError, match=r"nan\.tif: 1 non-finite \(NaN or infinite\) float pixel"):
        read_image(tmp_path / "nan.tif")
    Image.fromarray(good * 255).save(tmp_path / "wide.tif")
    with pytest.raises(ImageReadError, match=r"outside \[0, 1\] \(from 0 to 255\)"):
        read_image(tmp_path / "wide.tif")
    Image.fromarray(np.array([[1, 70000]], np.int32)).save(tmp_path / "int32.tif")
    with pytest.raises(ImageReadError, match="no known white level"):
        read_image(tmp_path / "int32.tif")


@pytest.mark.parametrize("mode, note", [("L", "grayscale replicated to RGB"), ("1", "grayscale replicated to RGB"),
                                        ("RGBA", "alpha channel dropped"), ("LA", "alpha channel dropped"),
                                        ("P", "P converted to RGB"), ("CMYK", "CMYK converted to RGB"),
                                        ("RGB", None)])
def test_eight_bit_modes_are_pillows_conversion(tmp_path, mode, note):
    rng = np.random.default_rng(2)
    image = Image.fromarray(rng.integers(0, 256, (10, 6, 3), dtype=np.uint8)).convert(mode)
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    image.save(path)
    decoded = read_image(path)
    assert decoded.notes == ([note] if note else [])
    np.testing.assert_array_equal(decoded.pixels, np.asarray(Image.open(path).convert("RGB"), np.float32) / 255)
    np.testing.assert_array_equal(load_rgb(path).numpy(), decoded.pixels.transpose(2, 0, 1))


# ------------------------------------------------------------------------------------ orientation, frames

def test_exif_orientation_is_applied_and_noted(tmp_path):
    rng = np.random.default_rng(3)
    array = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(array).save(tmp_path / "r.png", exif=exif)
    decoded = read_image(tmp_path / "r.png")
    assert decoded.notes == ["EXIF orientation 6 applied (rotated 90 degrees clockwise)"]
    np.testing.assert_array_equal(decoded.pixels * 255, np.rot90(array, k=-1))
    pil = ImageOps.exif_transpose(Image.open(tmp_path / "r.png"))
    np.testing.assert_array_equal(decoded.pixels * 255, np.asarray(pil))
    rgb16 = rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    write_png16(tmp_path / "deep.png", rgb16)
    data = (tmp_path / "deep.png").read_bytes()  # the same 48-bit file with an eXIf chunk before its pixels
    exif[0x0112] = 3
    before_pixels = data.index(b"IDAT") - 4
    (tmp_path / "deep_r.png").write_bytes(data[:before_pixels] + png_chunk(b"eXIf", exif.tobytes())
                                          + data[before_pixels:])
    decoded = read_image(tmp_path / "deep_r.png")
    assert decoded.notes == ["EXIF orientation 3 applied (rotated 180 degrees)"]
    np.testing.assert_allclose(decoded.pixels, np.rot90(rgb16, 2) / 65535.0, rtol=0, atol=1e-7)


def test_multi_frame_files_use_the_first_frame_and_say_so(tmp_path):
    rng = np.random.default_rng(4)
    frames = [Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(tmp_path / "pages.tif", save_all=True, append_images=frames[1:])
    decoded = read_image(tmp_path / "pages.tif")
    assert decoded.notes == ["first of 3 frames used"]
    np.testing.assert_array_equal(decoded.pixels * 255, np.asarray(frames[0]))
    gray = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (10, 200)]
    gray[0].save(tmp_path / "anim.gif", save_all=True, append_images=gray[1:])
    decoded = read_image(tmp_path / "anim.gif")
    assert decoded.notes[0] == "first of 2 frames used"
    assert np.allclose(decoded.pixels * 255, 10)


# ------------------------------------------------------------------------------------- what is refused

def test_folders_links_pipes_and_broken_files_are_refused_with_a_reason(tmp_path):
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    (tmp_path / "broken.png").symlink_to(tmp_path / "nowhere.png")
    os.mkfifo(tmp_path / "pipe.png")  # opening it would block for ever
    Image.fromarray(np.random.default_rng(6).integers(0, 256, (16, 16), np.uint8)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])  # a truncated download
    (tmp_path / "text.png").write_text("not an image")
    expected = {"folder.png": "a folder, not an image", "loop.png": "broken or looping symbolic link",
                "broken.png": "broken or looping symbolic link",
                "pipe.png": "not a regular file (a pipe, socket or device)", "text.png": "not an image file"}
    for name, reason in expected.items():
        with pytest.raises(ImageReadError) as err:
            read_image(tmp_path / name)
        assert err.value.reason == reason and str(err.value) == f"{tmp_path / name}: {reason}"
    with pytest.raises(ImageReadError, match=r"cut\.png: unreadable image \(.*\)$"):
        read_image(tmp_path / "cut.png")


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 pixels: a warning, made an error
    with pytest.raises(ImageReadError, match="possible decompression bomb"):
        read_image(tmp_path / "bomb.png")
    monkeypatch.undo()
    write_png_bomb(tmp_path / "real.png")  # 900 megapixels in a few hundred bytes
    with pytest.raises(ImageReadError, match=r"possible decompression bomb \(Image size \(900000000 pixels\)"):
        read_image(tmp_path / "real.png")


def test_a_huge_png_is_refused_from_its_header_without_decoding(tmp_path):
    write_blank_png(tmp_path / "huge.png", 9000)  # 243 MB of pixels, 1 GB as float
    script = ("import resource, sys\n"
              "from pathlib import Path\n"
              "from rls_lightning.lr_images import load_low_res\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "print(load_low_res(Path(sys.argv[1]), 64))\n"
              "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n")
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "huge.png")], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    reason, grown_mb = run.stdout.strip().splitlines()
    assert reason == f"{tmp_path / 'huge.png'}: skipped, size 9000x9000 is larger than the generator's 64px output"
    assert int(grown_mb) < 200
    with pytest.raises(ImageTooLarge, match="size 9000x9000 is larger than the 64 px allowed here"):
        read_image(tmp_path / "huge.png", max_side=64)


# -------------------------------------------------------------------------------------------- LR reader

def test_lr_scan_lists_every_entry_as_usable_or_rejected(tmp_path):
    rng = np.random.default_rng(5)
    face = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(face).save(tmp_path / "face.png")
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.fromarray(face).save(tmp_path / "turned.png", exif=exif)
    deep = rng.integers(0, 65536, (16, 16, 3), dtype=np.uint16)
    write_png16(tmp_path / "deep.png", deep)
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "plain-subfolder").mkdir()  # not an input: ignored, as before
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    (tmp_path / ".hidden.png").write_bytes(b"")
    usable, rejected = scan_directory(tmp_path, 32)
    assert {i.path.name: i.note for i in usable} == {
        "face.png": "", "turned.png": "EXIF orientation 8 applied (rotated 90 degrees counter-clockwise)",
        "deep.png": "48-bit RGB scaled to 8 bits per channel"}
    assert {r.path.name: r.reason for r in rejected} == {"folder.png": "a folder, not an image",
                                                        "loop.png": "broken or looping symbolic link"}
    by_name = {i.path.name: i for i in usable}
    np.testing.assert_allclose(by_name["turned.png"].pixels.permute(1, 2, 0).numpy(),
                               np.rot90(face, k=1) / 127.5 - 1, rtol=0, atol=1e-6)
    np.testing.assert_allclose(by_name["deep.png"].pixels.permute(1, 2, 0).numpy(),
                               np.round(deep / 65535 * 255) / 127.5 - 1, rtol=0, atol=1e-6)
    assert (by_name["deep.png"].factor, by_name["face.png"].factor) == (2, 4)
    assert scan_directory(tmp_path / "plain-subfolder", 32) == ([], [])


def test_lr_size_problems_are_reasons(tmp_path):
    Image.fromarray(np.zeros((8, 6), np.uint8)).save(tmp_path / "rect.png")
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(tmp_path / "big.png")
    Image.fromarray(np.zeros((48, 24), np.uint8)).save(tmp_path / "bigrect.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "ten.png")
    reasons = {name: load_low_res(tmp_path / name, 32).reason for name in ("rect.png", "big.png", "bigrect.png",
                                                                            "ten.png")}
    assert reasons == {"rect.png": "not square (6x8); crop it to a square first",
                       "big.png": "size 48x48 is larger than the generator's 32px output",
                       "bigrect.png": "not square (24x48); crop it to a square first",
                       "ten.png": "size 10x10 does not divide the generator's 32px by an integer factor"}


# ---------------------------------------------------------------------------------- allowed formats only

EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n"
       b"newpath 0 0 moveto 16 16 lineto stroke\nshowpage\n%%EOF\n")
RECORDING_GS = """#!/bin/sh
# stands in for Ghostscript: records how it was called and what it was given, then fails as a broken gs would
echo "$@" >> "{record}"
touch "{marker}"
previous=""
for arg; do
  if [ "$previous" = "-f" ] && [ -f "$arg" ]; then cat "$arg" >> "{record}"; fi
  previous="$arg"
done
if [ "$1" = "--version" ]; then echo 10.05.0; exit 0; fi
exit 1
"""
# one fresh interpreter (Pillow remembers whether it found gs) reading the folder the three ways a user's file is
# read: read_image (evaluate, make_lr, the page's HR images), the LR folder reader, the photo path
READERS = """
import json, sys
from pathlib import Path
from rls_lightning.image_io import ImageReadError, read_image
from rls_lightning.lr_images import scan_directory
from rls_lightning.photos.restoration import prepare_photos

folder = Path(sys.argv[1])
got = {}
try:
    read_image(folder / "face.png")
    got["read_image"] = "decoded"
except ImageReadError as err:
    got["read_image"] = str(err)
usable, rejected = scan_directory(folder, 64)
got["lr_dir"] = [str(r) for r in rejected] + [f"{i.path}: usable" for i in usable]
prepared = prepare_photos(folder, 64, "faces64", log=lambda line: None)
got["photos"] = [str(r) for r in prepared.rejected] + [f"{p}: usable" for p in prepared.photos]
print(json.dumps(got))
"""


def test_a_postscript_file_named_png_is_refused_and_ghostscript_never_runs(tmp_path):
    """Issue 2: Pillow picks its reader by content, and its EPS reader runs ``gs -f <file>``. With a recording
    ``gs`` first on PATH (it exists here even where Ghostscript is not installed), a PostScript file named
    face.png is refused in one line naming its real format by every reader of user files, and gs is never run
    (before: read_image ran ``gs --version``, then ``gs ... -f face.png``, which received the file)."""
    bin_dir, folder = tmp_path / "bin", tmp_path / "faces"
    bin_dir.mkdir()
    folder.mkdir()
    record, marker = tmp_path / "gs_calls.txt", tmp_path / "gs_ran"
    (bin_dir / "gs").write_text(RECORDING_GS.format(record=record, marker=marker))
    (bin_dir / "gs").chmod(0o755)
    (folder / "face.png").write_bytes(EPS)
    run = subprocess.run([sys.executable, "-c", READERS, str(folder)], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, timeout=300)
    assert run.returncode == 0, run.stderr
    assert not marker.exists() and not record.exists(), (record.read_text() if record.exists() else "marker only")
    got = json.loads(run.stdout.strip().splitlines()[-1])
    reason = f"a PostScript (EPS) file, not an allowed image format ({ALLOWED_FORMAT_NAMES})"
    assert got == {"read_image": f"{folder / 'face.png'}: {reason}",
                   "lr_dir": [f"{folder / 'face.png'}: skipped, {reason}"],
                   "photos": [f"{folder / 'face.png'}: skipped, {reason}"]}
    assert "\n" not in reason and ALLOWED_FORMAT_NAMES.startswith("PNG, JPEG, WebP, BMP, TIFF")


def test_formats_pillow_reads_but_the_readme_does_not_promise_are_refused_by_name(tmp_path):
    """Only the allowed readers are tried (``Image.open(formats=...)``); what else a file is, is named."""
    rng = np.random.default_rng(7)
    image = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    image.save(tmp_path / "icon.png", format="ICO")
    image.save(tmp_path / "targa.jpg", format="TGA")
    (tmp_path / "doc.png").write_bytes(b"%PDF-1.7\n%...\n")
    (tmp_path / "binary.png").write_bytes(bytes.fromhex("c5d0d3c6") + bytes(28))  # DOS EPS header
    expected = {"icon.png": "an ICO file", "targa.jpg": "a TGA file", "doc.png": "a PDF file",
                "binary.png": "a PostScript (EPS) file"}
    for name, what in expected.items():
        with pytest.raises(ImageOpenError) as err:
            read_image(tmp_path / name)
        assert str(err.value) == f"{tmp_path / name}: {what}, not an allowed image format ({ALLOWED_FORMAT_NAMES})"
        assert isinstance(err.value, OSError)  # what Image.open's callers catch still catches it


@pytest.mark.parametrize("suffix, options", [(".png", {}), (".jpg", {"quality": 95}), (".webp", {"lossless": True}),
                                             (".bmp", {}), (".tif", {}), (".gif", {}), (".ppm", {}),
                                             (".pgm", {})])
def test_every_allowed_format_still_opens(tmp_path, suffix, options):
    rng = np.random.default_rng(8)
    image = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    if suffix == ".pgm":
        image = image.convert("L")
    image.save(tmp_path / f"x{suffix}", **options)
    with open_image(tmp_path / f"x{suffix}") as opened:
        expected = np.asarray(opened.convert("RGB"), np.float32) / 255
    np.testing.assert_array_equal(read_image(tmp_path / f"x{suffix}").pixels, expected)


def test_a_camera_mpo_jpeg_opens_through_the_jpeg_reader(tmp_path):
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (40, 200)]
    frames[0].save(tmp_path / "camera.jpg", format="MPO", save_all=True, append_images=frames[1:])
    with open_image(tmp_path / "camera.jpg") as opened:
        assert opened.format == "MPO"
    assert np.allclose(read_image(tmp_path / "camera.jpg").pixels * 255, 40, atol=2)


# ------------------------------------------------------------------------------- the uint8 decode, in bands

TRANSPOSE_OF_ORIENTATION = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                            6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA", "CMYK"])
def test_banded_decode_is_pillows_whole_conversion_and_transpose(tmp_path, monkeypatch, mode, orientation):
    """An 8-bit file is converted and turned a band of rows at a time (bands of 3 rows here, so that every
    orientation puts bands at both ends): the same pixels as Pillow converting and exif-transposing the whole
    image, as float32 and as uint8."""
    from rls_lightning import image_io

    monkeypatch.setattr(image_io, "_BAND_BYTES", 3 * 11 * 3 * 4)
    rng = np.random.default_rng(orientation)
    image = Image.fromarray(rng.integers(0, 256, (13, 11, 3), dtype=np.uint8)).convert(mode)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")  # Pillow writes CMYK with EXIF only as JPEG
    image.save(path, exif=exif)
    for channels, target in ((3, "RGB"), (1, "L")):
        # what the orientation means (EXIF 2.3): Pillow's whole-image conversion of the file, then its transpose
        with Image.open(path) as stored:
            turned = stored.convert(target)
        if orientation > 1:
            turned = turned.transpose(TRANSPOSE_OF_ORIENTATION[orientation])
        expected = np.asarray(turned).reshape((11, 13, channels) if orientation >= 5 else (13, 11, channels))
        floats = read_image(path, channels=channels)
        bytes_ = read_image(path, channels=channels, dtype=np.uint8)
        np.testing.assert_array_equal(floats.pixels, expected.astype(np.float32) / 255)
        np.testing.assert_array_equal(bytes_.pixels, expected)
        assert bytes_.pixels.dtype == np.uint8 and bytes_.notes == floats.notes


def test_uint8_of_a_deep_file_is_the_rounded_float(tmp_path):
    rgb = np.random.default_rng(9).integers(0, 65536, (9, 7, 3), dtype=np.uint16)
    write_png16(tmp_path / "deep.png", rgb)
    floats, bytes_ = read_image(tmp_path / "deep.png"), read_image(tmp_path / "deep.png", dtype=np.uint8)
    np.testing.assert_array_equal(bytes_.pixels, np.rint(floats.pixels * 255).astype(np.uint8))
