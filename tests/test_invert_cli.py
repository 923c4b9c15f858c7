import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support.hostile_corpus import finished_stems
from support.inversion_fixtures import known_latents, toy_flow, toy_generator

from rls_lightning.degradations import downsample_bicubic
from rls_lightning.flow.checkpoint import save_flow
from rls_lightning.image_io import to_uint8
from rls_lightning.stylegan import save_generator

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--steps", "20", "--refine-steps", "5"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    G = toy_generator()
    save_generator(G, folder / "G.pt")
    save_flow(toy_flow(G), folder / "flow.pt")
    return folder / "G.pt", folder / "flow.pt", G


def write_lr_images(G, folder: Path, n: int) -> list[np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        lr = downsample_bicubic(G.synthesis(known_latents(G, n, seed=11)), 4).clamp(-1, 1)
    arrays = [to_uint8(lr[i]) for i in range(n)]
    for i, array in enumerate(arrays):
        Image.fromarray(array).save(folder / f"face{i}.png")
    return arrays


def invert(models, *args, check=True, **kwargs):
    generator, flow, _ = models
    cmd = [sys.executable, str(ROOT / "invert.py"), "--generator", str(generator), "--flow", str(flow), *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def read_results(folder: Path) -> dict[str, dict]:
    with open(folder / "results.csv") as f:
        return {row["file"]: row for row in csv.DictReader(f)}


@pytest.mark.slow
def test_outputs_bad_files_and_conversions(models, tmp_path):
    G = models[2]
    lr_dir = tmp_path / "lr"
    arrays = write_lr_images(G, lr_dir, 2)
    data = (lr_dir / "face0.png").read_bytes()
    (lr_dir / "corrupt.png").write_bytes(data[: len(data) // 2])  # a truncated download
    (lr_dir / "notes.txt").write_text("not an image")
    Image.fromarray(arrays[0][:6]).save(lr_dir / "rect.png")  # 8x6
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(lr_dir / "ten.png")  # 32 / 10 is not an integer
    Image.fromarray(arrays[0]).convert("L").save(lr_dir / "gray.png")
    Image.fromarray(arrays[0]).convert("RGBA").save(lr_dir / "rgba.png")
    Image.fromarray((arrays[1][:, :, 0].astype(np.uint16) * 257)).save(lr_dir / "deep.png")  # 16-bit grayscale
    before = {p.name: p.read_bytes() for p in lr_dir.iterdir()}

    result = invert(models, "--lr-dir", str(lr_dir), *FAST, "--batch-size", "3")
    out = tmp_path / "lr_rls+"  # default: beside the input
    rows = read_results(out)
    assert {n for n, r in rows.items() if r["status"] == "ok"} == {"face0.png", "face1.png", "gray.png", "rgba.png",
                                                                    "deep.png"}
    reasons = {n: r["note"] for n, r in rows.items() if r["status"] == "skipped"}
    assert reasons == {"corrupt.png": reasons["corrupt.png"], "notes.txt": "not an image file",
                       "rect.png": "not square (8x6); crop it to a square first",
                       "ten.png": "size 10x10 does not divide the generator's 32px by an integer factor"}
    assert reasons["corrupt.png"].startswith("unreadable image")
    for name in reasons:
        assert f"{name}: skipped" in result.stderr
    assert rows["gray.png"]["note"] == "grayscale replicated to RGB"
    assert rows["rgba.png"]["note"] == "alpha channel dropped"
    assert rows["deep.png"]["note"] == "16-bit grayscale scaled to 8 bits; grayscale replicated to RGB"
    for stem in ("face0", "face1", "gray", "rgba", "deep"):
        assert Image.open(out / f"{stem}.png").size == (32, 32)
        assert (out / f"{stem}_rls.png").is_file()
        saved = torch.load(out / f"{stem}.pt", weights_only=True)
        assert saved["ws"].shape == (1, G.num_ws, G.w_dim) and len(saved["noise"][0]) == len(G.noise_inputs)
    face = rows["face0.png"]
    assert (face["factor"], face["rls_steps"], face["refine_steps"], face["preset"]) == ("4", "20", "5", "rls+")
    assert float(face["lr_l1_final"]) < float(face["lr_l1_rls"])
    assert {p.name: p.read_bytes() for p in lr_dir.iterdir()} == before  # inputs untouched
    assert not list(out.glob(".*.tmp-*"))


def test_several_samples_and_their_spread(models, tmp_path):
    write_lr_images(models[2], tmp_path / "lr", 1)
    invert(models, "--lr-dir", str(tmp_path / "lr"), "--out-dir", str(tmp_path / "out"), "--num-samples", "3",
           "--preset", "rls", "--steps", "15")
    samples = [np.asarray(Image.open(tmp_path / "out" / f"face0_s{k}.png"), dtype=np.float64) for k in range(3)]
    assert np.array_equal(samples[0], np.asarray(Image.open(tmp_path / "out" / "face0.png"), dtype=np.float64))
    expected = (np.stack(samples) / 255.0).std(axis=0, ddof=1).mean(axis=-1)  # per-pixel, [0, 1] scale
    saved = torch.load(tmp_path / "out" / "face0.pt", weights_only=True)
    np.testing.assert_allclose(saved["pixel_std"].numpy(), expected, atol=3e-3)  # PNGs are rounded
    std_png = np.asarray(Image.open(tmp_path / "out" / "face0_std.png"), dtype=np.float64)
    np.testing.assert_allclose(std_png, np.clip(expected / 0.25 * 255, 0, 255), atol=4)
    assert expected.max() > 0.01  # the samples do differ


@pytest.mark.slow
def test_interrupted_run_resumes_and_skips_finished_images(models, tmp_path):
    write_lr_images(models[2], tmp_path / "lr", 3)
    out = tmp_path / "out"
    generator, flow, _ = models
    cmd = [sys.executable, str(ROOT / "invert.py"), "--generator", str(generator), "--flow", str(flow),
           "--lr-dir", str(tmp_path / "lr"), "--out-dir", str(out), "--batch-size", "1", "--steps", "150",
           "--refine-steps", "5"]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not finished_stems(out):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done = finished_stems(out)
    assert 1 <= len(done) < 3, "the run should have been killed part-way"
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file() and p.stem.startswith(done[0])}

    result = invert(models, "--lr-dir", str(tmp_path / "lr"), "--out-dir", str(out), "--batch-size", "1",
                    "--steps", "150", "--refine-steps", "5")
    assert f"resuming: {len(done)} image(s) already done" in result.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name in stamps} == stamps  # not redone
    rows = read_results(out)
    assert sorted(rows) == ["face0.png", "face1.png", "face2.png"]
    assert all(r["status"] == "ok" for r in rows.values())

    # a finished image whose file is replaced by another picture under the same name is redone, not taken over
    replaced = tmp_path / "lr" / f"{done[0]}.png"
    Image.open(replaced).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(replaced)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name.endswith(".pt")}
    again = invert(models, "--lr-dir", str(tmp_path / "lr"), "--out-dir", str(out), "--batch-size", "1",
                   "--steps", "150", "--refine-steps", "5")
    assert "resuming: 2 image(s) already done" in again.stderr
    redone = {name for name, stamp in stamps.items() if (out / name).stat().st_mtime_ns != stamp}
    assert redone == {f"{done[0]}.pt"}


@pytest.mark.slow
def test_two_processes_write_the_same_files_as_one(models, tmp_path):
    write_lr_images(models[2], tmp_path / "lr", 3)
    common = ["--lr-dir", str(tmp_path / "lr"), *FAST, "--batch-size", "2", "--accelerator", "cpu"]
    invert(models, *common, "--out-dir", str(tmp_path / "one"))
    invert(models, *common, "--out-dir", str(tmp_path / "two"), "--devices", "2")
    names = sorted(p.name for p in (tmp_path / "one").iterdir() if p.is_file())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir() if p.is_file())
    for name in names:
        if name.endswith(".png"):
            a = np.asarray(Image.open(tmp_path / "one" / name), dtype=np.int16)
            b = np.asarray(Image.open(tmp_path / "two" / name), dtype=np.int16)
            assert np.abs(a - b).max() <= 1, name
    one, two = read_results(tmp_path / "one"), read_results(tmp_path / "two")
    assert one.keys() == two.keys()
    for name in one:
        for column in ("status", "factor", "rls_steps", "refine_steps"):
            assert one[name][column] == two[name][column]
        assert float(one[name]["lr_l1_final"]) == pytest.approx(float(two[name]["lr_l1_final"]), abs=1e-4)


