"""One SQLite connection as the engine uses it: WAL, synchronous=NORMAL, one lock, explicit
transactions. Shared by the state store and the network store (see `state.py` for why these
settings)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Database:
    """A locked connection; `schema` statements run in the first transaction."""

    def __init__(self, path: Path, schema: str, *, busy_timeout_s: float = 30.0) -> None:
        self._lock = threading.RLock()
        # isolation_level=None: autocommit, transactions are opened explicitly in `_tx`.
        self._db = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable across engine crashes: state.py
        self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        with self._tx() as db:
            # Statement by statement: executescript() would COMMIT in the middle of this transaction.
            for statement in filter(str.strip, schema.split(";")):
                db.execute(statement)
            self._migrate(db)

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Bring an older database up to date (inside the schema transaction); none by default."""

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front so it cannot deadlock."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args))
