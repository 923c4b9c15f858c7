"""The web page as a hostile client or a careless user would meet it (issue 20): a server path sent where an upload
belongs is refused and nothing of that file comes back; messages name no server path; the server's folders are
private and removed when it stops; only job folders the page made are ever deleted; no failure after the
optimisation costs a computed result; a photo too large for memory is a message and the server stays up."""
import errno
import io
import os
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from support.app_server import call, file_data, free_port, upload, upload_answer
from rls_lightning.app.session import JOB_MARKER, JobFailed, JobRequest, Runner, load_models
from rls_lightning.app.workspace import GRADIO_UPLOAD_FOLDER, UploadRefused, Workspace
from rls_lightning.paths import DEMO_GENERATOR

ROOT = Path(__file__).resolve().parents[1]
DEMO_DATA = ROOT / "data" / "demo"
DEMO_FACES = [DEMO_DATA / "lr8x" / "demo00.png", DEMO_DATA / "lr8x" / "demo01.png"]
TINY = dict(steps=2, refine_steps=1)  # the fewest steps that run both stages
SECRET = b"rls-issue-20-secret: the server's own file"
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(tmp|etc|home|root|var|usr|work|private)\b")
LR_MODE, PHOTO_MODE = "aligned LR face crops (like --lr-dir)", "photos (like --photos)"

pytestmark = pytest.mark.skipif(not DEMO_GENERATOR.is_file() or not all(p.is_file() for p in DEMO_FACES),
                                reason="the embedded demo model and faces are not in this checkout")


def secret_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    secret = folder / "secret.txt"
    secret.write_bytes(SECRET)
    secret.chmod(0o600)
    return secret


def files_holding(folder: Path, content: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and content in p.read_bytes()]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG file whose header claims ``width`` x ``height`` RGB pixels, holding one row of them."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(bytes(1 + 3 * width))) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def models():
    return load_models()


# ------------------------------------------------------------------------------------------ the file boundary

def test_only_files_uploaded_here_are_accepted(tmp_path):
    secret = secret_file(tmp_path / "outside")
    previous = os.environ.get(GRADIO_UPLOAD_FOLDER)
    with Workspace(temp_root=tmp_path) as workspace:
        assert os.environ[GRADIO_UPLOAD_FOLDER] == str(workspace.uploads)
        assert {mode(workspace.root), mode(workspace.uploads), mode(workspace.jobs)} == {0o700}
        folder = workspace.uploads / "0123abcd"
        folder.mkdir()
        face = folder / "face.png"
        face.write_bytes(DEMO_FACES[0].read_bytes())
        (folder / "link.png").symlink_to(secret)
        (workspace.shown / "job-1").mkdir()
        (workspace.shown / "job-1" / "result.png").write_bytes(b"a result the page shows")

        assert workspace.accepted_uploads([str(face)]) == [face.resolve()]
        assert workspace.accepted_uploads([DEMO_FACES[0]], also=[DEMO_DATA]) == [DEMO_FACES[0].resolve()]
        hostile = [secret, "/etc/passwd", folder / "link.png", f"{folder}/../../../outside/secret.txt", folder,
                   workspace.shown / "job-1" / "result.png", workspace.uploads / "missing.png"]
        for path in hostile:
            with pytest.raises(UploadRefused) as refused:
                workspace.accepted_uploads([face, path], also=[DEMO_DATA])
            assert "/" not in str(refused.value) and "refused" in str(refused.value), path
        with pytest.raises(UploadRefused, match=r"^passwd: refused"):
            workspace.accepted_uploads(["/etc/passwd"])
    assert not workspace.root.exists() and os.environ.get(GRADIO_UPLOAD_FOLDER) == previous


