"""The Python API (``from rls_lightning import RLS``): the same pixels, codes and numbers as the commands for the
same settings and seed, inputs of every form read as the files they stand for, settings checked, torch.hub."""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rls_lightning import RLS
from rls_lightning.api import InputError, SettingsError, build_settings
from rls_lightning.api.inputs import to_low_res
from rls_lightning.image_io import read_image

ROOT = Path(__file__).resolve().parents[1]
DEMO_LR = ROOT / "data" / "demo" / "lr8x"
FAST = ["--steps", "4", "--refine-steps", "2"]


def run_invert(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(ROOT / "invert.py"), *args], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def rows_of(folder: Path) -> dict[str, dict]:
    with open(folder / "results.csv") as f:
        return {row["file"]: row for row in csv.DictReader(f)}


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


@pytest.fixture(scope="module")
def demo_model() -> RLS:
    return RLS.from_pretrained(device="cpu")


@pytest.mark.slow
def test_super_resolve_gives_what_invert_py_writes(demo_model, tmp_path):
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    for stem in ("demo00", "demo01"):
        shutil.copy(DEMO_LR / f"{stem}.png", lr_dir)
    run_invert("--lr-dir", str(lr_dir), *FAST, "--num-samples", "2", "--seed", "3")
    out_dir = tmp_path / "lr_rls+"
    rows = rows_of(out_dir)

    with Image.open(lr_dir / "demo01.png") as opened:  # a path and a PIL image, named as the file
        second = opened.copy()
    results = demo_model.super_resolve([lr_dir / "demo00.png", second], names=["demo00", "demo01"], preset="rls+",
                                       seed=3, num_samples=2, steps=4, refine_steps=2)
    assert [r.name for r in results] == ["demo00", "demo01"]
    for r in results:
        assert r.factor == 8 and r.image.size == (64, 64)
        np.testing.assert_array_equal(np.asarray(r.image), pixels(out_dir / f"{r.name}.png"))
        np.testing.assert_array_equal(np.asarray(r.rls_image), pixels(out_dir / f"{r.name}_rls.png"))
        for k in range(2):
            np.testing.assert_array_equal(np.asarray(r.samples[k]), pixels(out_dir / f"{r.name}_s{k}.png"))
        std_map = np.clip(r.pixel_std.numpy() / 0.25 * 255.0, 0, 255).round().astype(np.uint8)
        np.testing.assert_array_equal(std_map, pixels(out_dir / f"{r.name}_std.png"))
        payload = torch.load(out_dir / f"{r.name}.pt", weights_only=True)
        assert torch.equal(r.ws, payload["ws"]) and torch.equal(r.ws_rls, payload["ws_rls"])
        assert r.ws.shape == (2, demo_model.generator.num_ws, demo_model.generator.w_dim)
        for name, values in payload["objective_rls"].items():
            assert r.terms_rls[name] == pytest.approx(float(values[0]), rel=1e-12)
        for name, values in payload["objective_refine"].items():
            assert r.terms_refine[name] == pytest.approx(float(values[0]), rel=1e-12)
        assert torch.equal(r.pixel_std, payload["pixel_std"])
        row = rows[f"{r.name}.png"]
        assert round(r.lr_consistency, 6) == float(row["lr_l1_final"])
        assert round(r.lr_consistency_rls, 6) == float(row["lr_l1_rls"])
        assert round(r.ball_reach, 4) == float(row["ball_reach"]) and str(r.rows_on_ball) == row["rows_on_ball"]
        assert (r.rls_steps, r.refine_steps) == (int(row["rls_steps"]), int(row["refine_steps"]))
        # the unrounded result is the saved picture before 8-bit rounding
        assert np.abs(r.tensor.permute(1, 2, 0).numpy() * 255 - np.asarray(r.image)).max() <= 0.5 + 1e-4


