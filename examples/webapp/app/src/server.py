"""The web application: notes in PostgreSQL, a visit counter in Redis, standard library HTTP.

    GET  /            a greeting, the visit count, the notes (text/plain)
    GET  /api/notes   the notes as JSON
    POST /api/notes   {"text": "..."} adds a note (201)
    GET  /healthz     200 once the database and the cache answer

Edit BANNER while `stackup watch` runs: the file is synced into the container and the server
restarts, so the next request shows the new text.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import store

BANNER = "webapp v1"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/healthz":
            with store.cursor() as cur:
                cur.execute("SELECT 1")
            store.cache().ping()
            self._send(200, "ok\n")
        elif self.path == "/api/notes":
            self._send(200, json.dumps(notes()) + "\n", "application/json")
        elif self.path == "/":
            visits = store.cache().incr("visits")
            lines = [BANNER, os.environ.get("GREETING", "hello"), f"visits: {visits}", "notes:"]
            lines += [f"- {note['text']}" for note in notes()]
            self._send(200, "\n".join(lines) + "\n")
        else:
            self._send(404, "not found\n")

    def do_POST(self) -> None:
        if self.path != "/api/notes":
            self._send(404, "not found\n")
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        text = str(body.get("text", "")).strip()
        if not text:
            self._send(400, '{"error": "text is required"}\n', "application/json")
            return
        with store.cursor() as cur:
            cur.execute("INSERT INTO notes (text) VALUES (%s) RETURNING id", (text,))
            (note_id,) = cur.fetchone()
        self._send(201, json.dumps({"id": note_id, "text": text}) + "\n", "application/json")

    def _send(self, status: int, body: str, content_type: str = "text/plain; charset=utf-8") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        print(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else '?'}", flush=True)


def notes() -> list[dict[str, object]]:
    with store.cursor() as cur:
        cur.execute("SELECT id, text FROM notes ORDER BY id")
        return [{"id": row[0], "text": row[1]} for row in cur.fetchall()]


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
    print(f"{BANNER}: listening on :8000", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
