"""``restore_photos``, the last step of ``invert.py --photos``, on finished results laid out as a run leaves them
(a face's PNG and its progress row): which results it pastes, what the restored file carries over from the photo,
and what one photo that changed during the run does to the others. No inversion runs here."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from rls_lightning.inversion.outputs import PROGRESS_DIR
from rls_lightning.lr_images import LowResImage
from rls_lightning.photos.paste import enlarge
from rls_lightning.photos.report import photo_rows
from rls_lightning.photos.restoration import (PhotoFace, PhotoPlan, PreparedPhotos, photo_digest, read_photo_uint8,
                                              restore_photos)

ROOT = Path(__file__).resolve().parents[1]
LR_SIZE, UPSCALE = 16, 2
# the face square: photo pixels (8, 6) to (40, 38), cut at LR_SIZE (photo -> crop coordinates)
PHOTO_TO_CROP = np.array([[0.5, 0.0, -4.0], [0.0, 0.5, -3.0]])


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def lay_out_run(folder: Path, photos: dict[str, Image.Image], crop_of: dict[str, np.ndarray],
                recorded_crop_of: dict[str, np.ndarray] | None = None, **save) -> tuple[PreparedPhotos, Path]:
    """Photos saved as PNG in ``folder/in`` with one face each, and ``folder/out`` as a run leaves it: the face's
    result (demo face 3, in colour) and its row, made from ``recorded_crop_of`` (default: this run's crops)."""
    (folder / "in").mkdir(parents=True)
    out = folder / "out"
    (out / PROGRESS_DIR).mkdir(parents=True)
    prepared = PreparedPhotos([], {}, [], [])
    result = Image.open(ROOT / "data" / "demo" / "hr" / "demo03.png").convert("RGB")
    for name, image in photos.items():
        path = folder / "in" / f"{name}.png"
        image.save(path, **save)
        face = PhotoFace(path, 0, 0.99, np.array([8.0, 6.0, 40.0, 38.0]), PHOTO_TO_CROP, LR_SIZE, 32.0,
                         64 // LR_SIZE)
        crop = LowResImage(path, face.stem, torch.from_numpy(crop_of[name]), face.factor)
        made_from = LowResImage(path, face.stem, torch.from_numpy((recorded_crop_of or crop_of)[name]), face.factor)
        result.save(out / f"{face.stem}.png")
        (out / PROGRESS_DIR / f"{face.stem}.json").write_text(json.dumps(
            {"file": path.name, "status": "ok", "lr_l1_final": 0.001, "input": made_from.digest,
             "files": [f"{face.stem}.png"]}))
        prepared.photos.append(path)
        prepared.faces.append(crop)
        prepared.where[face.stem] = face
        digest = photo_digest(read_photo_uint8(path)[0])
        prepared.plans[path] = PhotoPlan(path, image.size, UPSCALE, [face], digest)
    return prepared, out


def plain(image: Image.Image) -> np.ndarray:
    """The photo's plain enlargement, as uint8 (what the restored photo is where no face is pasted)."""
    return (enlarge(np.asarray(image.convert("RGB")), UPSCALE) * 255).round().astype(np.uint8)


def crops(*names: str, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-1, 1, (3, LR_SIZE, LR_SIZE)).astype(np.float32) for name in names}


def test_a_result_made_from_another_crop_is_not_pasted(tmp_path):
    """A face's result counts only for the crop that made it: after the framing, the detection threshold or the
    photo changed, the face under the same name is another crop, and the old result must not be pasted there."""
    photo = Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 56, 3), dtype=np.uint8))
    current = crops("same", "other")
    before = {"same": current["same"], "other": crops("other", seed=7)["other"]}
    prepared, out = lay_out_run(tmp_path, {"same": photo, "other": photo}, current, before)
    written = restore_photos(prepared, out, log=lambda line: None)
    assert written == [out / "same_restored.png", out / "other_restored.png"]
    expected = plain(photo)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "other_restored.png")), expected)
    pasted = np.asarray(Image.open(out / "same_restored.png")).astype(int)
    assert np.abs(pasted - expected).mean() > 2  # the same photo where the result's crop matches: pasted
    status = {row["photo"]: row["status"] for row in photo_rows(prepared, out)}  # results.csv says the same
    assert status == {"same.png": "ok", "other.png": "missing"}


