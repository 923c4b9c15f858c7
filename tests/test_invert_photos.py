"""``invert.py --photos``: whole synthetic photos (faces the demo generator drew, placed by known similarities into
backgrounds) through detection, alignment, RLS / RLS+ and pasting back, as a user runs it."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter
from support.hostile_corpus import checksums, run_command

from rls_lightning.photos import restoration
from rls_lightning.photos.alignment import crop_corners_in_photo
from rls_lightning.photos.crop import lr_size_for
from rls_lightning.photos.paste import enlarge
from rls_lightning.photos.synthetic import Placement, background, compose, similarity

ROOT = Path(__file__).resolve().parents[1]
UPSCALE = 4  # asked for; each photo gets at most what its restored faces fill
# where each face goes: photo, demo face, crop width in the photo, angle (degrees), centre. With the 64 px demo
# model a face is restored when its crop is at most 45 px wide (factor >= 2) and pasted at most 2x larger than
# drawn, so the scale is floor(128 / the widest restored face): group 37 px -> x3, border 28 px -> x4 (both
# stay so within the +-12% alignment tolerance); the portrait's 70 px face is left as it is.
LAYOUT = {
    "group": [(0, 37, 18.0, (60.0, 52.0)), (3, 25, -25.0, (150.0, 70.0))],
    "border": [(5, 28, 8.0, (10.0, 48.0))],  # about a fifth of the face outside the photo
    "portrait": [(2, 70, 5.0, (100.0, 55.0))],
}
RESTORED = {"group", "border"}
CORNER_TOLERANCE = 0.12  # of the crop's side, mean over the four corners (tests/test_photos.py measured 2-4%)


def read_rows(out: Path) -> list[dict]:
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


def expected_upscale(name: str) -> int:
    widths = [width for _, width, *_ in LAYOUT.get(name, []) if width <= 32 * math.sqrt(2)]
    return min(UPSCALE, math.floor(2 * 64 / max(widths))) if widths else UPSCALE


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, dict[str, list[Placement]]]:
    folder = tmp_path_factory.mktemp("photos")
    demo = [np.asarray(Image.open(ROOT / "data" / "demo" / "hr" / f"demo0{i}.png").convert("RGB")) for i in range(8)]
    placements = {}
    for k, (name, faces) in enumerate(LAYOUT.items()):
        where = [Placement(similarity(width, 64, angle, centre), 64) for _, width, angle, centre in faces]
        backdrop = background(110, 200, np.random.default_rng(k), "smooth")
        photo = compose(backdrop, [demo[i] for i, *_ in faces], where, supersample=4)
        image = Image.fromarray(photo)
        if name == "group":  # an alpha channel: dropped, said once for the photo, not once per face
            image.putalpha(255)
        image.save(folder / f"{name}.png")
        placements[name] = where
    Image.fromarray(background(90, 120, np.random.default_rng(9), "gradient")).save(folder / "empty.png")
    frames = [Image.fromarray(background(60, 80, np.random.default_rng(s), "smooth")) for s in (1, 2)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:])
    data = (folder / "border.png").read_bytes()
    (folder / "broken.png").write_bytes(data[: len(data) // 3])
    (folder / "notes.txt").write_text("not a photo")
    return folder, placements


def outside_faces_mask(corners_list: list[np.ndarray], size: tuple[int, int], upscale: int) -> np.ndarray:
    """True where an enlarged-photo pixel lies more than 2 px from every face's crop square."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for corners in corners_list:
        draw.polygon([tuple(p) for p in corners * upscale], fill=255)
    return np.asarray(mask.filter(ImageFilter.MaxFilter(5))) == 0


def plain_enlargement(folder: Path, name: str, upscale: int) -> np.ndarray:
    photo = np.asarray(Image.open(folder / name).convert("RGB"), dtype=np.float32) / 255
    return (enlarge(photo, upscale) * 255).round().astype(np.uint8)


def pil_plain_consistency(lr_png: Path) -> float:
    """Mean |D(bicubic(y)) - y| on [0, 1] computed with Pillow alone: the crop enlarged to 64 px and reduced back
    with its (antialiased) bicubic, in 32-bit float."""
    lr = np.asarray(Image.open(lr_png).convert("RGB"), dtype=np.float32) / 255
    n = lr.shape[0]
    back = []
    for c in range(3):
        big = np.clip(np.asarray(Image.fromarray(lr[..., c], "F").resize((64, 64), Image.BICUBIC)), 0, 1)
        back.append(np.asarray(Image.fromarray(big, "F").resize((n, n), Image.BICUBIC)))
    return float(np.abs(np.stack(back, axis=-1) - lr).mean())


