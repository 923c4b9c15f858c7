"""The web server's file boundary: the private folders it works in, the files it accepts from a client, and the
copies of results it hands to gradio to serve.

Gradio keeps every upload, and every file it serves, in its upload folder: by default ``/tmp/gradio``, shared by
every gradio app on the machine and readable by every user. ``Workspace`` gives the server a folder of its own
instead (``tempfile.mkdtemp``, mode 0700, removed by ``close()``), holding ``uploads/`` (gradio's upload folder,
``GRADIO_TEMP_DIR``, while the server runs) and, unless ``--work-dir`` names another folder, ``jobs/``. A
``--work-dir`` given by the user is never removed; only ``session.Runner`` prunes job folders in it, and only its own.

A client sends a job's files as gradio ``FileData``, whose ``path`` the client chooses. ``accepted_uploads`` takes
a path only when its real location (symbolic links and ``..`` resolved) is a file inside the upload folder (or the
demo data, which the demo buttons hand out): any other path is refused by name alone, so a client cannot have a
server file copied into a job and served back. Gradio 6 refuses such paths itself before the page sees them; this
check does not depend on that.

What the page shows is copied into ``uploads/shown/<job>/`` (``publish``) before gradio gets it, so the server is
never told to serve the work folder itself, and a ``--work-dir`` holding the user's own files exposes none of them.
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

from .outputs import safe_name

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
SHOWN = "shown"  # the folder under uploads/ holding the copies the page shows; never accepted back as an upload
GRADIO_UPLOAD_FOLDER = "GRADIO_TEMP_DIR"  # gradio 6 reads its upload folder from this variable at each use


class UploadRefused(ValueError):
    """A client's file that is not an upload of this server; ``str()`` names the file only, never a path."""


def private_folder(path: Path) -> Path:
    """``path`` created if missing, readable by this user only; returns it."""
    path.mkdir(mode=PRIVATE_FOLDER, parents=True, exist_ok=True)
    path.chmod(PRIVATE_FOLDER)
    return path


def private_copy(source: Path, target: Path) -> Path:
    """``source``'s bytes in a new file ``target`` readable by this user only (the mode is set before any byte is
    written, whatever the umask)."""
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(descriptor, "wb") as out, open(source, "rb") as data:
        os.fchmod(out.fileno(), PRIVATE_FILE)
        shutil.copyfileobj(data, out)
    return target


def accepted_uploads(files: Iterable[str | os.PathLike], roots: Sequence[Path],
                     refused: Sequence[Path] = ()) -> list[Path]:
    """The real paths of ``files``, each a regular file inside one of ``roots`` and none of ``refused``;
    ``UploadRefused`` naming the first other one by its file name."""
    roots = [Path(os.path.realpath(root)) for root in roots]
    refused = [Path(os.path.realpath(folder)) for folder in refused]
    accepted = []
    for file in files:
        real = Path(os.path.realpath(os.fspath(file)))
        inside = any(real.is_relative_to(root) for root in roots) and not any(
            real.is_relative_to(folder) for folder in refused)
        if not inside or not real.is_file():
            raise UploadRefused(f"{safe_name(Path(os.fspath(file)).name)}: refused, not a file uploaded to this "
                                "page (upload it from your computer)")
        accepted.append(real)
    return accepted


class Workspace:
    """The server's private folder: ``uploads`` (gradio's upload folder) and ``jobs`` (``work_dir`` when given).

    Gradio reads the upload folder when components are made and at every upload, so a ``Workspace`` is opened
    before the page is built and closed after the server stops; ``close()`` restores ``GRADIO_TEMP_DIR``."""

    def __init__(self, work_dir: Path | None = None, temp_root: Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rls-app-", dir=temp_root))  # mode 0700
        self.uploads = private_folder(self.root / "uploads")
        self.shown = private_folder(self.uploads / SHOWN)
        self.jobs = Path(work_dir) if work_dir is not None else private_folder(self.root / "jobs")
        self._previous = os.environ.get(GRADIO_UPLOAD_FOLDER)
        os.environ[GRADIO_UPLOAD_FOLDER] = str(self.uploads)

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Remove the private folder (and ``jobs/`` with it when no ``work_dir`` was given)."""
        if os.environ.get(GRADIO_UPLOAD_FOLDER) == str(self.uploads):
            if self._previous is None:
                os.environ.pop(GRADIO_UPLOAD_FOLDER, None)
            else:
                os.environ[GRADIO_UPLOAD_FOLDER] = self._previous
        shutil.rmtree(self.root, ignore_errors=True)

    def accepted_uploads(self, files: Iterable[str | os.PathLike], also: Sequence[Path] = ()) -> list[Path]:
        """``accepted_uploads`` from the upload folder (not the page's own copies) or ``also``."""
        return accepted_uploads(files, [self.uploads, *also], refused=[self.shown])

    def publish(self, path: Path | None, job_dir: Path) -> Path | None:
        """A private copy of ``path`` (a file of ``job_dir``) under ``shown/<job>/`` for gradio to serve."""
        if path is None:
            return None
        target = self.shown / job_dir.name / Path(path).relative_to(job_dir)
        if not target.is_file():  # copied whole under a temporary name: two requests may show the same file
            private_folder(target.parent)
            partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
            try:
                os.replace(private_copy(Path(path), partial), target)
            finally:
                partial.unlink(missing_ok=True)
        return target

    def keep_shown(self, job_names: Iterable[str]) -> None:
        """Remove the copies of every job not in ``job_names`` (the job folders the runner still keeps)."""
        keep = set(job_names)
        for folder in self.shown.iterdir():
            if folder.name not in keep and folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)
