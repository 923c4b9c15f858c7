"""``invert.py --photos``: whole synthetic photos (faces the demo generator drew, placed by known similarities into
backgrounds) through detection, alignment, RLS / RLS+ and pasting back, as a user runs it."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile_corpus import checksums, run_command
from PIL import Image, ImageDraw, ImageFilter

from rls_lightning.photos.alignment import crop_corners_in_photo
from rls_lightning.photos.crop import lr_size_for
from rls_lightning.photos.paste import enlarge
from rls_lightning.photos.synthetic import Placement, background, compose, similarity

ROOT = Path(__file__).resolve().parents[1]
UPSCALE = 2
# where each face goes: photo, demo face, crop width in the photo, angle (degrees), centre
LAYOUT = {
    "group": [(0, 44, 18.0, (60.0, 52.0)), (3, 30, -25.0, (150.0, 70.0))],
    "border": [(5, 40, 8.0, (14.0, 48.0))],  # about a fifth of the face outside the photo
}
CORNER_TOLERANCE = 0.12  # of the crop's side, mean over the four corners (tests/test_photos.py measured 2-4%)


def read_rows(out: Path) -> list[dict]:
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> tuple[Path, dict[str, list[Placement]]]:
    folder = tmp_path_factory.mktemp("photos")
    demo = [np.asarray(Image.open(ROOT / "data" / "demo" / "hr" / f"demo0{i}.png").convert("RGB")) for i in range(8)]
    placements = {}
    for k, (name, faces) in enumerate(LAYOUT.items()):
        where = [Placement(similarity(width, 64, angle, centre), 64) for _, width, angle, centre in faces]
        backdrop = background(110, 200, np.random.default_rng(k), "smooth")
        photo = compose(backdrop, [demo[i] for i, *_ in faces], where, supersample=4)
        Image.fromarray(photo).save(folder / f"{name}.png")
        placements[name] = where
    Image.fromarray(background(90, 120, np.random.default_rng(9), "gradient")).save(folder / "empty.png")
    data = (folder / "group.png").read_bytes()
    (folder / "broken.png").write_bytes(data[: len(data) // 3])
    return folder, placements


def outside_faces_mask(corners_list: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """True where an enlarged-photo pixel lies more than 2 px from every face's crop square."""
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for corners in corners_list:
        draw.polygon([tuple(p) for p in corners * UPSCALE], fill=255)
    return np.asarray(mask.filter(ImageFilter.MaxFilter(5))) == 0


def test_photos_are_restored_face_by_face(photos, tmp_path):
    folder, placements = photos
    out = tmp_path / "out"
    inputs = checksums(folder)
    args = ["--photos", str(folder), "--out-dir", str(out), "--steps", "3", "--refine-steps", "2",
            "--upscale", str(UPSCALE)]
    outcome = run_command("invert", args)
    assert outcome.code == 0 and "Traceback" not in outcome.stderr, outcome.stderr
    rows = read_rows(out)
    by_photo = {}
    for row in rows:
        by_photo.setdefault(row["file"], []).append(row)
    assert [r["note"] for r in by_photo["empty.png"]] == ["no face found"]
    assert by_photo["broken.png"][0]["status"] == "skipped" and "unreadable" in by_photo["broken.png"][0]["note"]
    for name, where in placements.items():
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
            assert size == lr_size_for(placement.width, 64) and int(row["factor"]) == 64 // size
            assert Image.open(out / f"{stem}_lr.png").size == (size, size)
            assert Image.open(out / f"{stem}.png").size == (64, 64)
            assert float(row["score"]) >= 0.99
            found.append(placement)
        assert len({id(p) for p in found}) == len(where)  # every placed face found once
    for name in ("group", "border", "empty"):
        photo = np.asarray(Image.open(folder / f"{name}.png").convert("RGB"), dtype=np.float32) / 255
        plain = (enlarge(photo, UPSCALE) * 255).round().astype(np.uint8)
        restored = np.asarray(Image.open(out / f"{name}_restored.png"))
        assert restored.shape == plain.shape
        keep = outside_faces_mask([p.corners() for p in placements.get(name, [])], plain.shape[1::-1])
        np.testing.assert_array_equal(restored[keep], plain[keep])  # outside every face: the plain enlargement
        if name != "empty":
            assert np.abs(restored[~keep].astype(int) - plain[~keep]).mean() > 0.5  # the faces were replaced
    assert Image.open(out / "overview.png").height == 3 * 256 + 2 * 2
    assert checksums(folder) == inputs

    again = run_command("invert", args)
    assert again.code == 0 and "resuming: 3 image(s) already done" in again.stderr, again.stderr


def test_photo_options_are_checked_first(photos, tmp_path):
    folder, _ = photos
    for extra, message in ((["--upscale", "0"], "--upscale 0: must be an integer from 1 to 16"),
                           (["--max-faces", "0"], "--max-faces 0: must be an integer >= 1"),
                           (["--min-face-score", "1.5"], "--min-face-score 1.5: must be at most 1.0"),
                           (["--framing", "celeba"], "--framing celeba: must be one of"),
                           (["--lr-dir", str(folder)], "give exactly one of --lr-dir")):
        outcome = run_command("invert", ["--photos", str(folder), "--out-dir", str(tmp_path / "o"), *extra])
        assert outcome.code == 2 and len(outcome.error_lines) == 1 and message in outcome.error_lines[0], outcome
    assert not (tmp_path / "o").exists()
