"""The web page's server for tests: a free port on 127.0.0.1, and gradio's HTTP API spoken the way any client
(a browser, ``gradio_client``, ``curl``) speaks it: upload a file, call an endpoint, read the answer."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx

API = "/gradio_api"
FILE_DATA = {"_type": "gradio.FileData"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def file_data(path: str | Path) -> dict:
    """What a client sends for a file: a ``FileData`` whose ``path`` the client chooses."""
    return {"path": str(path), "orig_name": Path(path).name, "meta": FILE_DATA}


def upload_answer(base: str, path: Path) -> httpx.Response:
    """POST ``path`` to the server's upload route; its answer, whatever the status."""
    with open(path, "rb") as data:
        return httpx.post(f"{base}{API}/upload", files={"files": (path.name, data)}, timeout=60)


def upload(base: str, path: Path) -> str:
    """POST ``path`` to the server's upload route; the server-side path it answers with."""
    answer = upload_answer(base, path)
    answer.raise_for_status()
    return answer.json()[0]


def call(base: str, endpoint: str, data: list, timeout: float = 180) -> tuple[str, list | None]:
    """Call ``endpoint`` through the queue (``/call/<endpoint>``) and read its event stream to the end: the whole
    text received, and the last data of a ``complete`` event (None when the call ended in an error)."""
    answer = httpx.post(f"{base}{API}/call/{endpoint}", json={"data": data}, timeout=30)
    text = answer.text
    answer.raise_for_status()
    event_id = answer.json()["event_id"]
    stream = httpx.get(f"{base}{API}/call/{endpoint}/{event_id}", timeout=timeout)
    text += stream.text
    result, event = None, None
    for line in stream.text.splitlines():
        if line.startswith("event: "):
            event = line[len("event: "):].strip()
        elif line.startswith("data: ") and event == "complete":
            result = json.loads(line[len("data: "):])
    return text, result