def _through_the_gate(workspace, body: bytes, content_type: bytes = b"application/json",
                      path: str = "/gradio_api/queue/join") -> tuple[int, bytes, list[bytes]]:
    """One POST through ``UploadGate`` in front of an app that records the body it was handed:
    ``(status, answer, bodies the app saw)``."""
    import asyncio

    from rls_lightning.app.workspace import UploadGate

    seen, sent = [], []

    async def app(scope, receive, send):
        message = await receive()
        seen.append(message["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})

    chunks = [body[i:i + 65536] for i in range(0, len(body), 65536)] or [b""]
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path,
             "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]}
    asyncio.run(UploadGate(app, workspace)(scope, receive, send))
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], answer, seen


def test_a_file_named_by_url_is_never_fetched_and_page_requests_pass_unchanged(tmp_path, monkeypatch):
    """Gradio downloads a FileData whose path is a URL into its upload folder, past the budget: the gate refuses
    such a request before gradio sees it, hands every other request on byte for byte, and holds a request
    without files to MAX_FORM_BYTES."""
    import json

    from rls_lightning.app import workspace as workspace_module

    local = {"path": "/tmp/gradio/abc/face.png", "url": "http://127.0.0.1:7860/gradio_api/file=/tmp/x.png",
             "meta": {"_type": "gradio.FileData"}}
    with Workspace(temp_root=tmp_path) as workspace:
        for remote in ("https://example.com/huge.png", "HTTP://example.com/x", "//example.com/x"):
            body = json.dumps({"data": [None, [local, dict(local, path=remote)]], "fn_index": 3}).encode()
            status, answer, seen = _through_the_gate(workspace, body)
            assert (status, seen) == (403, []) and answer.startswith(b"refused: files come from this page")
        body = json.dumps({"data": [None, [local]], "fn_index": 3, "pad": "x" * 200_000}).encode()
        assert _through_the_gate(workspace, body) == (200, b"[]", [body])
        assert _through_the_gate(workspace, b"not json") == (200, b"[]", [b"not json"])
        deep = b"[" * 100_000 + b"]" * 100_000  # deeper than Python's JSON parser goes
        assert _through_the_gate(workspace, deep) == (400, b"refused: a request nested too deeply", [])
        monkeypatch.setattr(workspace_module, "MAX_FORM_BYTES", 100_000)
        status, answer, seen = _through_the_gate(workspace, body)
        assert (status, seen) == (413, []) and b"at most" in answer


def test_the_budget_counts_whole_blocks_and_files(tmp_path, monkeypatch):
    """Empty uploads are not free: each kept file counts whole 4 KiB blocks, at least one, and past
    MAX_KEPT_FILES no upload is let in, whatever its size."""
    from rls_lightning.app import workspace as workspace_module
    from rls_lightning.app.workspace import UploadBudgetFull

    monkeypatch.setattr(workspace_module, "MAX_KEPT_FILES", 5)
    with Workspace(temp_root=tmp_path, upload_budget=10 ** 9) as workspace:
        folder = workspace.uploads / "0123abcd"
        folder.mkdir()
        sizes = [0, 0, 1, 4096, 4097]
        for i, size in enumerate(sizes):
            (folder / f"f{i}.png").write_bytes(b"x" * size)
        workspace.received([folder / f"f{i}.png" for i in range(4)])
        assert workspace.uploaded_bytes() == 4 * 4096
        with workspace.reserve(10):
            pass
        workspace.received([folder / "f4.png"])
        assert workspace.uploaded_bytes() == 4 * 4096 + 2 * 4096
        with pytest.raises(UploadBudgetFull, match=r"^refused: this server keeps at most 5 uploaded files"):
            workspace.reserve(10)
        (folder / "f0.png").unlink()  # removed files no longer count
        with workspace.reserve(10):
            pass


def test_shown_copies_sit_under_names_no_client_can_guess(tmp_path):
    """Gradio serves any file of its upload folder to whoever names its path: a job's copies go under a folder of
    128 random bits (not the job's name of a time stamp and a counter), one per job, removed with the job."""
    with Workspace(temp_root=tmp_path) as workspace:
        jobs = {}
        for name in ("job-20261207-170000-1-abcdef", "job-20261207-170001-2-012345"):
            jobs[name] = workspace.jobs / name
            (jobs[name] / "out").mkdir(parents=True)
            for stem in ("a", "b"):
                (jobs[name] / "out" / f"{stem}.png").write_bytes(name.encode())
        first, second = (workspace.publish(jobs[n] / "out" / "a.png", jobs[n]) for n in jobs)
        again = workspace.publish(jobs["job-20261207-170000-1-abcdef"] / "out" / "b.png",
                                  jobs["job-20261207-170000-1-abcdef"])
        folder = first.relative_to(workspace.shown).parts[0]
        assert again.relative_to(workspace.shown).parts[0] == folder != second.relative_to(workspace.shown).parts[0]
        assert folder not in jobs and len(folder) >= 22 and first.read_bytes() == b"job-20261207-170000-1-abcdef"
        workspace.keep_shown(["job-20261207-170001-2-012345"])
        assert not first.exists() and not again.exists() and second.is_file()


def test_a_running_jobs_estimates_take_two_files_at_most(tmp_path):
    """Each preview handed to gradio as an array would stay in its upload folder for the server's life: the page
    writes them under shown/<random>/, keeps the last two, and removes them all when the run ends."""
    with Workspace(temp_root=tmp_path) as workspace:
        previews = workspace.previews()
        written = [previews.write(bytes([i]) * 100) for i in range(5)]
        assert sorted(p.name for p in previews.folder.iterdir()) == ["estimate-4.png", "estimate-5.png"]
        assert written[-1].read_bytes() == bytes([4]) * 100 and mode(written[-1]) == 0o600
        assert previews.folder.parent == workspace.shown and len(previews.folder.name) >= 22
        workspace.keep_shown([])  # a job that ended while this one runs: its copies go, these estimates stay
        assert written[-1].is_file()
        previews.close()
        assert not previews.folder.exists() and workspace.shown.is_dir()


def test_a_given_work_dir_is_kept_when_the_workspace_closes(tmp_path):
    user = tmp_path / "mine"
    (user / "job-applications").mkdir(parents=True)
    (user / "job-applications" / "letter.txt").write_text("Dear Sir or Madam")
    with Workspace(work_dir=user, temp_root=tmp_path) as workspace:
        assert workspace.jobs == user
    assert not workspace.root.exists()
    assert (user / "job-applications" / "letter.txt").read_text() == "Dear Sir or Madam"


def test_only_its_own_job_folders_are_deleted(models, tmp_path):
    work = tmp_path / "work"
    theirs = {"job-applications/letter.txt": "Dear Sir or Madam", "job-a/cv.txt": "experience",
              "job-20260101-000000-001-abcdef/notes.txt": "looks like ours",
              f"job-20260101-000000-001-abcdef/{JOB_MARKER}": "another server's token"}
    for name, text in theirs.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "photo.txt").write_text("kept")
    (work / "job-link").symlink_to(tmp_path / "elsewhere")
    runner = Runner(models, work, accelerator="cpu", keep_jobs=2)
    upload = tmp_path / "notes.png"  # a job that stops at once makes and prunes folders as any other
    upload.write_text("not an image")

    jobs = []
    for _ in range(4):
        with pytest.raises(JobFailed, match="no usable image: notes.png"):
            runner.run(JobRequest([upload], **TINY))
        jobs.append(runner.job_folders[-1])
        if len(jobs) == 2:  # the user puts something of theirs where the page's marker was
            (jobs[1] / JOB_MARKER).write_text("the user's own file now")
    for name, text in theirs.items():
        assert (work / name).read_text() == text, name
    assert (tmp_path / "elsewhere" / "photo.txt").read_text() == "kept"
    assert not jobs[0].exists(), "the page's own oldest job folder is pruned"
    assert jobs[1].exists(), "a folder whose marker is no longer the page's is never deleted"
    assert jobs[2].exists() and jobs[3].exists() and runner.job_folders == [jobs[2], jobs[3]]
    newest = jobs[3]
    assert mode(newest) == 0o700 and mode(newest / JOB_MARKER) == 0o600
    assert mode(newest / "faces" / "notes.png") == 0o600, "the copy of an upload is private"


