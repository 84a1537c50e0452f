"""The migration job: brings the schema to the current version, then exits 0 (the app waits for it).

Idempotent, so every `up` may run it again: each step runs once, recorded in schema_version.
"""

from __future__ import annotations

import store

STEPS = [
    "CREATE TABLE notes (id serial PRIMARY KEY, text text NOT NULL, created timestamptz DEFAULT now())",
    "INSERT INTO notes (text) VALUES ('the migration job ran before the app started')",
]


def main() -> None:
    with store.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version int NOT NULL)")
        cur.execute("SELECT coalesce(max(version), 0) FROM schema_version")
        (current,) = cur.fetchone()
        for version, statement in enumerate(STEPS, start=1):
            if version > current:
                cur.execute(statement)
                cur.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
                print(f"migrated to version {version}")
        print(f"schema at version {len(STEPS)}")


if __name__ == "__main__":
    main()
