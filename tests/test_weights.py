"""The registry's downloads against a local HTTP server on 127.0.0.1 (never the internet): good, wrong hash,
dropped connection, server error, stalled server, offline mode, mirror, pinned hashes, and the command line."""
from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest
import torch

from rls_lightning.paths import DEMO_GENERATOR, PROJECT_ROOT as ROOT
from rls_lightning.weights import registry, resolve_generator
from rls_lightning.cli.weights import main as weights_main
from rls_lightning.weights.registry import PretrainedFile
from rls_lightning.weights.store import WeightsUnavailable, ensure
from rls_lightning.weights.verification import VerificationFailed
from support.weights_server import Server, network_allowed, server  # noqa: F401 - the fixtures

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: several chunks of the downloader


def _entry(server: Server, **fields) -> PretrainedFile:
    values = dict(name="test-file", filename="test-weights.bin", urls=(f"{server.url}/files/test-weights.bin",),
                  kind="metric", used_by="tests", licence="none", known="made by the test",
                  sha256=hashlib.sha256(PAYLOAD).hexdigest())
    values.update(fields)
    return PretrainedFile(**values)


def _left_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_good_download_is_verified_renamed_and_then_reused_without_the_network(server, tmp_path):
    server.routes["/files/test-weights.bin"] = ("ok", PAYLOAD)
    entry = _entry(server)
    path = ensure(entry, tmp_path / "cache")
    assert path == tmp_path / "cache" / "test-weights.bin" and path.read_bytes() == PAYLOAD
    assert _left_in(tmp_path / "cache") == ["test-weights.bin"]  # no .part file beside it
    assert ensure(entry, tmp_path / "cache") == path
    assert server.requests == ["/files/test-weights.bin"]  # the second call found the verified file


def test_a_wrong_hash_is_refused_and_nothing_stays_in_the_cache(server, tmp_path):
    server.routes["/files/test-weights.bin"] = ("ok", PAYLOAD[:-1] + b"x")
    entry = _entry(server)
    with pytest.raises(WeightsUnavailable) as caught:
        ensure(entry, tmp_path / "cache")
    message = str(caught.value)
    assert "sha256" in message and entry.sha256 in message and entry.urls[0] in message
    assert f"put it at {tmp_path / 'cache' / 'test-weights.bin'}" in message and "\n" not in message
    assert _left_in(tmp_path / "cache") == []


def test_a_hash_prefix_in_the_file_name_is_checked(server, tmp_path):
    server.routes["/files/test-weights.bin"] = ("ok", PAYLOAD)
    good = hashlib.sha256(PAYLOAD).hexdigest()[:8]
    assert ensure(_entry(server, sha256=None, hash_prefix=good), tmp_path / "a").read_bytes() == PAYLOAD
    wrong = format((int(good, 16) + 1) % 16 ** 8, "08x")
    with pytest.raises(WeightsUnavailable, match=f"does not start with test-file's {wrong}"):
        ensure(_entry(server, sha256=None, hash_prefix=wrong), tmp_path / "b")
    assert _left_in(tmp_path / "b") == []