def test_cli_refuses_bad_arguments(models, tmp_path, capsys):
    from rls_lightning.cli.invert import main

    generator, flow, _ = models
    base = ["--generator", str(generator), "--flow", str(flow)]
    (tmp_path / "lr").mkdir()
    assert main([*base, "--lr-dir", str(tmp_path / "lr"), "--out-dir", str(tmp_path / "lr")]) == 2
    assert "lr: must differ from --lr-dir" in capsys.readouterr().err
    assert main([*base, "--lr-dir", str(tmp_path / "nope")]) == 2
    assert "nope: no such folder" in capsys.readouterr().err
    assert main([*base, "--lr-dir", str(tmp_path / "lr"), "--preset", "magic"]) == 2
    assert "--preset magic: must be one of rls+, rls+literal, rls," in capsys.readouterr().err
    assert main([*base, "--lr-dir", str(tmp_path / "lr"), "--preset", "no-anchor", "--refine-steps", "0"]) == 2
    assert "needs RLS+ steps" in capsys.readouterr().err
    save_generator(toy_generator(seed=1), tmp_path / "other.pt")
    assert main(["--generator", str(tmp_path / "other.pt"), "--flow", str(flow), "--lr-dir", str(tmp_path / "lr")]) == 2
    assert "trained for a different generator" in capsys.readouterr().err


