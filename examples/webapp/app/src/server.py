"""The HTTP server (standard library) with a reloader: the application lives in routes.py and
store.py, and when `stackup watch` syncs a new version of either into the container, the next
request reloads them (milliseconds; no process restart). A change to this file restarts the
container instead (its own watch rule), and a module that fails to load answers 500 with the
error until it is fixed.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import routes
import store

RELOADABLE = (store, routes)  # in dependency order


class Reloader:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen = self._stamps()

    @staticmethod
    def _stamps() -> dict[str, bytes]:
        """The modules' contents (a few kB): a sync may keep the host's whole-second mtime, so two
        edits within a second would look the same to a stat."""
        return {module.__name__: Path(module.__file__ or "").read_bytes() for module in RELOADABLE}

    def check(self) -> None:
        with self._lock:
            now = self._stamps()
            if now != self._seen:
                for module in RELOADABLE:
                    importlib.reload(module)
                self._seen = now  # only after every module loaded: a broken file is retried
                print(f"reloaded: {routes.BANNER}", flush=True)


RELOADER = Reloader()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        self._serve(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def _serve(self, body: bytes) -> None:
        try:
            RELOADER.check()
            status, text, content_type = routes.handle(self.command, self.path, body)
        except Exception:  # noqa: BLE001 - a broken edit or an unreachable service: say what
            status, text, content_type = 500, traceback.format_exc(), "text/plain; charset=utf-8"
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        if self.path != "/healthz":
            print(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else '?'}", flush=True)


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
    print(f"{routes.BANNER}: listening on :8000", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