@pytest.mark.slow
def test_a_folder_put_where_a_job_folder_was_is_never_deleted(models, tmp_path, caplog):
    """Issue 9: what identifies the page's job folder is the folder itself, as recorded when the page made it,
    not a marker file anyone can copy."""
    work = tmp_path / "work"
    runner = Runner(models, work, accelerator="cpu", keep_jobs=3)
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")

    def failed_job() -> Path:
        with pytest.raises(JobFailed, match="no usable image"):
            runner.run(JobRequest([notes], **TINY))
        return runner.job_folders[-1]

    done = runner.run(JobRequest([DEMO_FACES[0]], **TINY))  # its zip and pictures are written after the folder
    finished = done.out_dir.parent
    replaced, copied, linked = failed_job(), failed_job(), failed_job()
    assert not finished.exists(), "the page's own folder, written to by its finished job, is pruned"

    # the issue: a folder at a pruned job's exact path (on ext4 it even gets the old inode) with a copy of its marker
    marker = (replaced / JOB_MARKER).read_bytes()
    shutil.rmtree(replaced)
    replaced.mkdir()
    (replaced / JOB_MARKER).write_bytes(marker)
    (replaced / "photo.txt").write_text("the user's")
    # a copy of a job folder, marker and all, put in its place while the page's own folder is moved away
    shutil.copytree(copied, tmp_path / "copy")
    copied.rename(tmp_path / "moved")
    (tmp_path / "copy").rename(copied)
    (copied / "notes.txt").write_text("the user's too")
    # the page's own folder, moved away, with a link to it in its place
    linked.rename(tmp_path / "linked")
    linked.symlink_to(tmp_path / "linked")

    with caplog.at_level("WARNING"):
        newest = [failed_job(), failed_job(), failed_job()]
    assert (replaced / "photo.txt").read_text() == "the user's" and (replaced / JOB_MARKER).read_bytes() == marker
    assert (copied / "notes.txt").read_text() == "the user's too" and (copied / JOB_MARKER).read_bytes() == marker
    assert (tmp_path / "moved" / JOB_MARKER).is_file(), "a job folder moved out of the work folder is not followed"
    assert linked.is_symlink() and (tmp_path / "linked" / JOB_MARKER).is_file()
    for folder in (replaced, copied, linked):
        assert f"{folder.name}: not deleted" in caplog.text, folder
    assert runner.job_folders == newest and all(folder.is_dir() for folder in newest)


