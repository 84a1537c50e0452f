"""The webapp's behaviour over HTTP: the same file runs in the `tests` container and on the host."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid


def fetch(url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_home_shows_the_banner_and_the_migrations_note(base_url: str) -> None:
    status, body = fetch(f"{base_url}/")
    assert status == 200
    assert body.splitlines()[0] == os.environ.get("EXPECTED_BANNER", "webapp v1")
    assert "- the migration job ran before the app started" in body


def test_visits_are_counted_in_redis(base_url: str) -> None:
    def visits() -> int:
        line = next(x for x in fetch(f"{base_url}/")[1].splitlines() if x.startswith("visits: "))
        return int(line.removeprefix("visits: "))

    first = visits()
    assert visits() == first + 1


def test_a_note_is_stored_in_postgres(base_url: str) -> None:
    text = f"note {uuid.uuid4().hex[:8]}"
    status, body = fetch(f"{base_url}/api/notes", {"text": text})
    assert status == 201 and json.loads(body)["text"] == text
    status, body = fetch(f"{base_url}/api/notes")
    assert status == 200 and text in [note["text"] for note in json.loads(body)]


def test_an_empty_note_is_refused(base_url: str) -> None:
    assert fetch(f"{base_url}/api/notes", {"text": "  "})[0] == 400


def test_unknown_paths_are_404(base_url: str) -> None:
    assert fetch(f"{base_url}/nope")[0] == 404
