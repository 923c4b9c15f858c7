"""Issue 16's corpus: every hostile case of every command as one parametrised test (see support/hostile_corpus.py)."""
import re
import signal
import subprocess
import sys
import time

import pytest
from support import corpus_checkpoints, corpus_commands, corpus_evaluate, corpus_invert, corpus_photos
from support.corpus_invert import ROOT, files, invert_args, rows
from support.hostile_corpus import checksums, finished_stems, run_case, run_command

CASES = [*corpus_invert.CASES, *corpus_checkpoints.CASES, *corpus_evaluate.CASES, *corpus_commands.CASES,
         *corpus_photos.CASES]
SLOW_CASES = {"invert-demo-defaults-from-another-folder", "invert-odd-names", "photos-conversion-notes-once-per-photo",
              "photos-memory-budget", "photos-restored-name-taken-by-the-user"}  # more than ~10 s each


@pytest.mark.parametrize("case", [pytest.param(case, marks=pytest.mark.slow) if case.id in SLOW_CASES else case
                                  for case in CASES], ids=str)
def test_hostile_input(case, tmp_path):
    run_case(case, tmp_path / "work")


# ---------------------------------------------------------------------- what needs a real process or a patch

FACES = tuple(f"face{i}.png" for i in range(4))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.slow
def test_signal_stops_at_a_safe_point_and_the_rerun_continues(signum, tmp_path):
    args = invert_args(tmp_path, "--batch-size", "1", "--steps", "40", names=FACES)
    inputs = checksums(tmp_path / "lr")
    process = subprocess.Popen([sys.executable, str(ROOT / "invert.py"), *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not finished_stems(tmp_path / "out") and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1, stderr
    match = re.fullmatch(rf"interrupted \({signal.Signals(signum).name}\): (\d) of 4 done; rerun to continue", lines[0])
    assert match, lines
    done = finished_stems(tmp_path / "out")
    assert int(match.group(1)) == len(done) and 1 <= len(done) < 4
    assert not [p for p in (tmp_path / "out").rglob("*") if ".tmp-" in p.name]  # nothing half-written
    assert {f"{stem}.png" for stem in done} <= files(tmp_path / "out")

    outcome = run_command("invert", args)
    assert outcome.code == 0, outcome.stderr
    assert f"resuming: {len(done)} image(s) already done" in outcome.stderr
    assert all(row["status"] == "ok" for row in rows(tmp_path / "out").values()) and len(rows(tmp_path / "out")) == 4
    assert checksums(tmp_path / "lr") == inputs


@pytest.mark.parametrize("command", ["invert.py", "rls-invert"])
def test_ctrl_c_during_start_up(tmp_path, command):
    """While torch is imported: by the script, and by the console script (which imports its target first)."""
    from pathlib import Path

    script = Path(sys.executable).parent / command
    if command.startswith("rls-") and not script.is_file():
        pytest.skip(f"{command} is not installed beside {sys.executable}")
    argv = [sys.executable, str(ROOT / command)] if command.endswith(".py") else [str(script)]
    process = subprocess.Popen([*argv, *invert_args(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    time.sleep(0.5)  # torch is still being imported
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted")


@pytest.mark.slow
def test_full_disk_leaves_nothing_half_written_and_the_rerun_completes(tmp_path, monkeypatch):
    import torch

    import rls_lightning.atomic

    real_save = torch.save

    def save_until_the_disk_is_full(obj, path, *a, **k):
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half a file")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4160 vs 4052")

    args = invert_args(tmp_path, names=FACES[:2])
    monkeypatch.setattr(torch, "save", save_until_the_disk_is_full)
    monkeypatch.setattr(rls_lightning.atomic.shutil, "disk_usage", lambda p: type("U", (), {"free": 0})())
    outcome = run_command("invert", args)
    assert outcome.code == 2 and "Traceback" not in outcome.stderr
    assert outcome.error_lines == [f"error: {tmp_path / 'out' / 'face0.pt'}: no space left on the device (free "
                                   "some, then rerun: finished outputs are kept)"]
    assert not [p for p in (tmp_path / "out").rglob("*") if ".tmp-" in p.name]
    assert finished_stems(tmp_path / "out") == []  # face0 is not counted as done
    monkeypatch.setattr(torch, "save", real_save)
    assert run_command("invert", args).code == 0
    assert [row["status"] for row in rows(tmp_path / "out").values()] == ["ok", "ok"]


def test_fewer_samples_on_rerun_removes_only_our_old_sample_files(tmp_path):
    args = invert_args(tmp_path, "--preset", "rls")
    assert run_command("invert", [*args, "--num-samples", "2"]).code == 0
    out = tmp_path / "out"
    assert {"face_s0.png", "face_s1.png", "face_std.png"} <= files(out)
    (out / "face_summer.png").write_bytes(b"the user's own file")
    (out / "face_s7.png").write_bytes(b"another file of the user's")
    assert run_command("invert", args).code == 0
    assert not files(out) & {"face_s0.png", "face_s1.png", "face_std.png"}
    assert (out / "face_summer.png").read_bytes() == b"the user's own file"
    assert (out / "face_s7.png").read_bytes() == b"another file of the user's"


def test_an_output_folder_that_is_an_input_under_another_spelling_is_refused(tmp_path, monkeypatch):
    """On a case-insensitive disk ``Faces`` is ``faces`` and ``resolve()`` keeps the typed case: simulated here by
    a link that ``resolve()`` is made not to follow. The folders are then told apart by device and inode."""
    from pathlib import Path

    from rls_lightning.checks import UsageError, check_output_dir

    (tmp_path / "faces").mkdir()
    (tmp_path / "Faces").symlink_to(tmp_path / "faces")
    monkeypatch.setattr(Path, "resolve", lambda self, strict=False: self)
    with pytest.raises(UsageError, match="Faces: must differ from --hr-dir"):
        check_output_dir("--out-dir", tmp_path / "Faces", not_equal={"--hr-dir": tmp_path / "faces"})
    check_output_dir("--out-dir", tmp_path / "other", not_equal={"--hr-dir": tmp_path / "faces"})


def test_csv_cells_a_spreadsheet_would_run_are_text_and_numbers_stay_numbers():
    """OWASP's rule for CSV injection, written out: a text cell starting with = + - @ gets a leading ', while a
    box of numbers (negative at a photo's edge) and plain numbers are left as they are."""
    import csv
    import io

    from rls_lightning.names import csv_text

    row = {"file": "=HYPERLINK(1).png", "box": "-3.5 20.1 40 61.2", "note": "-rf, @x", "score": -1.5, "ok": "a=b"}
    read = next(csv.DictReader(io.StringIO(csv_text([row], list(row)))))
    assert read == {"file": "'=HYPERLINK(1).png", "box": "-3.5 20.1 40 61.2", "note": "'-rf, @x", "score": "-1.5",
                    "ok": "a=b"}


def test_planted_progress_files_that_never_end_are_not_read(tmp_path):
    """A progress row that is a link to an endless device, a FIFO, or a file far larger than a row is not a row of
    ours: each reads as none at once (an alarm turns a read that never ends into a failure, not a hung suite)."""
    import os
    import signal

    from rls_lightning.inversion.outputs import read_record

    progress = tmp_path / ".progress"
    progress.mkdir()
    (progress / "zero.json").symlink_to("/dev/zero")
    os.mkfifo(progress / "fifo.json")
    (progress / "huge.json").write_text('{"file": "huge.png", "note": "' + "x" * (2 << 20) + '"}')
    (progress / "fine.json").write_text('{"file": "fine.png", "status": "ok"}')
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("a planted progress file was read without end"))
    signal.alarm(10)
    try:
        assert [read_record(tmp_path, stem) for stem in ("zero", "fifo", "huge")] == [None, None, None]
    finally:
        signal.alarm(0)
    assert read_record(tmp_path, "fine") == {"file": "fine.png", "status": "ok"}


def test_read_only_output_folder_is_found_before_the_work(tmp_path):
    """As a user without write permission (root may write anywhere, so the command runs as 'nobody')."""
    import os
    import shutil

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to switch to an unprivileged user")
    args = invert_args(tmp_path)
    (tmp_path / "out").mkdir()
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    for parent in tmp_path.parents:  # pytest's temporary folders are private to root
        if parent.stat().st_mode & 0o005 != 0o005:
            parent.chmod(parent.stat().st_mode | 0o005)
    models = sorted({p for p in args if p.endswith(".pt")})
    for model in models:
        os.chmod(os.path.dirname(model), 0o755)
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable]
    # A checkout (or a venv) under a private folder, e.g. a clone in a 0700 home, cannot be read by 'nobody': what
    # would fail then is the test's set-up, not the command, so it says so instead of failing.
    probe = subprocess.run([*as_nobody, "-c", "import sys, torch, rls_lightning.cli.invert; "
                            "open(sys.argv[1], 'rb').read()", str(ROOT / "invert.py")],
                           capture_output=True, text=True, timeout=300, env={**os.environ, "HOME": str(tmp_path)})
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        pytest.skip(f"'nobody' cannot read the checkout or the interpreter ({sys.executable}, {ROOT}): {reason}")
    result = subprocess.run([*as_nobody, str(ROOT / "invert.py"), *args], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "HOME": str(tmp_path)})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: --out-dir {tmp_path / 'out'}: {tmp_path / 'out'} is not writable"]