# ------------------------------------------------------------------------------------------ failures

def test_no_failure_after_the_optimisation_costs_a_result(models, tmp_path, monkeypatch):
    import rls_lightning.app.session as session
    import rls_lightning.overview as overview

    hr = tmp_path / "hr"
    hr.mkdir()
    (hr / "demo00.png").write_text("a text file named like an image")
    png_header(hr / "demo01.png", 30000, 30000)  # a decompression bomb

    def no_overview(*args, **kwargs):
        raise RuntimeError("the overview broke")

    def no_zip(out_dir, zip_path):
        raise OSError(errno.ENOSPC, "No space left on device", str(zip_path))

    real_save = session._save_rgb

    def no_pictures_of_demo01(array, path):
        if "demo01" in path.name:
            raise MemoryError()
        return real_save(array, path)

    monkeypatch.setattr(overview, "write_overview", no_overview)
    monkeypatch.setattr(session, "zip_outputs", no_zip)
    monkeypatch.setattr(session, "_save_rgb", no_pictures_of_demo01)
    runner = Runner(models, tmp_path / "work", accelerator="cpu")
    result = runner.run(JobRequest(DEMO_FACES, hr_files=sorted(hr.iterdir()), **TINY))

    assert [image.stem for image in result.images] == ["demo00", "demo01"]
    for image in result.images:
        assert image.status == "ok" and image.final.is_file() and image.rls.is_file()
        assert image.hr is None, "an unusable HR file is not shown"
        assert "not shown" in image.note
    assert result.images[0].lr.is_file() and result.images[1].lr is None
    assert result.zip_path is None and not list(result.out_dir.parent.glob("*.zip*"))
    said = "\n".join(result.messages)
    for expected in ("hr/demo00.png", "hr/demo01.png", "overview.png not written", "faces_rls+.zip not written (",
                     "no space left", "the comparison images of demo01 not written"):
        assert expected in said, expected
    assert not ABSOLUTE_PATH.search(said) and str(tmp_path) not in said, said
    assert (result.out_dir / "results.csv").is_file() and not (result.out_dir / "overview.png").exists()