@pytest.mark.slow
def test_the_folder_door_writes_what_invert_py_writes(demo_model, tmp_path):
    """``RLS.super_resolve_folder`` is the door ``invert.py`` goes through: the same folder, file for file, for the
    same settings and seed; the run says what it did, a rerun finds everything done, and a bad input is reported
    (not raised) while the others are super-resolved."""
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    for stem in ("demo03", "demo04"):
        shutil.copy(DEMO_LR / f"{stem}.png", lr_dir)
    (lr_dir / "broken.png").write_bytes(b"not an image")
    run_invert("--lr-dir", str(lr_dir), *FAST, "--seed", "5", "--out-dir", str(tmp_path / "command"))
    reported = []
    run = demo_model.super_resolve_folder(lr_dir, out_dir=tmp_path / "api", hr_dir=ROOT / "data" / "demo" / "hr",
                                          seed=5, steps=4, refine_steps=2, log=lambda line: None,
                                          report=reported.append)
    assert (run.done, run.total) == (2, 2) and run.settings.search.steps == 4
    assert [str(p.path.name) for p in reported] == ["broken.png"]
    assert run.csv_path == tmp_path / "api" / "results.csv" and run.overview == tmp_path / "api" / "overview.png"
    for stem in ("demo03", "demo04"):
        for suffix in ("", "_rls"):
            np.testing.assert_array_equal(pixels(tmp_path / "api" / f"{stem}{suffix}.png"),
                                          pixels(tmp_path / "command" / f"{stem}{suffix}.png"))
    assert rows_of(tmp_path / "api")["broken.png"]["status"] == "skipped"
    again = demo_model.super_resolve_folder(lr_dir, out_dir=tmp_path / "api", seed=5, steps=4, refine_steps=2,
                                            log=lambda line: None, report=lambda problem: None)
    assert (again.done, again.total, again.rows) == (2, 2, [])  # resumed: nothing left to do
    with pytest.raises(ValueError, match="exactly one of lr_dir"):
        demo_model.super_resolve_folder(out_dir=tmp_path / "none")


def test_inputs_of_every_form_are_the_file_they_stand_for():
    path = DEMO_LR / "demo03.png"
    decoded = read_image(path, channels=3)  # the decoder of invert.py --lr-dir, float32 in [0, 1]
    expected = torch.from_numpy(decoded.pixels).permute(2, 0, 1) * 2 - 1
    with Image.open(path) as opened:
        array = np.array(opened.convert("RGB"))
        as_pil = opened.copy()
    tensor = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    forms = [path, str(path), as_pil, array, tensor, torch.from_numpy(array).permute(2, 0, 1)]
    images = to_low_res(forms, 64)
    for image in images:
        assert image.factor == 8
        assert torch.equal(image.pixels, expected)
    assert [image.stem for image in images[:2]] == ["demo03", "demo03"]
    assert [image.stem for image in images[2:]] == ["image2", "image3", "image4", "image5"]
    batch = to_low_res(torch.stack([tensor, tensor.flip(-1)]), 64)  # [N, 3, h, w]: N images
    assert len(batch) == 2 and torch.equal(batch[1].pixels, expected.flip(-1))
    floats = to_low_res(array.astype(np.float64) / 255, 64)[0]  # float input is used as it is
    assert torch.allclose(floats.pixels, expected, atol=1e-6)
    gray = to_low_res(array[:, :, 0], 64)[0]  # [h, w]: replicated to RGB, as a grayscale file is
    assert torch.equal(gray.pixels[1], gray.pixels[0]) and torch.equal(gray.pixels[0], expected[0])


@pytest.mark.parametrize("bad, message", [
    (np.zeros((6, 8, 3), np.uint8), "images[0]: not square (8x6); crop it to a square first"),
    (np.zeros((10, 10, 3), np.uint8),
     "images[0]: size 10x10 does not divide the generator's 64px by an integer factor"),
    (np.full((8, 8, 3), 1.5), "images[0]: float values outside [0, 1] (from 1.5 to 1.5)"),
    (np.full((8, 8, 3), np.nan), "images[0]: non-finite (NaN or infinite) values"),
    (torch.zeros(8, 8, 3), "images[0]: shape (8, 8, 3): expected [3, h, w] (channels first)"),
    ([], "images: the list is empty"),
])
def test_unusable_inputs_are_named_in_one_line(bad, message):
    with pytest.raises(InputError) as caught:
        to_low_res(bad, 64)
    assert str(caught.value) == message


