"""Hostile cases of ``invert.py --photos`` (issue 20: a GIF ignored, notes once per face, 12000x9000 called a bomb,
a failed run leaving its folder, photos that exhaust memory), with the toy generator (32 px) and faces the demo
model drew, placed into synthetic backgrounds."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from support.corpus_invert import QUICK, ROOT, rows, toy_models
from support.hostile_corpus import Case, Outcome

from rls_lightning.photos.synthetic import Placement, background, compose, similarity


def photo_args(folder: Path, *extra: str) -> list[str]:
    generator, flow = toy_models()
    return ["--generator", str(generator), "--flow", str(flow), "--photos", str(folder / "photos"), *QUICK,
            "--framing", "faces64", "--out-dir", str(folder / "out"), *extra]


def two_faces(seed: int = 0) -> Image.Image:
    """Two demo faces 16 px wide (LR 16 for the 32 px toy generator: x2) in a smooth 120 x 80 backdrop."""
    demo = [np.asarray(Image.open(ROOT / "data" / "demo" / "hr" / f"demo0{i}.png").convert("RGB")) for i in (0, 3)]
    where = [Placement(similarity(16, 64, 0.0, (30.0, 40.0)), 64), Placement(similarity(16, 64, 0.0, (90.0, 40.0)), 64)]
    return Image.fromarray(compose(background(80, 120, np.random.default_rng(seed), "smooth"), demo, where, 8))


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG announcing ``width x height`` RGB whose pixel data stops after one row: tiny on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = zlib.compress(b"\x00" * (1 + 3 * width))[:-4]  # one row, the stream cut before its end
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", row) + chunk(b"IEND", b""))


def _photos(folder: Path) -> Path:
    photos = folder / "photos"
    photos.mkdir()
    return photos


def _gif_setup(folder: Path) -> list[str]:
    frames = [Image.fromarray(background(60, 80, np.random.default_rng(s), "smooth")) for s in (1, 2)]
    frames[0].save(_photos(folder) / "film.gif", save_all=True, append_images=frames[1:])
    return photo_args(folder)


def _gif_check(folder: Path, outcome: Outcome) -> None:
    assert rows(folder / "out")["film.gif"]["note"] == "no face found"
    with Image.open(folder / "out" / "film_restored.png") as restored:
        assert restored.size == (320, 240)  # x4: read and enlarged like any photo
    assert "first of 2 frames used" in outcome.stderr


def _notes_setup(folder: Path) -> list[str]:
    photos = _photos(folder)
    two_faces(1).convert("CMYK").save(photos / "print.jpg", quality=95)
    rgba = two_faces(2)
    rgba.putalpha(255)
    rgba.save(photos / "cutout.png")
    return photo_args(folder)


def _notes_check(folder: Path, outcome: Outcome) -> None:
    """Each photo's conversion is said once, not once per face (issue 20), and no row repeats it."""
    assert outcome.stderr.count("CMYK converted to RGB") == 1, outcome.stderr
    assert outcome.stderr.count("alpha channel dropped") == 1, outcome.stderr
    faces = rows_by_face(folder / "out")
    assert len(faces) == 4 and not any("converted" in r["note"] or "alpha" in r["note"] for r in faces)


def rows_by_face(out: Path) -> list[dict]:
    import csv

    with open(out / "results.csv") as f:
        return [row for row in csv.DictReader(f) if row["face"]]


def _not_a_bomb_setup(folder: Path) -> list[str]:
    png_header_only(_photos(folder) / "huge.png", 12_000, 9_000)
    return photo_args(folder, "--photo-memory", "1")


def _not_a_bomb_check(folder: Path, outcome: Outcome) -> None:
    """Inside the 12000 px limit: refused by the memory budget (from the header, before decoding), not called
    a decompression bomb; the failed run leaves no folder behind."""
    assert "huge.png: skipped, size 12000x9000 needs about 2.6 GB of memory to decode, more than the 1 GB" \
        in outcome.stderr, outcome.stderr
    assert "bomb" not in outcome.stderr
    assert not (folder / "out").exists()


def _budget_setup(folder: Path) -> list[str]:
    photos = _photos(folder)
    Image.fromarray(background(300, 400, np.random.default_rng(3), "smooth")).save(photos / "wide.png")
    two_faces(4).save(photos / "small.png")
    return photo_args(folder, "--photo-memory", "0.018")


def _budget_check(folder: Path, outcome: Outcome) -> None:
    """400 x 300 needs 19.7 MB to decode (24 bytes per pixel and 16 MiB of the decoders'): over an 18 MB budget,
    refused in one row; the 120 x 80 photo (17 MB) is done."""
    table = rows(folder / "out")
    assert table["wide.png"]["status"] == "skipped"
    assert table["wide.png"]["note"].startswith(
        "size 400x300 needs about 0.02 GB of memory to decode, more than the 0.018 GB allowed (--photo-memory)")
    assert not (folder / "out" / "wide_restored.png").exists()
    assert (folder / "out" / "small_restored.png").is_file()


def _nothing_readable_setup(folder: Path) -> list[str]:
    (_photos(folder) / "notes.txt").write_text("no photo here")
    return photo_args(folder)


def _nothing_left_check(folder: Path, outcome: Outcome) -> None:
    assert "notes.txt: skipped, not an image file" in outcome.stderr
    assert not (folder / "out").exists()  # not even a folder holding only its lock file


def _existing_out_setup(folder: Path) -> list[str]:
    (_photos(folder) / "notes.txt").write_text("no photo here")
    (folder / "out").mkdir()
    return photo_args(folder)


def _users_folder_kept(folder: Path, outcome: Outcome) -> None:
    assert (folder / "out").is_dir()  # it was there before the run: never removed


def _restored_name_taken_setup(folder: Path) -> list[str]:
    two_faces(5).save(_photos(folder) / "party.png")
    (folder / "out").mkdir()
    (folder / "out" / "party_restored.png").write_bytes(b"the user's own picture")
    return photo_args(folder)


def _restored_name_taken_check(folder: Path, outcome: Outcome) -> None:
    assert (folder / "out" / "party_restored.png").read_bytes() == b"the user's own picture"
    assert "party_restored.png: exists and was not written by this tool; not replaced" in outcome.stderr


CASES = [
    Case("photos-gif-is-a-photo", "invert", _gif_setup, code=0, check=_gif_check),
    Case("photos-conversion-notes-once-per-photo", "invert", _notes_setup, code=0, check=_notes_check),
    Case("photos-12000x9000-is-not-a-bomb", "invert", _not_a_bomb_setup, culprit="no readable photo",
         check=_not_a_bomb_check),
    Case("photos-memory-budget", "invert", _budget_setup, code=0, check=_budget_check),
    Case("photos-failed-run-leaves-no-folder", "invert", _nothing_readable_setup, culprit="no readable photo",
         check=_nothing_left_check),
    Case("photos-failed-run-keeps-the-users-folder", "invert", _existing_out_setup, culprit="no readable photo",
         check=_users_folder_kept),
    Case("photos-restored-name-taken-by-the-user", "invert", _restored_name_taken_setup, code=0,
         check=_restored_name_taken_check),
]