@pytest.mark.slow
def test_overview_shows_lr_rls_result_and_ground_truth(models, tmp_path):
    G = models[2]
    arrays = write_lr_images(G, tmp_path / "lr", 2)
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    hr = [np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8) for i in range(2)]
    for i, array in enumerate(hr):
        Image.fromarray(array).save(hr_dir / f"face{i}.jpg" if i else hr_dir / f"face{i}.png")
    out = tmp_path / "out"
    result = invert(models, "--lr-dir", str(tmp_path / "lr"), "--out-dir", str(out), "--hr-dir", str(hr_dir), *FAST)
    assert "overview.png" in result.stderr
    grid = np.asarray(Image.open(out / "overview.png"))
    # a 24 px caption band, then 2 rows and 4 columns of 32 px results shown 4x (128 px), 2 px gaps
    assert grid.shape == (24 + 2 * 130 - 2, 4 * 130 - 2, 3)

    def tile(row, column):
        return grid[24 + row * 130:24 + row * 130 + 128, column * 130:column * 130 + 128]

    def x4(array):
        return array.repeat(4, axis=0).repeat(4, axis=1)

    for i in range(2):
        np.testing.assert_array_equal(tile(i, 0), x4(arrays[i].repeat(4, axis=0).repeat(4, axis=1)))  # LR 8 -> 128
        np.testing.assert_array_equal(tile(i, 1), x4(np.asarray(Image.open(out / f"face{i}_rls.png"))))
        np.testing.assert_array_equal(tile(i, 2), x4(np.asarray(Image.open(out / f"face{i}.png"))))
        expected_hr = hr[i] if i == 0 else np.asarray(Image.open(hr_dir / "face1.jpg").convert("RGB"))
        np.testing.assert_array_equal(tile(i, 3), x4(expected_hr))
    assert np.all(grid[24 + 128:24 + 130] == 255)  # the gap between rows
    band = grid[:24]
    assert (band < 128).any(axis=2).sum() > 50  # the captions: dark text on the white band
    for column in range(4):  # each column has its caption above it, and the gaps between them stay white
        assert (band[:, column * 130:column * 130 + 128] < 128).any(), column


def test_out_of_memory_ends_with_one_readable_line(models, tmp_path, monkeypatch, capsys):
    from rls_lightning.cli.invert import main
    from rls_lightning.inversion.job import InversionJob

    def out_of_memory(self, images, rejected=(), **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    write_lr_images(models[2], tmp_path / "lr", 1)
    monkeypatch.setattr(InversionJob, "run", out_of_memory)
    code = main(["--generator", str(models[0]), "--flow", str(models[1]), "--lr-dir", str(tmp_path / "lr"),
                 "--batch-size", "16", "--accelerator", "cpu"])
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: out of CPU memory with --batch-size 16: lower it")


def test_a_failing_overview_costs_one_warning_line_and_no_result(models, tmp_path, monkeypatch, capsys):
    """What runs after the optimisation only summarises: a full disk while writing overview.png is one line,
    exit 0, and every result and row written before stays."""
    import errno

    import rls_lightning.overview
    from rls_lightning.cli.invert import main

    def disk_full(array, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    write_lr_images(models[2], tmp_path / "lr", 2)
    monkeypatch.setattr(rls_lightning.overview, "save_png_atomic", disk_full)
    out = tmp_path / "out"
    code = main(["--generator", str(models[0]), "--flow", str(models[1]), "--lr-dir", str(tmp_path / "lr"),
                 "--out-dir", str(out), "--steps", "3", "--refine-steps", "2"])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err
    warnings = [line for line in err.splitlines() if line.startswith(("warning:", "error:"))]
    assert warnings == [f"warning: overview.png not written ({out / 'overview.png'}: no space left on the device "
                        "(free some, then rerun: finished outputs are kept)); every finished result is kept"]
    assert "LR | RLS | RLS+: not written" in err
    rows = read_results(out)
    assert {name: row["status"] for name, row in rows.items()} == {"face0.png": "ok", "face1.png": "ok"}
    for stem in ("face0", "face1"):
        assert np.asarray(Image.open(out / f"{stem}.png")).shape == (32, 32, 3)
        assert (out / f"{stem}_rls.png").is_file() and (out / f"{stem}.pt").is_file()
        assert np.isfinite(float(rows[f"{stem}.png"]["lr_l1_final"]))
    assert not (out / "overview.png").exists()


def test_a_checkout_without_the_demo_model_names_it_and_what_to_pass(monkeypatch, tmp_path):
    """invert.py, train_flow.py and the studies share one --generator check (cli.arguments.check_generator)."""
    import rls_lightning.paths
    from rls_lightning.cli.arguments import check_generator
    from rls_lightning.cli.errors import UsageError

    absent = tmp_path / "demo64" / "generator.pt"
    monkeypatch.setattr(rls_lightning.paths, "DEMO_GENERATOR", absent)
    with pytest.raises(UsageError, match="demo generator is not in this checkout; pass --generator and --flow"):
        check_generator(absent, "pass --generator and --flow")
    with pytest.raises(UsageError, match="elsewhere.pt: no such file"):
        check_generator(tmp_path / "elsewhere.pt", "unused")
