"""The web page's gradio-free runner (``rls_lightning.app.session``): the same outputs as ``invert.py`` for the
same settings and seed, bad inputs as one-line messages, cancellation, the zip."""
import csv
import random
import shutil
import threading
import zipfile
from pathlib import Path

import pytest
import torch

from rls_lightning.app.controls import preset_values
from rls_lightning.app.outputs import JobResult, divider_position, output_files
from rls_lightning.app.progress import StepUpdate
from rls_lightning.app.session import JobCancelled, JobFailed, JobRequest, Runner, load_models
from rls_lightning.cli import invert
from rls_lightning.paths import DEMO_GENERATOR

ROOT = Path(__file__).resolve().parents[1]
DEMO_FACE = ROOT / "data" / "demo" / "lr8x" / "demo00.png"
DEMO_PHOTO = ROOT / "data" / "demo" / "photos" / "group.png"
FAST = dict(steps=3, refine_steps=2)

pytestmark = pytest.mark.skipif(not DEMO_GENERATOR.is_file() or not DEMO_FACE.is_file(),
                                reason="the embedded demo model and faces are not in this checkout")


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return Runner(load_models(), tmp_path_factory.mktemp("app-jobs"), accelerator="cpu", preview_every=2)


@pytest.mark.slow
def test_same_outputs_as_invert_py(runner, tmp_path):
    lr_dir = tmp_path / "faces"
    lr_dir.mkdir()
    shutil.copy(DEMO_FACE, lr_dir)
    cli_out = tmp_path / "cli"
    status = invert.main(["--lr-dir", str(lr_dir), "--out-dir", str(cli_out), "--steps", "3", "--refine-steps", "2",
                          "--num-samples", "2", "--seed", "5", "--accelerator", "cpu"])
    assert status == 0
    updates = []
    result = runner.run(JobRequest([DEMO_FACE], **FAST, num_samples=2, seed=5), emit=updates.append)
    assert isinstance(result, JobResult)

    cli_files = {p.relative_to(cli_out).as_posix() for p in output_files(cli_out)}
    app_files = {p.relative_to(result.out_dir).as_posix() for p in output_files(result.out_dir)}
    assert app_files == cli_files == {"demo00.png", "demo00_rls.png", "demo00_s0.png", "demo00_s1.png",
                                      "demo00_std.png", "demo00.pt", "overview.png", "results.csv"}
    for name in sorted(cli_files):
        if name.endswith(".png"):
            assert (result.out_dir / name).read_bytes() == (cli_out / name).read_bytes(), name
    cli_pt, app_pt = (torch.load(folder / "demo00.pt") for folder in (cli_out, result.out_dir))
    assert cli_pt.keys() == app_pt.keys()
    for key in ("ws", "ws_rls", "pixel_std"):
        assert torch.equal(cli_pt[key], app_pt[key]), key
    for cli_maps, app_maps in zip(cli_pt["noise"], app_pt["noise"]):
        assert all(torch.equal(a, b) for a, b in zip(cli_maps, app_maps))
    cli_csv, app_csv = ((folder / "results.csv").read_text().splitlines() for folder in (cli_out, result.out_dir))
    drop_seconds = lambda line: line.split(",")[:9]  # noqa: E731 (the seconds column differs)
    assert [drop_seconds(line) for line in app_csv] == [drop_seconds(line) for line in cli_csv]

    # progress: both stages, every step, a loss, and the current estimate every few steps
    stages = [u.stage.split()[0] for u in updates]
    assert stages.count("RLS") == 3 and stages.count("RLS+") == 2
    assert all(isinstance(u, StepUpdate) and u.loss is not None for u in updates)
    previews = [u.preview for u in updates if u.preview is not None]
    assert previews and previews[0].shape == (64, 128, 3)  # 2 samples side by side at 64 px

    # the zip holds exactly the output files
    with zipfile.ZipFile(result.zip_path) as archive:
        assert sorted(archive.namelist()) == sorted(f"{result.out_dir.name}/{n}" for n in app_files)
        assert archive.read(f"{result.out_dir.name}/demo00.png") == (result.out_dir / "demo00.png").read_bytes()
    image = result.images[0]
    assert image.status == "ok" and len(image.samples) == 2 and image.std is not None
    assert [row[0] for row in result.consistency_rows()] == ["demo00"]
    assert image.lr_l1_final == pytest.approx(float(app_csv[1].split(",")[6]))