@pytest.mark.slow
def test_photos_are_restored_face_by_face(photos, tmp_path, monkeypatch):
    folder, placements = photos
    out = tmp_path / "out"
    inputs = checksums(folder)
    # 3 + 2 steps cannot reproduce a face: every result would be flagged; here the pasting itself is tested
    monkeypatch.setattr(restoration, "LR_L1_LIMIT", 1.0)
    args = ["--photos", str(folder), "--out-dir", str(out), "--steps", "3", "--refine-steps", "2",
            "--upscale", str(UPSCALE)]
    outcome = run_command("invert", args)
    assert outcome.code == 0 and "Traceback" not in outcome.stderr, outcome.stderr
    assert outcome.stderr.count("alpha channel dropped") == 1, outcome.stderr
    assert "restored at x3, not x4" in outcome.stderr
    rows = read_rows(out)
    by_photo = {}
    for row in rows:
        by_photo.setdefault(row["file"], []).append(row)
    assert [r["note"] for r in by_photo["empty.png"]] == ["no face found"]
    assert [r["note"] for r in by_photo["animated.gif"]] == ["no face found"]  # a GIF is a photo too
    assert by_photo["broken.png"][0]["status"] == "skipped" and "unreadable" in by_photo["broken.png"][0]["note"]
    assert by_photo["notes.txt"][0]["status"] == "skipped" and "not an image" in by_photo["notes.txt"][0]["note"]
    portrait = by_photo["portrait.png"]
    assert [r["status"] for r in portrait] == ["kept"]
    assert "nothing to gain" in portrait[0]["note"] and "--generator ffhq-1024" in portrait[0]["note"]
    assert not (out / "portrait_face0.png").exists()  # not inverted at all
    for name in RESTORED:
        where = placements[name]
        faces = sorted(by_photo[f"{name}.png"], key=lambda r: int(r["face"]))
        assert len(faces) == len(where) and all(r["status"] == "ok" for r in faces)
        found = []
        for row in faces:
            stem = f"{name}_face{row['face']}"
            saved = torch.load(out / f"{stem}.pt", weights_only=True)
            size = int(row["lr_size"])
            corners = crop_corners_in_photo(saved["photo_to_crop"].numpy(), size)
            placement = min(where, key=lambda p: np.abs(p.corners() - corners).sum())
            error = np.hypot(*(corners - placement.corners()).T).mean() / placement.width
            assert error < CORNER_TOLERANCE, (stem, error)
            assert size == lr_size_for(placement.width, 64) and int(row["factor"]) == 64 // size >= 2
            assert float(row["width"]) == pytest.approx(placement.width, rel=CORNER_TOLERANCE)
            assert Image.open(out / f"{stem}_lr.png").size == (size, size)
            assert Image.open(out / f"{stem}.png").size == (64, 64)
            assert float(row["score"]) >= 0.99
            assert int(row["upscale"]) == expected_upscale(name)
            # the plain enlargement's LR consistency, against Pillow's own resampling of the saved crop
            assert float(row["lr_l1_plain"]) == pytest.approx(pil_plain_consistency(out / f"{stem}_lr.png"),
                                                              abs=2e-4)
            assert float(row["lr_l1_final"]) > float(row["lr_l1_plain"])
            found.append(placement)
        assert len({id(p) for p in found}) == len(where)  # every placed face found once
    for name in ("group", "border", "empty", "portrait"):
        upscale = expected_upscale(name)
        plain = plain_enlargement(folder, f"{name}.png", upscale)
        restored = np.asarray(Image.open(out / f"{name}_restored.png"))
        assert restored.shape == plain.shape
        corners = [p.corners() for p in placements.get(name, [])] if name in RESTORED else []
        keep = outside_faces_mask(corners, plain.shape[1::-1], upscale)
        np.testing.assert_array_equal(restored[keep], plain[keep])  # outside every face: the plain enlargement
        if name in RESTORED:
            assert np.abs(restored[~keep].astype(int) - plain[~keep]).mean() > 0.5  # the faces were replaced
    assert checksums(folder) == inputs

    # the same results judged by the real limit: 5 steps do not reproduce a face, so none is pasted
    monkeypatch.setattr(restoration, "LR_L1_LIMIT", 0.0)
    again = run_command("invert", args)
    assert again.code == 0 and "resuming: 3 image(s) already done" in again.stderr, again.stderr
    rows = {(r["file"], r["face"]): r for r in read_rows(out)}
    for name in RESTORED:
        for k in range(len(placements[name])):
            row = rows[(f"{name}.png", str(k))]
            assert row["status"] == "flagged" and "not pasted" in row["note"], row
        restored = np.asarray(Image.open(out / f"{name}_restored.png"))
        np.testing.assert_array_equal(restored, plain_enlargement(folder, f"{name}.png", expected_upscale(name)))


def test_a_face_too_large_for_the_generator_is_restored_only_when_asked(photos, tmp_path, monkeypatch):
    """--min-factor 1 inverts the portrait's 70 px face (x1) too; its photo then stays at x1, where the 70 px face
    is pasted 1.1x larger than drawn (x2 would stretch it 2.2x)."""
    folder, _ = photos
    only = tmp_path / "only"
    only.mkdir()
    (only / "portrait.png").write_bytes((folder / "portrait.png").read_bytes())
    monkeypatch.setattr(restoration, "LR_L1_LIMIT", 1.0)
    outcome = run_command("invert", ["--photos", str(only), "--out-dir", str(tmp_path / "out"), "--steps", "2",
                                     "--refine-steps", "1", "--min-factor", "1"])
    assert outcome.code == 0, outcome.stderr
    (row,) = read_rows(tmp_path / "out")
    assert row["status"] == "ok" and row["factor"] == "1" and row["upscale"] == "1"
    assert Image.open(tmp_path / "out" / "portrait_restored.png").size == Image.open(only / "portrait.png").size


def test_photo_options_are_checked_first(photos, tmp_path):
    folder, _ = photos
    for extra, message in ((["--upscale", "0"], "--upscale 0: must be an integer from 1 to 16"),
                           (["--max-faces", "0"], "--max-faces 0: must be an integer >= 1"),
                           (["--min-factor", "0"], "--min-factor 0: must be an integer >= 1"),
                           (["--photo-memory", "-1"], "--photo-memory -1"),
                           (["--min-face-score", "1.5"], "--min-face-score 1.5: must be at most 1.0"),
                           (["--framing", "celeba"], "--framing celeba: must be one of"),
                           (["--lr-dir", str(folder)], "give exactly one of --lr-dir")):
        outcome = run_command("invert", ["--photos", str(folder), "--out-dir", str(tmp_path / "o"), *extra])
        assert outcome.code == 2 and len(outcome.error_lines) == 1 and message in outcome.error_lines[0], outcome
    assert not (tmp_path / "o").exists()
