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

What the page shows is copied into ``uploads/shown/<random>/`` (``publish``) before gradio gets it, so the server is
never told to serve the work folder itself, and a ``--work-dir`` holding the user's own files exposes none of them.

The bytes clients upload are held to ``upload_budget`` (``--upload-budget``): ``UploadGate`` stands before gradio's
routes and lets a request carrying files in only while the size it declares fits beside what is kept already, the
uploads in the upload folder and the copies jobs took of them (a second name for the same bytes where the file
system allows, so a photo run eight times is counted once). A job's uploads are removed with its folder
(``forget_job``) unless a job still kept uses them, which is how the budget frees up. ``remove_own_folder`` deletes
a folder only while it is still the one its maker recorded (``Identity``), never through a link.
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, MutableMapping, Sequence

from .outputs import safe_name

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
SHOWN = "shown"  # the folder under uploads/ holding the copies the page shows; never accepted back as an upload
GRADIO_UPLOAD_FOLDER = "GRADIO_TEMP_DIR"  # gradio 6 reads its upload folder from this variable at each use
UPLOAD_ROUTE = "/gradio_api/upload"  # gradio 6's route storing a client's files in the upload folder
MB = 1024 * 1024  # as gradio counts its per-file limit ("50mb")
UPLOAD_BUDGET_MB = 1024  # --upload-budget's default: 8 kept jobs of a few large photos each
DISK_BLOCK = 4096  # what a file takes on disk at the least (ext4, xfs): an empty upload is not free
MAX_KEPT_FILES = 4096  # clients' files kept at once: 8 kept jobs of hundreds of faces, never inodes by the million
MAX_FORM_BYTES = MB  # a request without files (the page's own JSON) is never larger than this


class UploadRefused(ValueError):
    """A client's file that is not an upload of this server, or one past the budget; ``str()`` is one line naming
    no server path."""


class UploadBudgetFull(UploadRefused):
    """An upload that would take the bytes this server keeps of its clients' files past ``upload_budget``."""


@dataclasses.dataclass(frozen=True)
class Identity:
    """Which file system entry a path named when it was recorded: device and inode, and the time of its last
    status change. A folder removed and made again at the same path can get the same inode number back at once
    (ext4 does), never the same change time as well."""

    device: int
    inode: int
    changed_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> "Identity":
        """The identity ``info`` (an ``lstat`` or ``fstat``) describes."""
        return cls(info.st_dev, info.st_ino, info.st_ctime_ns)

    @classmethod
    def at(cls, path: Path) -> "Identity | None":
        """The identity of the entry at ``path`` itself (a link's own, never its target's); None when there is
        none."""
        try:
            return cls.of(os.lstat(path))
        except OSError:
            return None

    def same_entry(self, other: "Identity | None") -> bool:
        """Whether ``other`` is the same entry, changed since or not."""
        return other is not None and (self.device, self.inode) == (other.device, other.inode)


_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def remove_own_folder(path: Path, recorded: Identity) -> bool:
    """Delete the folder at ``path`` if it is still the one ``recorded`` describes; False, and nothing deleted, if
    anything else is there (another folder, a link, a file). The folder is opened once without following a link
    and emptied through that handle, so what is deleted is the recorded folder's contents even if the path is
    swapped meanwhile, and no link inside it is followed."""
    try:
        folder = os.open(path, _FOLDER_FLAGS)
    except OSError:  # gone, a link (O_NOFOLLOW) or not a folder
        return False
    try:
        here = Identity.of(os.fstat(folder))
        if here != recorded:
            return False
        _empty_folder(folder)
        # emptying changed the folder's change time; the open handle keeps its inode number from being reused
        if here.same_entry(Identity.at(path)):
            os.rmdir(path)
    finally:
        os.close(folder)
    return True


def _empty_folder(folder: int) -> None:
    """Delete everything in the open folder ``folder``: entries by name relative to it, links as links."""
    for entry in list(os.scandir(folder)):
        if entry.is_dir(follow_symlinks=False):
            inner = os.open(entry.name, _FOLDER_FLAGS, dir_fd=folder)
            try:
                _empty_folder(inner)
            finally:
                os.close(inner)
            os.rmdir(entry.name, dir_fd=folder)
        else:
            os.unlink(entry.name, dir_fd=folder)


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


@dataclasses.dataclass
class _JobFiles:
    """What one job took from its clients: the uploads it came from and its own copies (by identity)."""

    sources: set[Path] = dataclasses.field(default_factory=set)
    copies: dict[Path, tuple[int, int]] = dataclasses.field(default_factory=dict)


