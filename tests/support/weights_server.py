"""A local HTTP server on 127.0.0.1 for the download tests: well-behaved, broken and hostile answers by route.

Its fixtures (``server``; ``network_allowed``, which lifts conftest's offline mode and clears the download
settings) are imported by the test files that use them."""
from __future__ import annotations

import http.server
import threading
import time

import pytest


class Server:
    """Serves ``routes``: path -> one of

    * ``("ok", data)``, ``("status", code)``, ``("drop", data, sent)``: the file, an error, a connection cut after
      ``sent`` bytes of the announced ``len(data)``;
    * ``("stall", seconds)``: headers announcing 100 bytes, then nothing;
    * ``("endless", length)``: bytes until the client hangs up, announcing ``length`` (None: no Content-Length);
    * ``("drip", seconds, block, length)``: ``block`` bytes every ``seconds``, announcing ``length``;
    * ``("redirect", location)``: HTTP 302 to ``location``;
    * ``("slow redirect", seconds, location)``: the same, after ``seconds`` of silence;
    * ``("trickle", at_once, dripped, seconds)``: raw bytes, not an HTTP answer built here: ``at_once``, then
      ``dripped`` one byte every ``seconds`` (a status line or headers that never seem to end).

    ``sent[path]`` counts the body bytes written for each path (for the endless and dripping routes; for
    ``trickle``, every byte).
    """

    def __init__(self) -> None:
        self.routes: dict[str, tuple] = {}
        self.requests: list[str] = []
        self.sent: dict[str, int] = {}
        routes, requests, sent = self.routes, self.requests, self.sent

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _start(self, length: int | None) -> None:
                self.send_response(200)
                if length is not None:
                    self.send_header("Content-Length", str(length))
                self.end_headers()

            def _forever(self, block: bytes, pause: float) -> None:
                sent[self.path] = 0
                try:
                    while True:
                        self.wfile.write(block)
                        self.wfile.flush()
                        sent[self.path] += len(block)
                        time.sleep(pause)
                except OSError:  # the client hung up: what these routes wait for
                    pass
                self.close_connection = True

            def _trickle(self, at_once: bytes, dripped: bytes, pause: float) -> None:
                sent[self.path] = 0
                self.close_connection = True
                try:
                    self.wfile.write(at_once)
                    sent[self.path] += len(at_once)
                    for byte in dripped:
                        time.sleep(pause)
                        self.wfile.write(bytes([byte]))
                        sent[self.path] += 1
                except OSError:  # the client hung up, as it should long before the end
                    pass

            def do_GET(self) -> None:
                requests.append(self.path)
                route = routes.get(self.path, ("status", 404))
                kind = route[0]
                if kind == "status":
                    self.send_error(route[1])
                elif kind == "redirect":
                    self.send_response(302)
                    self.send_header("Location", route[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif kind == "slow redirect":
                    time.sleep(route[1])
                    self.send_response(302)
                    self.send_header("Location", route[2])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif kind == "trickle":
                    self._trickle(route[1], route[2], route[3])
                elif kind == "stall":
                    self._start(100)
                    time.sleep(route[1])
                elif kind == "endless":
                    self._start(route[1])
                    self._forever(bytes(range(256)) * 256, 0.0)
                elif kind == "drip":
                    self._start(route[3])
                    self._forever(b"x" * route[2], route[1])
                else:
                    data = route[1]
                    self._start(len(data))
                    self.wfile.write(data[:route[2] if kind == "drop" else len(data)])
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    running = Server()
    yield running
    running.close()


@pytest.fixture(autouse=True)
def network_allowed(monkeypatch):
    for variable in ("RLS_OFFLINE", "RLS_WEIGHTS_MIRROR", "RLS_DOWNLOAD_TIMEOUT", "RLS_DOWNLOAD_DEADLINE"):
        monkeypatch.delenv(variable, raising=False)