def test_a_connection_dropped_half_way_leaves_nothing(server, tmp_path):
    server.routes["/files/test-weights.bin"] = ("drop", PAYLOAD, len(PAYLOAD) // 2)
    with pytest.raises(WeightsUnavailable, match=r"connection (closed|broken) after \d+"):
        ensure(_entry(server), tmp_path / "cache")
    assert _left_in(tmp_path / "cache") == []


def test_a_server_error_names_the_url_and_the_next_url_is_tried(server, tmp_path):
    server.routes["/files/test-weights.bin"] = ("status", 503)
    with pytest.raises(WeightsUnavailable, match=r"HTTP 503") as caught:
        ensure(_entry(server), tmp_path / "cache")
    assert f"{server.url}/files/test-weights.bin" in str(caught.value)
    assert _left_in(tmp_path / "cache") == []
    server.routes["/backup/test-weights.bin"] = ("ok", PAYLOAD)
    entry = _entry(server, urls=(f"{server.url}/files/test-weights.bin", f"{server.url}/backup/test-weights.bin"))
    assert ensure(entry, tmp_path / "cache").read_bytes() == PAYLOAD


def test_a_stalled_server_times_out(server, tmp_path, monkeypatch):
    server.routes["/files/test-weights.bin"] = ("stall", 5)
    monkeypatch.setenv("RLS_DOWNLOAD_TIMEOUT", "0.5")
    started = time.monotonic()
    with pytest.raises(WeightsUnavailable, match="timed out"):
        ensure(_entry(server), tmp_path / "cache")
    assert time.monotonic() - started < 4
    assert _left_in(tmp_path / "cache") == []


def test_no_network_names_the_file_the_url_and_where_to_put_it(tmp_path):
    entry = PretrainedFile(name="test-file", filename="test-weights.bin", urls=("http://127.0.0.1:9/x.bin",),
                           kind="metric", used_by="tests", licence="none", known="test", sha256="0" * 64)
    with pytest.raises(WeightsUnavailable) as caught:
        ensure(entry, tmp_path / "cache")
    assert re.fullmatch(r"test-file: could not download test-weights\.bin \(http://127\.0\.0\.1:9/x\.bin: no "
                        r"connection \([^()]+\)\); download http://127\.0\.0\.1:9/x\.bin and put it at "
                        r".+test-weights\.bin", str(caught.value))


def test_offline_mode_never_touches_the_network(server, tmp_path, monkeypatch):
    server.routes["/files/test-weights.bin"] = ("ok", PAYLOAD)
    monkeypatch.setenv("RLS_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable, match=r"downloads are off \(offline\): download "
                                                 r"http://127\.0\.0\.1:\d+/files/test-weights\.bin and put it at"):
        ensure(_entry(server), tmp_path / "cache")
    assert server.requests == []
    monkeypatch.delenv("RLS_OFFLINE")
    with pytest.raises(WeightsUnavailable, match="offline"):
        ensure(_entry(server), tmp_path / "cache", offline=True)
    assert server.requests == []


def test_the_mirror_serves_the_same_file_name_instead_of_the_upstream_urls(server, tmp_path, monkeypatch):
    server.routes["/mirror/test-weights.bin"] = ("ok", PAYLOAD)
    monkeypatch.setenv("RLS_WEIGHTS_MIRROR", f"{server.url}/mirror/")
    entry = _entry(server, urls=(f"{server.url}/upstream/elsewhere.bin",))
    assert ensure(entry, tmp_path / "cache").read_bytes() == PAYLOAD
    assert server.requests == ["/mirror/test-weights.bin"]


def test_a_mirror_can_be_a_shared_folder(tmp_path, monkeypatch):
    (tmp_path / "share").mkdir()
    (tmp_path / "share" / "test-weights.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("RLS_WEIGHTS_MIRROR", (tmp_path / "share").as_uri())
    entry = PretrainedFile(name="test-file", filename="test-weights.bin", urls=("http://127.0.0.1:9/x",),
                           kind="metric", used_by="t", licence="t", known="t",
                           sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert ensure(entry, tmp_path / "cache").read_bytes() == PAYLOAD


def test_without_a_published_hash_the_sha256_is_pinned_and_later_changes_are_refused(server, tmp_path):
    server.routes["/files/test-weights.bin"] = ("ok", PAYLOAD)
    entry = _entry(server, sha256=None)
    path = ensure(entry, tmp_path / "cache")
    pinned = path.with_name("test-weights.bin.sha256").read_text().split()[0]
    assert pinned == hashlib.sha256(PAYLOAD).hexdigest()
    path.write_bytes(PAYLOAD[:1000])
    with pytest.raises(VerificationFailed, match="changed since it was pinned"):
        ensure(entry, tmp_path / "cache")


def test_a_bad_file_placed_by_hand_is_never_used_nor_replaced(server, tmp_path):
    server.routes["/files/test-weights.bin"] = ("ok", PAYLOAD)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "test-weights.bin").write_bytes(b"not it")
    with pytest.raises(VerificationFailed, match=r"mine/test-weights\.bin: sha256 .* delete it"):
        ensure(_entry(server), tmp_path / "mine")
    assert (tmp_path / "mine" / "test-weights.bin").read_bytes() == b"not it"
    assert server.requests == []


def test_ctrl_c_during_a_download_leaves_nothing(server, tmp_path, monkeypatch):
    from rls_lightning.weights import download as downloader

    server.routes["/files/test-weights.bin"] = ("ok", PAYLOAD)
    monkeypatch.setattr(downloader, "CHUNK", 4096)

    def interrupt(received, total):
        if received > 8192:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        downloader.download(_entry(server), f"{server.url}/files/test-weights.bin",
                            tmp_path / "cache" / "test-weights.bin", progress=interrupt)
    assert _left_in(tmp_path / "cache") == []


# ---------------------------------------------------------------- generators by name


def _generator_entry(server: Server, resolution: int) -> PretrainedFile:
    return PretrainedFile(name="test-gan", filename="test-gan.pt", urls=(f"{server.url}/gan/test-gan.pt",),
                          kind="generator", used_by="tests", licence="none", known="the demo model",
                          resolution=resolution)


def test_a_generator_name_downloads_checks_the_content_and_loads(server, tmp_path, monkeypatch):
    from rls_lightning.stylegan import load_generator

    server.routes["/gan/test-gan.pt"] = ("ok", DEMO_GENERATOR.read_bytes())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(registry, "FILES", registry.FILES + (_generator_entry(server, 64),))
    path = resolve_generator("test-gan")
    assert path == tmp_path / "hub" / "checkpoints" / "test-gan.pt"
    assert load_generator(path).img_resolution == 64
    assert (tmp_path / "hub" / "checkpoints" / "test-gan.pt.sha256").is_file()


def test_a_generator_of_another_resolution_is_refused(server, tmp_path, monkeypatch):
    from rls_lightning.weights import GeneratorUnavailable

    server.routes["/gan/test-gan.pt"] = ("ok", DEMO_GENERATOR.read_bytes())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(registry, "FILES", registry.FILES + (_generator_entry(server, 1024),))
    with pytest.raises(GeneratorUnavailable, match="a 64 px generator, but test-gan is 1024 px"):
        resolve_generator("test-gan")
    assert _left_in(tmp_path / "hub" / "checkpoints") == []


def test_an_unknown_name_lists_the_known_generators():
    from rls_lightning.weights import GeneratorUnavailable

    with pytest.raises(GeneratorUnavailable) as caught:
        resolve_generator("ffhq-2048")
    message = str(caught.value)
    assert message.startswith("--generator ffhq-2048: no such file, and unknown generator name 'ffhq-2048'; known:")
    for name in registry.GENERATOR_NAMES:
        assert name in message
    assert resolve_generator(Path("some/file.pkl")) == Path("some/file.pkl")  # paths are left to the file checks


def test_invert_takes_a_registry_name(server, tmp_path, monkeypatch, capsys):
    from rls_lightning.cli.invert import main as invert_main

    server.routes["/gan/test-gan.pt"] = ("ok", DEMO_GENERATOR.read_bytes())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(registry, "FILES", registry.FILES + (_generator_entry(server, 64),))
    monkeypatch.setenv("RLS_OFFLINE", "1")
    (tmp_path / "lr").mkdir()
    assert invert_main(["--lr-dir", str(tmp_path / "lr"), "--generator", "test-gan"]) == 2
    assert "--generator test-gan: test-gan.pt is not in" in capsys.readouterr().err
    assert server.requests == []


# ---------------------------------------------------------------- python -m rls_lightning.weights


def test_the_command_fetches_verifies_and_lists(server, tmp_path, monkeypatch, capsys):
    server.routes["/files/test-weights.bin"] = ("ok", PAYLOAD)
    entry = _entry(server)
    monkeypatch.setattr(registry, "FILES", registry.FILES + (entry,))
    cache = tmp_path / "cache"
    assert weights_main(["--weights-dir", str(cache), "fetch", "test-file"]) == 0
    assert capsys.readouterr().out.strip() == f"test-file: {cache / 'test-weights.bin'}"
    assert weights_main(["--weights-dir", str(cache), "verify", "test-file"]) == 0
    assert "ok  test-file" in capsys.readouterr().out
    assert weights_main(["--weights-dir", str(cache), "list", "--json"]) == 0
    import json

    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["test-file"]["state"] == "ok" and rows["fid-inception"]["verification"] == "sha256 prefix 6726825d"
    (cache / "test-weights.bin").write_bytes(b"tampered")
    assert weights_main(["--weights-dir", str(cache), "verify"]) == 1
    assert "BAD test-file" in capsys.readouterr().out


def test_the_command_reports_each_unavailable_file_on_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RLS_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    assert weights_main(["fetch", "metrics"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    metrics = [entry for entry in registry.FILES if entry.kind == "metric"]
    assert len(lines) == len(metrics)
    for line, entry in zip(lines, metrics):
        assert line.startswith(f"error: {entry.name}: {entry.filename} is not in") and entry.urls[0] in line
        assert str(tmp_path / "hub" / "checkpoints" / entry.filename) in line
    assert weights_main(["fetch", "nonsense"]) == 2
    assert "unknown name 'nonsense'" in capsys.readouterr().err


def test_every_registry_entry_is_complete_and_consistent():
    names = [entry.name for entry in registry.FILES]
    assert len(names) == len(set(names))
    for entry in registry.FILES:
        assert entry.urls and all(url.startswith("https://") for url in entry.urls), entry.name
        assert entry.urls[0].rsplit("/", 1)[1] == entry.filename, entry.name
        assert entry.known and entry.licence and entry.used_by, entry.name
        if entry.hash_prefix is not None:  # torch-hub convention: the prefix is in the file name
            assert f"-{entry.hash_prefix}." in entry.filename, entry.name
        if entry.kind == "generator":
            assert entry.resolution in (256, 512, 1024) and entry.framing in ("ffhq", None), entry.name
    assert {"fid-inception", "alexnet", "vgg16", "facenet-vggface2", "ffhq-1024"} <= set(names)


def test_each_generator_resolution_is_the_one_its_name_and_file_name_say():
    """The resolution bounds the download (limits) and is checked against the file's content; a typo would refuse
    the real file. Against the numbers NVIDIA put in the file names (or, for its README's files, in our names)."""
    for entry in registry.FILES:
        if entry.kind != "generator":
            continue
        in_name = int(re.search(r"-(\d+)(?:-noaug)?$", entry.name).group(1))
        in_file = {int(number) for number in re.findall(r"\d+", entry.filename)} & {256, 512, 1024}
        assert in_name == entry.resolution and in_file <= {entry.resolution}, entry.name


def test_a_folder_that_cannot_be_written_is_one_line_too(server, tmp_path):
    server.routes["/files/test-weights.bin"] = ("ok", PAYLOAD)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(WeightsUnavailable, match=r"cannot write into .*file/sub"):
        ensure(_entry(server), tmp_path / "file" / "sub")


@pytest.mark.parametrize("command", ["train_flow", "experiments", "inspect_generator"])
def test_every_generator_option_takes_a_registry_name(command, server, tmp_path, monkeypatch, capsys):
    """Offline, each command reaches the registry for the name (one line: what to fetch and where) instead of
    treating it as a missing file; online the same name is downloaded from the local server."""
    from rls_lightning.cli.inspect_generator import main as inspect_main
    from rls_lightning.cli.train_flow import main as train_flow_main
    from rls_lightning.cli.experiments import main as experiments_main

    server.routes["/gan/test-gan.pt"] = ("ok", DEMO_GENERATOR.read_bytes())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(registry, "FILES", registry.FILES + (_generator_entry(server, 64),))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hr").mkdir()
    (tmp_path / "hr" / "face.png").write_bytes((ROOT / "data" / "demo" / "hr" / "demo00.png").read_bytes())
    # each with a bad value checked after the generator, so that nothing runs once the name is resolved
    run, argv, option, later = {
        "train_flow": (train_flow_main, ["--generator", "test-gan", "--output", str(tmp_path / "hr")], "--generator",
                       "--output"),
        "experiments": (experiments_main, ["table1", "--hr-dir", str(tmp_path / "hr"), "--generator", "test-gan",
                                           "--flow", str(tmp_path / "missing.pt")], "--generator", "--flow"),
        "inspect_generator": (inspect_main, ["test-gan", "--seeds", "-1"], "checkpoint", "--seeds"),
    }[command]
    monkeypatch.setenv("RLS_OFFLINE", "1")
    assert run(argv) == 2
    assert f"error: {option} test-gan: test-gan.pt is not in" in capsys.readouterr().err
    assert server.requests == []
    monkeypatch.delenv("RLS_OFFLINE")
    assert run(argv) == 2  # downloaded now; the next check (a bad value on purpose) stops before any work
    assert (tmp_path / "hub" / "checkpoints" / "test-gan.pt").is_file() and server.requests == ["/gan/test-gan.pt"]
    downloaded, error = capsys.readouterr().err.splitlines()
    assert downloaded.startswith("downloading test-gan (test-gan.pt) from") and error.startswith(f"error: {later} ")


def test_list_on_a_pipe_prints_plain_rows_with_the_demo_model_and_the_missing_flows(tmp_path, capsys):
    """Piped (a file, ``| less``), ``weights list`` is plain aligned text within 120 columns (it was a 122-column box
    table with a 366-character footer), lists the embedded demo model with its shipped flow, marks every registry
    generator as having no flow to download, and says how to train one and what it costs."""
    assert weights_main(["--weights-dir", str(tmp_path), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and max(len(line) for line in lines) <= 120
    assert not any(ch in "".join(lines) for ch in "┃│━─┏└")
    header = lines[0].split()
    assert header[:6] == ["name", "kind", "px", "size", "here", "flow"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line and not line[0].isspace()}
    assert rows["demo64"][1:3] == ["generator", "64"] and "shipped" in rows["demo64"]
    generators = [entry.name for entry in registry.FILES if entry.kind == "generator"]
    assert generators and all(rows[name][1] == "generator" and "one" in rows[name] for name in generators)
    assert all(rows[entry.name][1] == "metric" for entry in registry.FILES if entry.kind == "metric")
    text = " ".join(lines)
    assert "no flow prior can be downloaded" in text and "python train_flow.py --generator NAME" in text
    assert re.search(r"about \d+ min in bf16", text)


def test_an_offline_registry_generator_is_named_once(tmp_path):
    """``--generator ffhq-1024`` offline: one line naming the option and the name once, then the file, the URL and
    where to put it (it read ``--generator ffhq-1024: ffhq-1024: ffhq.pkl ...``)."""
    from rls_lightning.weights import GeneratorUnavailable

    with pytest.raises(GeneratorUnavailable) as caught:
        resolve_generator("ffhq-1024", weights_dir=tmp_path)
    said = str(caught.value)
    assert said.startswith("--generator ffhq-1024: ") and said.count("ffhq-1024") == 1 and "ffhq.pkl" in said
    assert "https://" in said and str(tmp_path) in said and "\n" not in said