def test_a_face_named_by_its_place_counts_only_with_its_saved_crop_within_a_level(tmp_path):
    """A face of a photo is named by the photo, the detection settings and its place among the detections; two
    faces of about the same size can trade places when the landmarks move by rounding, so its saved crop
    (``<stem>_lr.png``) must also be this crop within one level (the rounding of a landmark's last bits moves a
    few pixels by one). A row of a folder from before faces were named so counts if it names this very crop."""
    rng = np.random.default_rng(9)
    names = ("drifted", "swapped", "older")
    levels = {name: rng.integers(1, 255, (3, LR_SIZE, LR_SIZE)) for name in names}
    photo = Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 56, 3), dtype=np.uint8))
    prepared, out = lay_out_run(tmp_path, {name: photo for name in names},
                                {name: (levels[name] / 127.5 - 1).astype(np.float32) for name in names})
    saved = {"drifted": levels["drifted"] + rng.integers(-1, 2, levels["drifted"].shape),  # a level at most
             "swapped": levels["drifted"]}  # the other face's crop
    for image in prepared.faces:
        image.source = f"the photo's digest, the settings, {image.stem}"
        name, row_path = image.path.stem, out / PROGRESS_DIR / f"{image.stem}.json"
        row = json.loads(row_path.read_text())
        row["input"] = image.pixel_digest if name == "older" else image.digest
        row_path.write_text(json.dumps(row))
        if name in saved:
            Image.fromarray(saved[name].transpose(1, 2, 0).astype(np.uint8)).save(out / f"{image.stem}_lr.png")
    status = {row["photo"]: row["status"] for row in photo_rows(prepared, out)}
    assert status == {"drifted.png": "ok", "swapped.png": "missing", "older.png": "ok"}


def test_a_black_and_white_photo_gets_a_gray_face(tmp_path):
    """The colour result is pasted as its Rec. 601 luma into a grayscale photo: every pixel keeps R = G = B, and
    the face's middle is the result's luma (0.299 R + 0.587 G + 0.114 B, written out here)."""
    gray = Image.fromarray(np.random.default_rng(2).integers(0, 256, (48, 56), dtype=np.uint8), "L")
    prepared, out = lay_out_run(tmp_path, {"bw": gray}, crops("bw"))
    restore_photos(prepared, out, log=lambda line: None)
    restored = np.asarray(Image.open(out / "bw_restored.png").convert("RGB")).astype(int)
    assert (restored[..., 0] == restored[..., 1]).all() and (restored[..., 0] == restored[..., 2]).all()
    face = np.asarray(Image.open(out / "bw_face0.png"), dtype=np.float64)
    luma = face[..., 0] * 0.299 + face[..., 1] * 0.587 + face[..., 2] * 0.114
    # the square's middle (photo 16-32 x 14-30, enlarged 2x) shows the 64 px result at its own scale (1:1)
    middle = restored[28 + 4:60 - 4, 32 + 4:64 - 4, 0]
    np.testing.assert_allclose(middle, luma[16 + 4:48 - 4, 16 + 4:48 - 4], atol=3)
    assert np.abs(middle - plain(gray)[28 + 4:60 - 4, 32 + 4:64 - 4, 0]).mean() > 5