def test_an_unreadable_file_is_named(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(InputError, match=r"notes\.png: not an image file$"):
        to_low_res([DEMO_LR / "demo00.png", tmp_path / "notes.png"], 64)


def test_settings_are_the_preset_with_the_overrides():
    plain = build_settings("rls+")
    settings = build_settings("rls+", steps=7, lambda_c=0.0, refine_lr=1e-3, radius_scale=-1, patience=-1,
                              schedule="one-cycle", trainable_noise=3)
    assert (settings.search.steps, settings.search.lambda_c, settings.search.schedule) == (7, 0.0, "one-cycle")
    assert settings.search.lambda_w == plain.search.lambda_w == 2e-4  # untouched: the paper's value (sec. 4)
    refine = settings.refine
    assert (refine.lr_w, refine.lr_noise, refine.lr_generator) == (1e-3, 1e-3, 1e-3)
    assert refine.radius_scale is None and refine.early_stopping_patience is None
    assert (refine.schedule, refine.trainable_noise, refine.steps) == ("one-cycle", 3, 50)
    assert build_settings("rls+", refine_steps=0).refine.enabled is False
    assert build_settings("pulse").search.pulse_sphere is True


@pytest.mark.parametrize("preset, overrides, message", [
    ("rls+", {"stpes": 3}, "stpes=3: unknown setting (did you mean steps?)"),
    ("rls+", {"steps": 0}, "steps=0: must be an integer >= 1"),
    ("rls+", {"lr": -0.5}, "lr=-0.5: must be a number > 0"),
    ("rls+", {"cross": "sum"}, "cross='sum': must be one of squared-sum, mean-distance, mean-squared"),
    ("rls+", {"steps": 2.5}, "steps=2.5: must be an integer >= 1"),
    ("rls++", {}, "preset='rls++': must be one of"),
    ("no-anchor", {"refine_steps": 0}, "refine_steps=0: preset no-anchor skips RLS, so it needs RLS+ steps"),
])
def test_bad_settings_are_refused_in_one_line(preset, overrides, message):
    with pytest.raises(SettingsError) as caught:
        build_settings(preset, **overrides)
    assert str(caught.value).startswith(message)


def test_torch_hub_loads_the_model(tmp_path):
    from rls_lightning.stylegan import load_generator

    model = torch.hub.load(str(ROOT), "rls", source="local", device="cpu")
    assert isinstance(model, RLS)
    reference = load_generator(ROOT / "checkpoints" / "demo64" / "generator.pt")
    for (name, value), (_, expected) in zip(model.generator.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(value, expected), name
    assert model.models.flow_path == ROOT / "checkpoints" / "demo64" / "flow.pt"


@pytest.mark.slow
def test_restore_photo_gives_what_invert_py_photos_writes(demo_model, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(ROOT / "data" / "demo" / "photos" / "group.png", photos)
    run_invert("--photos", str(photos), *FAST)
    out_dir = tmp_path / "photos_rls+"

    restored = demo_model.restore_photo(photos / "group.png", steps=4, refine_steps=2)
    np.testing.assert_array_equal(np.asarray(restored.image), pixels(out_dir / "group_restored.png"))
    assert restored.image.size[0] == pixels(photos / "group.png").shape[1] * restored.upscale
    rows = [row for row in csv.DictReader(open(out_dir / "results.csv")) if row.get("face")]
    assert len(restored.faces) == len(rows) == 4
    for face in restored.faces:
        stem = f"group_face{face.index}"
        np.testing.assert_array_equal(np.asarray(face.result.image), pixels(out_dir / f"{stem}.png"))
        np.testing.assert_array_equal(np.asarray(face.crop), pixels(out_dir / f"{stem}_lr.png"))
        payload = torch.load(out_dir / f"{stem}.pt", weights_only=True)
        assert np.allclose(face.photo_to_crop, payload["photo_to_crop"].numpy())
        row = next(row for row in rows if row["face"] == str(face.index))
        assert face.pasted == (row["status"] == "ok")


def test_bad_arguments_are_refused_before_any_work(tmp_path, monkeypatch):
    from conftest import randomized_generator

    from rls_lightning.stylegan import save_generator

    with pytest.raises(ValueError, match=r"^device 'gpu': must be one of auto, cpu, cuda, cuda:N, mps$"):
        RLS.from_pretrained(device="gpu")
    with pytest.raises(ValueError, match=r"^precision '16': must be one of"):
        RLS.from_pretrained(precision="16")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty cache: no flow trained for it
    save_generator(randomized_generator(), tmp_path / "G.pt")
    model = RLS.from_pretrained(generator=tmp_path / "G.pt", device="cpu")
    assert model.flow is None and model.models.flow_source == "none"
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match=r"^preset rls\+ needs a flow prior for .*G\.pt: give flow="):
        model.super_resolve(image)
    with pytest.raises(ValueError, match=r"^batch_size=0: must be an integer >= 1$"):
        model.super_resolve(image, preset="pulse", batch_size=0)
    with pytest.raises(FileNotFoundError, match=r"nothing\.pt: no such file"):
        RLS.from_pretrained(generator=tmp_path / "nothing.pt")


@pytest.mark.parametrize("options, message", [
    ({"upscale": 0}, "upscale=0: must be an integer from 1 to 16"),
    ({"upscale": 17}, "upscale=17: must be an integer from 1 to 16"),
    ({"max_faces": 0}, "max_faces=0: must be an integer >= 1"),
    ({"min_factor": 0}, "min_factor=0: must be an integer >= 1"),
    ({"min_face_score": 0.0}, "min_face_score=0.0: must be greater than 0"),
    ({"min_face_score": 1.5}, "min_face_score=1.5: must be at most 1.0"),
    ({"framing": "square"}, "framing=square: must be one of"),
    ({"upscale": 2.5}, "upscale=2.5: must be an integer"),
    ({"seed": -1}, "seed=-1: must be an integer >= 0"),
])
def test_restore_photo_refuses_what_invert_py_refuses_before_any_work(demo_model, options, message):
    """The photo options (one set of rules with invert.py's --upscale, --max-faces, ...) and the counts are checked
    before the photo is read: a nonexistent photo is never reached."""
    with pytest.raises(ValueError) as caught:
        demo_model.restore_photo("/nonexistent/photo.png", **options)
    assert str(caught.value).startswith(message)


def test_a_preset_beside_ready_settings_is_refused(demo_model):
    with pytest.raises(ValueError, match=r"^preset='rls' and settings= of preset rls\+: give one of them$"):
        demo_model.super_resolve(np.zeros((8, 8, 3), np.uint8), preset="rls", settings=build_settings("rls+"))


def test_numpy_numbers_are_numbers_as_invert_py_would_parse_them():
    from rls_lightning.api.folders import PhotoOptions

    settings = build_settings("rls+", steps=np.int64(3), refine_lr=np.float32(0.25), lambda_w=np.float64(0.5))
    assert (settings.search.steps, settings.refine.lr_w, settings.search.lambda_w) == (3, 0.25, 0.5)
    assert type(settings.search.steps) is int and type(settings.refine.lr_w) is float
    with pytest.raises(SettingsError, match=r"^steps=2\.5: must be an integer >= 1$"):
        build_settings("rls+", steps=np.float64(2.5))

    options = PhotoOptions(upscale=np.int64(2), max_faces=np.int32(3), memory_gb=np.float32(1.5))
    assert (options.upscale, options.max_faces, options.memory_gb) == (2, 3, 1.5)
    assert type(options.upscale) is int and type(options.memory_gb) is float


def test_the_folder_door_checks_its_folders_before_any_work(demo_model, tmp_path):
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    shutil.copy(DEMO_LR / "demo00.png", lr_dir)
    with pytest.raises(ValueError, match=r"^out_dir .*lr: must differ from lr_dir \(inputs are never overwritten\)$"):
        demo_model.super_resolve_folder(lr_dir, out_dir=lr_dir)
    (tmp_path / "hr").mkdir()
    with pytest.raises(ValueError, match=r"^out_dir .*hr: must differ from hr_dir"):
        demo_model.super_resolve_folder(lr_dir, out_dir=tmp_path / "hr", hr_dir=tmp_path / "hr")
    with pytest.raises(ValueError, match=r"^lr_dir .*missing: no such folder$"):
        demo_model.super_resolve_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"^photos .*demo00\.png: not a folder$"):
        demo_model.super_resolve_folder(photos=lr_dir / "demo00.png")
    assert sorted(p.name for p in lr_dir.iterdir()) == ["demo00.png"]  # nothing written into the input


def test_a_photo_given_in_memory_is_read_as_its_file_would_be(tmp_path):
    """``restore_photo``'s way in: a PIL image turned upright by its EXIF orientation, like the file it came
    from; float and big-endian 16-bit pixels scaled to 8 bits, not clipped; a hidden file's name kept visible."""
    from rls_lightning.api.photos import _place
    from rls_lightning.photos.restoration import list_photos

    rng = np.random.default_rng(0)
    pixels_ = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    Image.fromarray(pixels_).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    with Image.open(tmp_path / "phone.jpg") as photo:
        folder = tmp_path / "upright"
        folder.mkdir()
        _place(photo, folder)
        shapes = (read_image(folder / "photo.png").pixels.shape, read_image(tmp_path / "phone.jpg").pixels.shape)
        assert shapes == ((50, 30, 3), (50, 30, 3))
    values = rng.random((20, 24), dtype=np.float32)
    for mode, image, expected in (
            ("F", Image.fromarray(values, mode="F"), np.rint(values * 255)),
            ("I;16B", Image.frombytes("I;16B", (24, 20), (values * 65535).astype(">u2").tobytes()),
             np.rint(np.floor(values * 65535) / 65535 * 255))):
        folder = tmp_path / mode.replace(";", "")
        folder.mkdir()
        _place(image, folder)
        written = np.asarray(Image.open(folder / "photo.png").convert("L"), dtype=np.float64)
        assert np.abs(written - expected).max() <= 1, mode
    face = tmp_path / "face.jpg"  # an 8x8 LR face from a phone: super_resolve reads it upright both ways
    Image.open(DEMO_LR / "demo00.png").convert("RGB").transpose(Image.Transpose.ROTATE_90).save(face, exif=exif)
    from_path, from_pil = to_low_res([face], 64)[0], to_low_res([Image.open(face)], 64)[0]
    torch.testing.assert_close(from_pil.pixels, from_path.pixels, rtol=0, atol=0)
    hidden = tmp_path / ".group.png"
    shutil.copy(ROOT / "data" / "demo" / "photos" / "group.png", hidden)
    folder = tmp_path / "hidden"
    folder.mkdir()
    assert _place(hidden, folder) == hidden
    shutil.copy(hidden, tmp_path / ".png")
    _place(tmp_path / ".png", folder)
    assert [p.name for p in list_photos(folder)] == ["group.png", "photo.png"]


def test_a_one_channel_generator_gives_gray_results_as_the_folder_run_does(tmp_path):
    """A generator of one channel (a user's own domain): a path and a PIL RGB image of the same pixels are read
    as gray, as the folder run reads the file (Pillow's convert("L")), and give its 8-bit mode-L picture."""
    from conftest import randomized_generator

    from rls_lightning.api.loading import LoadedModels

    G = randomized_generator(img_channels=1)
    model = RLS(LoadedModels(G, None, tmp_path / "G.pt", None, "none"), device="cpu")
    rgb = np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    (tmp_path / "lr").mkdir()
    Image.fromarray(rgb).save(tmp_path / "lr" / "face.png")
    quick = dict(preset="pulse", steps=2, refine_steps=1)
    model.super_resolve_folder(tmp_path / "lr", out_dir=tmp_path / "out", log=lambda line: None, **quick)
    written = pixels(tmp_path / "out" / "face.png")
    assert written.shape == (16, 16)
    results = model.super_resolve([tmp_path / "lr" / "face.png", Image.fromarray(rgb)], names=["face", "face"],
                                  **quick)
    for result in results:
        assert result.image.mode == "L" and tuple(result.tensor.shape) == (1, 16, 16)
        np.testing.assert_array_equal(np.asarray(result.image), written)


def test_every_setting_of_the_table_reaches_the_inversion_settings():
    """Each override that invert.py, the page and the API offer (api.settings.SETTINGS) changes the settings a run
    gets for some allowed value: a setting added to the table but not to build_settings would be silently ignored."""
    from rls_lightning.api.settings import SETTINGS

    default = build_settings("rls+")
    for name, setting in SETTINGS.items():
        if not setting.override:
            continue
        candidates = {"choice": list(setting.choices or ()), "bool": [True, False], "int": [3, -1],
                      "float": [0.37, -1.0]}[setting.kind]
        changed = [value for value in candidates if setting.accepts(value)
                   and build_settings("rls+", **{name: value}) != default]
        assert changed, name
    assert build_settings("rls+", likelihood_reduction="sum").search.likelihood_reduction == "sum"