@pytest.mark.slow
def test_out_of_memory_is_a_message_and_the_next_job_runs(models, tmp_path, monkeypatch):
    from rls_lightning.api import folders

    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 5.21 GiB for an array with shape (12000, 16000, 3)")

    runner = Runner(models, tmp_path / "work", accelerator="cpu")
    with monkeypatch.context() as patch:
        patch.setattr(folders, "read_inputs", exhausted)
        with pytest.raises(JobFailed, match=r"^out of memory: upload a smaller photo"):
            runner.run(JobRequest([DEMO_FACES[0]], mode="photos", **TINY))
    assert runner.run(JobRequest([DEMO_FACES[0]], **TINY)).images[0].status == "ok"


# ------------------------------------------------------------------------------------------ the real server

class Server:
    """``python -m rls_lightning.app`` in a process of its own, its stderr collected."""

    def __init__(self, tmp: Path, *options: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, TMPDIR=str(tmp), RLS_OFFLINE="1", PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen([sys.executable, "-m", "rls_lightning.app", "--port", str(self.port),
                                         "--accelerator", "cpu", *options], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()

    def wait_until_serving(self, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            serving = [line for line in self.lines if line.startswith("serving on ")]
            if serving:
                return serving[0]
            assert self.process.poll() is None, "".join(self.lines)
            time.sleep(0.2)
        raise AssertionError("the server did not start:\n" + "".join(self.lines))

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=60)
        self.reader.join(timeout=10)
        return code


def absolute_url(base: str, url: str) -> str:
    return url if url.startswith("http") else base + url


def run_data(mode: str, files: list, hr_files: list | None = None, **controls) -> list:
    from rls_lightning.app.controls import CONTROLS

    return [mode, files, hr_files, "rls+", *(controls.get(control.name) for control in CONTROLS)]


@pytest.mark.slow
def test_the_server_serves_only_what_was_uploaded_to_it(tmp_path):
    import httpx

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    secret = secret_file(tmp_path / "outside")
    server = Server(tmp)
    try:
        serving = server.wait_until_serving()
        assert serving.startswith(f"serving on http://127.0.0.1:{server.port}") and "--share" in serving
        (root,) = tmp.glob("rls-app-*")
        assert {mode(root), mode(root / "uploads"), mode(root / "jobs")} == {0o700}

        # the exploit: a server path where an upload belongs, as images and as HR images
        face = upload(server.base, DEMO_FACES[0])
        for exploit in (run_data(LR_MODE, [file_data(secret)], **TINY),
                        run_data(LR_MODE, [file_data(face)], [file_data(secret)], **TINY),
                        run_data(PHOTO_MODE, [file_data(secret)], **TINY)):
            text, result = call(server.base, "start", exploit)
            assert SECRET.decode() not in text
            for url in set(re.findall(r'"url":\s*"([^"]+)"', text)):
                fetched = httpx.get(absolute_url(server.base, url), timeout=30)
                assert SECRET not in fetched.content, url
            statuses = [value for value in (result or []) if isinstance(value, str)]
            assert not any(ABSOLUTE_PATH.search(status) for status in statuses), statuses
        direct = httpx.get(f"{server.base}/gradio_api/file={secret}", timeout=30)
        assert direct.status_code == 403 and SECRET not in direct.content
        remote = {"path": "https://example.com/huge.png", "meta": {"_type": "gradio.FileData"}}
        joined = httpx.post(f"{server.base}/gradio_api/queue/join", timeout=30,
                            json={"data": run_data(LR_MODE, [remote], **TINY), "fn_index": 0, "session_hash": "x"})
        assert joined.status_code == 403 and joined.text.startswith("refused: files come from this page's uploads")

        # a whole-number control given a fraction is refused, as invert.py --steps 1.5 is, not rounded
        text, result = call(server.base, "start", run_data(LR_MODE, [file_data(face)], steps=1.5, refine_steps=1))
        assert result[1].startswith("**refused:** ") and "1.5: must be a whole number" in result[1], result[1]

        # photos whose decoding would need gigabytes (their headers say so): a message, and the server goes on
        for width, height in ((12000, 12000), (40000, 30000)):
            big = upload(server.base, png_header(tmp_path / "big.png", width, height))
            text, result = call(server.base, "start", run_data(PHOTO_MODE, [file_data(big)], **TINY))
            status = result[1]
            assert status.startswith("**stopped:** no usable photo: big.png: ") and "\n" not in status, status
            assert f"{width}x{height}" in status or f"{width * height} pixels" in status, status
            assert not ABSOLUTE_PATH.search(status) and "--" not in status, status

        # a real job after all that: done, its zip downloadable, its files private
        text, result = call(server.base, "start", run_data(LR_MODE, [file_data(face)], **TINY))
        assert result[1].startswith("**done**"), result[1]
        download = result[5]
        archive = httpx.get(absolute_url(server.base, download["url"]), timeout=30)
        names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
        assert "faces_rls+/demo00.png" in names
        (job,) = (folder for folder in (root / "jobs").glob("job-*") if (folder / "faces_rls+").is_dir())
        assert mode(job) == 0o700 and mode(job / "faces_rls+" / "demo00.png") == 0o600
        final = httpx.get(absolute_url(server.base, result[10]["value"]["url"]), timeout=30)
        assert final.content == (job / "faces_rls+" / "demo00.png").read_bytes()
        assert "/uploads/shown/" in result[10]["value"]["url"], "the page shows its own copies"
        served = httpx.get(f"{server.base}/gradio_api/file={job / 'faces_rls+' / 'demo00.png'}", timeout=30)
        assert served.status_code == 403, "the work folder itself is not served"
        assert mode(Path(face)) == 0o600 and Path(face).is_relative_to(root / "uploads"), "gradio's copy"
        assert files_holding(tmp, SECRET) == [], "the secret was copied into the server's folders"
    finally:
        code = server.stop(signal.SIGTERM)
    said = "".join(server.lines)
    assert code == 128 + signal.SIGTERM, said
    assert "share=True" not in said and "launch()" not in said, said
    assert not list(tmp.glob("rls-app-*")), "the server's temporary folder outlives it"
    assert not list(tmp.glob("gradio*")), "gradio wrote outside the server's private folder"


def unique_bytes(folder: Path) -> int:
    """The bytes the files under ``folder`` hold on disk (each file once, however many names it has), but the
    copies the page shows."""
    sizes = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and "shown" not in path.relative_to(folder).parts:
            info = path.stat()
            sizes[info.st_dev, info.st_ino] = info.st_size
    return sum(sizes.values())


@pytest.mark.slow
def test_uploads_are_held_to_a_budget_that_frees_with_their_jobs(tmp_path):
    """Issue 8: the bytes uploaded to a server stay within --upload-budget; an upload past it is refused with one
    line naming the budget and how to raise it; a job's uploads go with its folder, and the budget with them."""
    from rls_lightning.cli.app import build_parser

    assert re.search(r"--upload-budget MB\s.*default\s+1024", " ".join(build_parser().format_help().split()))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    first, second = (tmp_path / "first.png", tmp_path / "second.png")
    first.write_bytes(os.urandom(600_000))
    second.write_bytes(os.urandom(600_000))  # each fits in 1 MB, both do not
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    server = Server(tmp, "--upload-budget", "1")
    try:
        server.wait_until_serving()
        (root,) = tmp.glob("rls-app-*")
        uploaded = upload(server.base, first)
        assert 600_000 <= unique_bytes(root) < 610_000

        refused = upload_answer(server.base, second)
        assert refused.status_code == 413, refused.text
        line = refused.text
        assert "\n" not in line.strip() and "1 MB" in line and "--upload-budget" in line, line
        assert not ABSOLUTE_PATH.search(line), line
        assert files_holding(tmp, second.read_bytes()[:4096]) == [], "a refused upload left bytes behind"
        assert unique_bytes(root) < 610_000

        # a job holds its uploads: still refused while the job's folder is kept (the last 8)
        text, result = call(server.base, "start", run_data(LR_MODE, [file_data(uploaded)], **TINY))
        assert result[1].startswith("**stopped:** no usable image: first.png"), result[1]
        assert upload_answer(server.base, second).status_code == 413
        small = upload(server.base, notes)
        for _ in range(7):
            text, result = call(server.base, "start", run_data(LR_MODE, [file_data(small)], **TINY))
            assert result[1].startswith("**stopped:** no usable image: notes.png"), result[1]
        assert upload_answer(server.base, second).status_code == 413
        assert files_holding(root, first.read_bytes()[:4096]), "the first job's files are kept"

        # the 9th job removes the first job's folder, and with it its upload: the budget is free again
        text, result = call(server.base, "start", run_data(LR_MODE, [file_data(small)], **TINY))
        assert result[1].startswith("**stopped:** no usable image: notes.png"), result[1]
        assert files_holding(root, first.read_bytes()[:4096]) == [], "the first job's upload outlived its job"
        assert unique_bytes(root) < 20_000
        again = upload_answer(server.base, second)
        assert again.status_code == 200, again.text
        assert 600_000 <= unique_bytes(root) < 620_000
        text, result = call(server.base, "start", run_data(LR_MODE, [file_data(uploaded)], **TINY))
        assert "refused" in result[1] and "first.png" in result[1], "a removed upload is not taken back"
    finally:
        server.stop(signal.SIGTERM)


def test_a_busy_port_is_one_line_before_any_work(capsys):
    from rls_lightning.cli.app import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["--port", str(port), "--accelerator", "cpu"]) == 2
    assert capsys.readouterr().err == (f"error: --host 127.0.0.1 --port {port}: cannot serve there (Address already "
                                       "in use); choose another --port\n")


@pytest.mark.parametrize("accelerator, precision, why", [
    ("mps", "64-true", "--precision 64-true: MPS has no float64; use 32-true"),
    ("cpu", "16-mixed", "--precision 16-mixed: float16 autocast needs a GPU; use bf16-mixed or 32-true on the CPU"),
])
def test_a_precision_the_device_cannot_run_is_one_line_before_any_work(capsys, tmp_path, accelerator, precision, why):
    from rls_lightning.cli.app import main

    work = tmp_path / "work"
    assert main(["--accelerator", accelerator, "--precision", precision, "--work-dir", str(work)]) == 2
    assert capsys.readouterr().err == f"error: {why}\n"
    assert not work.exists()