def test_the_photos_rgb_colour_profile_is_kept(tmp_path):
    """An RGB ICC profile embedded in the photo is written into the restored PNG (read back by Pillow)."""
    photo = Image.fromarray(np.random.default_rng(3).integers(0, 256, (48, 56, 3), dtype=np.uint8))
    profile = srgb_profile()
    prepared, out = lay_out_run(tmp_path, {"tagged": photo}, crops("tagged"), icc_profile=profile)
    restore_photos(prepared, out, log=lambda line: None)
    with Image.open(out / "tagged_restored.png") as restored:
        assert restored.info.get("icc_profile") == profile
        restored.load()  # the whole file still decodes


def test_a_photo_changed_during_the_run_is_skipped_and_the_others_written(tmp_path):
    """A photo that is no longer the picture its faces were cut from (edited during the run: resized, or one
    pixel retouched at the same size, as most edits of a camera's photos are) is not pasted into, with a one-line
    reason, and a photo that cannot be read at all is skipped the same way: the photos after them are still
    written."""
    images = {name: Image.fromarray(np.random.default_rng(k).integers(0, 256, (48, 56, 3), dtype=np.uint8))
              for k, name in enumerate(("edited", "retouched", "gone", "fine"))}
    prepared, out = lay_out_run(tmp_path, images, crops(*images))
    images["edited"].resize((28, 24)).save(tmp_path / "in" / "edited.png")
    retouched = np.asarray(images["retouched"]).copy()
    retouched[30, 2, 1] ^= 1
    Image.fromarray(retouched).save(tmp_path / "in" / "retouched.png")
    (tmp_path / "in" / "gone.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    lines = []
    assert restore_photos(prepared, out, log=lines.append) == [out / "fine_restored.png"]
    assert len(lines) == 3 and all("\n" not in line for line in lines)
    for line, name in zip(lines, ("edited", "retouched")):
        assert line.startswith(f"{tmp_path / 'in' / name}.png: restored photo not written"), line
        assert "is not the picture its faces were cut from (changed during the run)" in line
    assert lines[2].startswith(f"{tmp_path / 'in' / 'gone.png'}: restored photo not written")
    assert not [name for name in images if name != "fine" and (out / f"{name}_restored.png").exists()]


def profile_for(space: str) -> bytes:
    """The sRGB profile with another data colour space in its header (bytes 16-19, ICC.1 sec. 7.2.6)."""
    profile = bytearray(srgb_profile())
    profile[16:20] = space.ljust(4).encode()
    return bytes(profile)


def test_a_gray_photos_gray_profile_is_kept_in_a_grayscale_png(tmp_path):
    """A gray profile describes gray values: a black-and-white photo carrying one is restored as a grayscale PNG
    (colour type 0, PNG sec. 11.2.2) with the profile, its values those of the RGB file it would otherwise be. An
    RGB file of a gray picture keeps its RGB profile in an RGB PNG."""
    gray = Image.fromarray(np.random.default_rng(4).integers(0, 256, (48, 56), dtype=np.uint8), "L")
    prepared, out = lay_out_run(tmp_path / "gray", {"bw": gray}, crops("bw"), icc_profile=profile_for("GRAY"))
    lines = []
    restore_photos(prepared, out, log=lines.append)
    with Image.open(out / "bw_restored.png") as restored:
        assert restored.mode == "L" and restored.info.get("icc_profile") == profile_for("GRAY")
        written = np.asarray(restored)
    prepared, out_untagged = lay_out_run(tmp_path / "untagged", {"bw": gray}, crops("bw"))
    restore_photos(prepared, out_untagged, log=lines.append)
    with Image.open(out_untagged / "bw_restored.png") as untagged:
        assert untagged.mode == "RGB"
        np.testing.assert_array_equal(written, np.asarray(untagged)[..., 0])
    prepared, out_rgb = lay_out_run(tmp_path / "rgb", {"bw": gray.convert("RGB")}, crops("bw"),
                                    icc_profile=srgb_profile())
    restore_photos(prepared, out_rgb, log=lines.append)
    with Image.open(out_rgb / "bw_restored.png") as rgb:
        assert rgb.mode == "RGB" and rgb.info.get("icc_profile") == srgb_profile()
    assert lines == []


def test_a_profile_that_cannot_describe_the_written_values_is_left_out_with_a_line(tmp_path):
    """A CMYK photo's profile does not describe the RGB values it was converted to: left out, and said."""
    cmyk = Image.fromarray(np.random.default_rng(5).integers(0, 256, (48, 56, 4), dtype=np.uint8), "CMYK")
    prepared, out = lay_out_run(tmp_path, {"print": cmyk.convert("RGB")}, crops("print"))
    cmyk.save(tmp_path / "in" / "print.jpg", icc_profile=profile_for("CMYK"), quality=100)
    path = tmp_path / "in" / "print.jpg"
    plan = prepared.plans.pop(tmp_path / "in" / "print.png")
    prepared.photos = [path]
    prepared.plans[path] = PhotoPlan(path, plan.size, plan.upscale, plan.faces, photo_digest(read_photo_uint8(path)[0]))
    lines = []
    assert restore_photos(prepared, out, log=lines.append) == [out / "print_restored.png"]
    assert lines == [f"{path}: its CMYK colour profile is not carried into print_restored.png (its values were "
                     "converted to RGB without it)"]
    with Image.open(out / "print_restored.png") as restored:
        assert restored.mode == "RGB" and "icc_profile" not in restored.info


def test_a_16_bit_photo_says_it_was_cut_to_8_bits(tmp_path):
    """The restored photo is 8-bit: a deeper photo's note says so (the log line of the photo), and its values are
    the 16-bit ones rounded to 8 bits (v / 65535 * 255, written out)."""
    from rls_lightning.photos.restoration import read_photo_uint8

    deep = np.random.default_rng(4).integers(0, 65536, (12, 10), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    pixels, note = read_photo_uint8(tmp_path / "deep.png")
    assert "16-bit grayscale scaled to 8 bits" in note
    np.testing.assert_array_equal(pixels[..., 1], np.round(deep / 65535 * 255).astype(np.uint8))


def test_a_face_of_a_photo_is_named_by_its_photo_and_settings_not_by_its_rounded_crop(tmp_path):
    """Face landmarks differ in their last bits with the CPU's thread count, and a few pixels of the 8-bit crop by
    one level (the demo group photo's first face, 1 against 2 threads, on the machines we use): a resumed run with
    other threads (another node, --devices) redid such faces, and ranks of different CPUs disagreed about which
    results to paste. A face is named by the photo's pixels, the detection settings and its index: another thread
    count keeps every name, another framing, threshold or retouched photo changes every one."""
    import shutil

    from rls_lightning.photos.restoration import prepare_photos

    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(ROOT / "data" / "demo" / "photos" / "group.png", photos)
    threads = torch.get_num_threads()

    def names(framing="faces64", min_score=0.9):
        prepared = prepare_photos(photos, 64, framing, min_score=min_score, log=lambda line: None)
        return [image.digest for image in prepared.faces], [image.pixels for image in prepared.faces]

    try:
        torch.set_num_threads(1)
        one, crops_one = names()
        torch.set_num_threads(2)
        two, crops_two = names()
    finally:
        torch.set_num_threads(threads)
    assert len(one) == 4 and one == two
    assert all((a - b).abs().max() * 127.5 <= 1.0 + 1e-4 for a, b in zip(crops_one, crops_two))  # a level at most
    assert not set(names("ffhq")[0]) & set(one) and not set(names(min_score=0.95)[0]) & set(one)
    pixels = np.asarray(Image.open(photos / "group.png").convert("RGB")).copy()
    pixels[0, 0, 0] ^= 1  # far from every face: the crops are the same, the photo is not
    Image.fromarray(pixels).save(photos / "group.png")
    retouched, crops_retouched = names()
    assert all(map(torch.equal, crops_retouched, crops_two)) and not set(retouched) & set(one)