class _Reservation:
    """Room held in the budget for a request whose files are still arriving; given back on exit, by when they are
    on disk and counted."""

    def __init__(self, workspace: "Workspace", nbytes: int) -> None:
        self.workspace, self.nbytes = workspace, nbytes

    def __enter__(self) -> "_Reservation":
        return self

    def __exit__(self, *exc) -> None:
        with self.workspace._lock:
            self.workspace._reserved -= self.nbytes


class Workspace:
    """The server's private folder: ``uploads`` (gradio's upload folder) and ``jobs`` (``work_dir`` when given).

    Gradio reads the upload folder when components are made and at every upload, so a ``Workspace`` is opened
    before the page is built and closed after the server stops; ``close()`` restores ``GRADIO_TEMP_DIR``.
    ``upload_budget`` (bytes) bounds what it keeps of its clients' files (module docstring)."""

    def __init__(self, work_dir: Path | None = None, temp_root: Path | None = None,
                 upload_budget: int = UPLOAD_BUDGET_MB * MB) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="rls-app-", dir=temp_root))  # mode 0700
        self.uploads = private_folder(self.root / "uploads")
        self.shown = private_folder(self.uploads / SHOWN)
        self._shown_names: dict[str, str] = {}  # job folder name -> its folder under shown/
        self._previews: set[PreviewFiles] = set()  # the running jobs' estimates, under shown/ too
        self.jobs = Path(work_dir) if work_dir is not None else private_folder(self.root / "jobs")
        self.upload_budget = upload_budget
        # the server's event loop admits uploads while a job thread takes and forgets them
        self._lock = threading.Lock()
        self._received: set[Path] = set()  # real paths of the clients' files in the upload folder
        self._jobs: dict[Path, _JobFiles] = {}
        self._reserved = 0
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
        """A private copy of ``path`` (a file of ``job_dir``) under ``shown/<random>/`` for gradio to serve: a
        folder per job named by 128 random bits, since gradio serves any file of its upload folder to whoever
        asks for its path (the job's own name holds a time stamp and a counter)."""
        if path is None:
            return None
        with self._lock:  # a name no client can guess: gradio serves the upload folder to any client
            shown_name = self._shown_names.setdefault(job_dir.name, secrets.token_urlsafe(16))
            target = self.shown / shown_name / Path(path).relative_to(job_dir)
            private_folder(target.parent)  # made while keep_shown cannot run
        if not target.is_file():  # copied whole under a temporary name: two requests may show the same file
            partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
            try:
                os.replace(private_copy(Path(path), partial), target)
            finally:
                partial.unlink(missing_ok=True)
        return target

    # ------------------------------------------------------------------ the upload budget

    def _from_a_client(self, real: Path) -> bool:
        uploads = Path(os.path.realpath(self.uploads))
        return real.is_relative_to(uploads) and not real.is_relative_to(Path(os.path.realpath(self.shown)))

    def received(self, paths: Iterable[str | os.PathLike]) -> None:
        """Count ``paths`` (gradio's upload route's answer) as clients' files from now on."""
        real = (Path(os.path.realpath(os.fspath(path))) for path in paths)
        with self._lock:
            self._received.update(path for path in real if self._from_a_client(path))

    def _kept_bytes(self) -> int:
        """The bytes of clients' files on disk, each file once however many names it has, rounded up to whole
        blocks of ``DISK_BLOCK`` and at least one (lock held)."""
        sizes: dict[tuple[int, int], int] = {}
        for path in self._received:
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                sizes[info.st_dev, info.st_ino] = _on_disk(info.st_size)
        for job in self._jobs.values():
            for path, recorded in job.copies.items():
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                # a file the user put in place of a job's copy is not an upload
                if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) == recorded:
                    sizes[recorded] = _on_disk(info.st_size)
        return sum(sizes.values())

    def uploaded_bytes(self) -> int:
        """The bytes this server keeps of its clients' files: the uploads and the jobs' copies of them."""
        with self._lock:
            return self._kept_bytes()

    def budget_message(self, used: int, incoming: int) -> str:
        """The one line refusing an upload of ``incoming`` bytes while ``used`` are kept."""
        return (f"refused: this server keeps at most {self.upload_budget / MB:g} MB of uploads and "
                f"{used / MB:.1f} MB are in use (this upload: {incoming / MB:.1f} MB); older jobs' uploads are "
                "removed as new jobs run, or restart the server with a larger --upload-budget (in MB)")

    def reserve(self, nbytes: int) -> _Reservation:
        """Room for ``nbytes`` more of clients' files, held until the returned reservation exits (use it in a
        ``with``); ``UploadBudgetFull`` with the line for the client when they would not fit."""
        with self._lock:
            self._received = {path for path in self._received if os.path.lexists(path)}  # removed ones are free
            if len(self._received) >= MAX_KEPT_FILES:
                raise UploadBudgetFull(f"refused: this server keeps at most {MAX_KEPT_FILES} uploaded files and "
                                       "holds that many; older jobs' uploads are removed as new jobs run")
            used = self._kept_bytes() + self._reserved
            if used + nbytes > self.upload_budget:
                raise UploadBudgetFull(self.budget_message(used, nbytes))
            self._reserved += nbytes
        return _Reservation(self, nbytes)

    def take(self, source: Path, target: Path, job_dir: Path) -> Path:
        """``source`` (a file ``accepted_uploads`` took) as the new file ``target`` of the job ``job_dir``, readable by
        this user only: the same bytes under a second name when ``source`` is in the upload folder and the file
        system allows, else a copy. Counted in the budget until ``forget_job(job_dir)``."""
        real = Path(os.path.realpath(source))
        from_a_client = self._from_a_client(real)
        linked = False
        if from_a_client:
            try:
                os.link(real, target)
                linked = True
            except OSError:  # another file system (a --work-dir elsewhere), or links not allowed there
                pass
        if linked:
            os.chmod(target, PRIVATE_FILE)  # the upload's own mode, which gradio already makes private
        else:
            private_copy(real, target)
        info = os.lstat(target)
        with self._lock:
            job = self._jobs.setdefault(Path(job_dir), _JobFiles())
            job.copies[Path(target)] = (info.st_dev, info.st_ino)
            if from_a_client:  # a demo file gradio copied in counts as well: it goes with its last job
                job.sources.add(real)
                self._received.add(real)
        return target

    def forget_job(self, job_dir: Path, keep: Iterable[Path] = ()) -> None:
        """The runner no longer keeps ``job_dir``: its copies leave the budget, and each client's file it took is
        removed from the upload folder unless a job still kept, or ``keep`` (the files of the job about to start),
        uses it."""
        keep = {Path(os.path.realpath(path)) for path in keep}
        with self._lock:
            job = self._jobs.pop(Path(job_dir), None)
            if job is None:
                return
            held = set().union(*(other.sources for other in self._jobs.values()))
            unused = sorted(job.sources - held - keep)
            self._received.difference_update(unused)
        for path in unused:
            self._remove_upload(path)

    def _remove_upload(self, path: Path) -> None:
        """Remove a client's file (a real path in the upload folder) and gradio's folder for it once empty."""
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):
                path.unlink()
        except OSError:
            return
        if path.parent != Path(os.path.realpath(self.uploads)):
            try:
                path.parent.rmdir()  # only when empty: gradio stores the same bytes of another name beside it
            except OSError:
                pass

    def previews(self) -> "PreviewFiles":
        """Where a running job's current estimate goes for gradio to serve (see ``PreviewFiles``); kept by
        ``keep_shown`` until it is closed."""
        with self._lock:  # made and recorded together: keep_shown never sees the folder unrecorded
            previews = PreviewFiles(self.shown, on_close=self._previews.discard)
            self._previews.add(previews)
        return previews

    def keep_shown(self, job_names: Iterable[str]) -> None:
        """Remove the copies of every job not in ``job_names`` (the job folders the runner still keeps)."""
        names = set(job_names)
        with self._lock:  # held throughout: a publish for a kept job cannot make its folder in between
            self._shown_names = {job: shown for job, shown in self._shown_names.items() if job in names}
            keep = set(self._shown_names.values()) | {p.folder.name for p in self._previews}
            for folder in self.shown.iterdir():
                if folder.name not in keep and folder.is_dir() and not folder.is_symlink():
                    shutil.rmtree(folder, ignore_errors=True)


