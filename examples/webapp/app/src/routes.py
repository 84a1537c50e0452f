"""The application: notes in PostgreSQL, a visit counter in Redis.

    GET  /            a greeting, the visit count, the notes (text/plain)
    GET  /api/notes   the notes as JSON
    POST /api/notes   {"text": "..."} adds a note (201)
    GET  /healthz     200 once the database and the cache answer

Edit this file while `stackup watch` runs: it is synced into the container and the server
(server.py) reloads it before the next request, so the change shows at once.
"""

from __future__ import annotations

import json
import os

import store

BANNER = "webapp v1"

Response = tuple[int, str, str]
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"


def handle(method: str, path: str, body: bytes) -> Response:
    if method == "GET" and path == "/healthz":
        with store.cursor() as cur:
            cur.execute("SELECT 1")
        store.cache().ping()
        return 200, "ok\n", TEXT
    if method == "GET" and path == "/":
        visits = store.cache().incr("visits")
        lines = [BANNER, os.environ.get("GREETING", "hello"), f"visits: {visits}", "notes:"]
        lines += [f"- {note['text']}" for note in notes()]
        return 200, "\n".join(lines) + "\n", TEXT
    if method == "GET" and path == "/api/notes":
        return 200, json.dumps(notes()) + "\n", JSON
    if method == "POST" and path == "/api/notes":
        text = str(json.loads(body or b"{}").get("text", "")).strip()
        if not text:
            return 400, '{"error": "text is required"}\n', JSON
        with store.cursor() as cur:
            cur.execute("INSERT INTO notes (text) VALUES (%s) RETURNING id", (text,))
            (note_id,) = cur.fetchone()
        return 201, json.dumps({"id": note_id, "text": text}) + "\n", JSON
    return 404, "not found\n", TEXT


def notes() -> list[dict[str, object]]:
    with store.cursor() as cur:
        cur.execute("SELECT id, text FROM notes ORDER BY id")
        return [{"id": row[0], "text": row[1]} for row in cur.fetchall()]