def test_preset_values_are_invert_defaults():
    request = JobRequest([DEMO_FACE], **preset_values("rls+"))
    assert all(value is None for value in request.overrides().values())
    args = invert.parse_args(invert.build_parser(), ["--lr-dir", "x"])
    assert invert.settings_from_args(args) == invert.build_settings("rls+")
    assert preset_values("rls")["refine_steps"] == 0 and preset_values("no-l1-ball")["radius_scale"] == -1


def test_bad_inputs_give_one_line(runner, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(JobFailed, match=r"^no usable image: notes.png: "):
        runner.run(JobRequest([text], **FAST))
    odd = tmp_path / "ten.png"
    from PIL import Image

    Image.new("RGB", (10, 10)).save(odd)
    with pytest.raises(JobFailed, match="does not divide the generator's 64px"):
        runner.run(JobRequest([odd], **FAST))
    with pytest.raises(JobFailed, match="RLS steps 0: must be an integer >= 1"):
        runner.run(JobRequest([DEMO_FACE], steps=0, refine_steps=2))
    with pytest.raises(JobFailed, match="upload one or more images"):
        runner.run(JobRequest([]))
    # a usable image next to a bad one: the job runs, the bad one is a message
    result = runner.run(JobRequest([DEMO_FACE, text], **FAST))
    assert [r.stem for r in result.images] == ["demo00"]
    assert any(m.startswith("notes.png: ") for m in result.messages)


@pytest.mark.skipif(not DEMO_PHOTO.is_file(), reason="no demo photo")
def test_photo_without_face_is_a_message(runner, tmp_path):
    from PIL import Image

    blank = tmp_path / "wall.png"
    Image.new("RGB", (48, 32), (120, 130, 140)).save(blank)
    result = runner.run(JobRequest([blank], mode="photos", **FAST))
    assert result.images == [] and result.messages == ["wall.png: no face found"]
    assert [p.name for p in result.photos] == ["wall.png"] and result.photos[0].restored.is_file()


@pytest.mark.skipif(not DEMO_PHOTO.is_file(), reason="no demo photo")
@pytest.mark.slow
def test_a_photo_gives_the_same_files_as_invert_py_photos(runner, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(DEMO_PHOTO, photos)
    cli_out = tmp_path / "cli"
    assert invert.main(["--photos", str(photos), "--out-dir", str(cli_out), "--steps", "2", "--refine-steps", "1",
                        "--accelerator", "cpu"]) == 0
    result = runner.run(JobRequest([DEMO_PHOTO], mode="photos", steps=2, refine_steps=1))
    cli_files = {p.relative_to(cli_out).as_posix() for p in output_files(cli_out)}
    app_files = {p.relative_to(result.out_dir).as_posix() for p in output_files(result.out_dir)}
    assert app_files == cli_files and "group_restored.png" in app_files
    assert sum(name.endswith("_rls.png") for name in app_files) == 4  # the demo photo's four faces
    for name in sorted(cli_files):
        if name.endswith(".png"):
            assert (result.out_dir / name).read_bytes() == (cli_out / name).read_bytes(), name
    assert [p.faces for p in result.photos] == [4] and result.photos[0].restored.is_file()
    # the slider's divider starts between faces: off every box of results.csv (the demo's middle face sits at 50%)
    boxes = [[float(v) for v in row["box"].split()] for row in csv.DictReader(open(result.out_dir / "results.csv"))]
    divider = result.photos[0].divider / 100 * 190  # the demo photo is 190 px wide
    assert any(x0 < 95 < x1 for x0, _, x1, _ in boxes)
    assert all(not x0 <= divider <= x1 for x0, _, x1, _ in boxes), (divider, boxes)


def _divider_by_scanning(spans, width, margin=0.1, steps=20_000):
    """The same rule by brute force: mark covered columns on a fine grid, take each uncovered run's middle."""
    xs = [width * (i + 0.5) / steps for i in range(steps)]
    free = [not any(x0 - margin * (x1 - x0) <= x <= x1 + margin * (x1 - x0) for x0, x1 in spans) for x in xs]
    runs, begin = [], None
    for i, ok in enumerate(free + [False]):
        if ok and begin is None:
            begin = i
        elif not ok and begin is not None:
            runs.append((xs[begin] + xs[i - 1]) / 2)
            begin = None
    if not runs:
        return 50.0
    return 100 * min(runs, key=lambda x: (abs(x - width / 2), x)) / width


def test_photo_slider_divider_against_a_scan():
    rng = random.Random(7)
    cases = [([], 100.0), ([(40.0, 60.0)], 100.0), ([(-5.0, 105.0)], 100.0), ([(0.0, 45.0), (55.0, 100.0)], 100.0)]
    for _ in range(60):
        width = rng.uniform(50, 400)
        spans = []
        for _ in range(rng.randint(1, 6)):
            x0 = rng.uniform(-0.1 * width, width)
            spans.append((x0, x0 + rng.uniform(0.03, 0.3) * width))
        cases.append((spans, width))
    for spans, width in cases:
        assert divider_position(spans, width) == pytest.approx(_divider_by_scanning(spans, width), abs=0.02), spans
    assert divider_position([(40.0, 60.0)], 100.0) == 19.0  # one face in the middle: the left stretch's middle


def test_cancel_stops_within_a_few_steps_and_only_for_the_session_that_started_it(runner):
    """Stop (``cancel_for``) ends the job within a few steps, but only when pressed in the browser session that
    started it: another visitor's Stop leaves it running."""
    job = runner.start(JobRequest([DEMO_FACE], steps=500, refine_steps=2), owner="session-a")
    steps = []
    outcome = None
    for event in job.updates(poll=0.2):
        if isinstance(event, StepUpdate):
            steps.append(event.step)
            if event.step == 2:
                assert not runner.cancel_for("session-b") and not runner.cancel_for(None)
            if event.step == 3:
                assert job.stop.requested is None, "another session's Stop cancelled the job"
                assert runner.cancel_for("session-a")
        elif event is not None:
            outcome = event
    assert isinstance(outcome, JobCancelled)
    assert job.join(timeout=30) and max(steps) <= 5
    assert not any(p.name == "demo00.png" for p in output_files(outcome_folder(runner)))


def test_a_fraction_for_a_whole_number_is_refused_as_invert_py_refuses_it(runner):
    for fields in (dict(steps=1.5), dict(upscale=2.5), dict(num_samples=1.5)):
        with pytest.raises(JobFailed, match=r" (1|2)\.5: must be a whole number$"):
            runner.run(JobRequest([DEMO_FACE], **{**FAST, **fields}))


def test_abandoned_job_cancels_itself(runner):
    runner.abandon_after = 0.5
    try:
        job = runner.start(JobRequest([DEMO_FACE], steps=2000, refine_steps=2))
        assert job.join(timeout=60), "a job nobody reads must stop by itself"
        assert isinstance(job.outcome, JobCancelled)
    finally:
        runner.abandon_after = 60.0


def test_one_job_at_a_time(runner):
    started = threading.Event()
    first = runner.start(JobRequest([DEMO_FACE], steps=500, refine_steps=2))
    for event in first.updates(poll=0.2):
        if isinstance(event, StepUpdate):
            started.set()
            break
    with pytest.raises(JobFailed, match="another job is running"):
        runner.run(JobRequest([DEMO_FACE], **FAST))
    first.cancel()
    assert first.join(timeout=30)


def outcome_folder(runner) -> Path:
    """The newest job folder's output folder."""
    newest = max(runner.work_root.glob("job-*"), key=lambda p: p.stat().st_mtime)
    return newest / "faces_rls+"