class PreviewFiles:
    """The estimates a running job shows every few steps, as files under ``shown/<random>/``: at most ``KEEP`` at
    a time and all removed by ``close`` (an array handed to gradio instead would stay in its upload folder for the
    server's life: a 1024 px job writes megabytes per preview)."""

    KEEP = 2  # the one shown and the one the browser may still be fetching

    def __init__(self, shown: Path, on_close: Callable[["PreviewFiles"], None] = lambda previews: None) -> None:
        self.folder = private_folder(shown / secrets.token_urlsafe(16))
        self._written: list[Path] = []
        self._count = 0
        self._on_close = on_close

    def write(self, png: bytes) -> Path:
        """``png`` as the next estimate's file (whole, or not at all); the oldest beyond ``KEEP`` is removed."""
        self._count += 1
        path = self.folder / f"estimate-{self._count}.png"
        partial = self.folder / f".{path.name}.{secrets.token_hex(4)}"
        try:
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
            with os.fdopen(descriptor, "wb") as out:
                out.write(png)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        self._written.append(path)
        while len(self._written) > self.KEEP:
            self._written.pop(0).unlink(missing_ok=True)
        return path

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self._on_close(self)


def _on_disk(size: int) -> int:
    """What a file of ``size`` bytes takes on disk: whole blocks, at least one."""
    return max(1, -(-size // DISK_BLOCK)) * DISK_BLOCK


def _names_a_remote_file(value: Any) -> bool:
    """Whether a request's JSON holds a FileData whose ``path`` is a URL, which gradio would download into the
    upload folder, past the gate's budget and its size limit (walked without recursion: any depth)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            path = item.get("path")
            if isinstance(path, str) and path.strip().lower().startswith(("http://", "https://", "//")):
                return True
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


# ASGI's types, spelled out: the gate needs nothing of starlette's
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class UploadGate:
    """ASGI middleware before gradio's routes holding clients' files to the workspace's ``upload_budget``.

    A request that may carry files (a ``POST`` to the upload route, or any multipart ``POST``) goes on only when
    the size it declares fits beside what the server keeps; otherwise the client gets one line (status 413,
    which gradio's page shows as it comes). The room stays reserved until gradio has answered, so two uploads
    at once cannot both take the last of it, and the files the upload route answers with are counted from then
    on. Gradio's own per-file limit (``max_file_size``) still applies inside."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], workspace: Workspace) -> None:
        self.app, self.workspace = app, workspace

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = {name.lower(): value for name, value in scope.get("headers", [])}
        to_upload_route = scope["path"].rstrip("/").endswith(UPLOAD_ROUTE)
        if not to_upload_route and not headers.get(b"content-type", b"").lower().startswith(b"multipart/"):
            return await self._without_files(scope, receive, send)
        try:
            length = int(headers[b"content-length"])
        except (KeyError, ValueError):  # a streamed body could not be weighed before it is stored
            return await _refuse(receive, send, 411, "refused: an upload must state its size (Content-Length)")
        try:
            reservation = self.workspace.reserve(length)
        except UploadBudgetFull as err:
            return await _refuse(receive, send, 413, str(err))
        with reservation:
            await self.app(scope, receive, self._counting(send) if to_upload_route else send)

    async def _without_files(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request that carries no file (the page's JSON: which uploads a job takes, its settings): read whole,
        up to ``MAX_FORM_BYTES``, and refused when it names a file by URL, which gradio would fetch from the
        internet and keep; else handed on as it came."""
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body.extend(message.get("body", b""))
            more = message.get("more_body", False)
            if len(body) > MAX_FORM_BYTES:
                too_large = f"refused: a request without files is at most {MAX_FORM_BYTES // MB} MB"
                return await (_refuse(receive, send, 413, too_large) if more else _answer(send, 413, too_large))
        try:
            remote = _names_a_remote_file(json.loads(bytes(body))) if body else False
        except RecursionError:  # nested deeper than Python's parser goes: no request of the page's
            return await _answer(send, 400, "refused: a request nested too deeply")
        except ValueError:  # not JSON: gradio answers it as it would
            remote = False
        if remote:
            return await _answer(send, 403, "refused: files come from this page's uploads, never from a URL")
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _counting(self, send: Send) -> Send:
        """``send``, noting the paths of the upload route's successful answer (a JSON list) before passing it on."""
        status, body = 0, bytearray()

        async def counting_send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 200:
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    try:
                        paths = json.loads(bytes(body))
                    except ValueError:
                        paths = []
                    if isinstance(paths, list):
                        self.workspace.received(path for path in paths if isinstance(path, str))
            await send(message)

        return counting_send


async def _refuse(receive: Receive, send: Send, status: int, line: str) -> None:
    """Answer ``line`` with ``status`` once the request's body has been read and dropped (a client still sending
    would otherwise get a reset connection instead of the reason)."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    await _answer(send, status, line)


async def _answer(send: Send, status: int, line: str) -> None:
    """``line`` as a plain-text answer with ``status`` (the request's body has been read)."""
    body = line.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
