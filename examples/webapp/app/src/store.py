"""Connections to the stack's PostgreSQL and Redis, found by service name on the stack's network."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import psycopg2
import redis


@contextlib.contextmanager
def cursor() -> Iterator[psycopg2.extensions.cursor]:
    """A cursor in one transaction (committed on success) on a connection closed afterwards."""
    conn = psycopg2.connect(os.environ["DATABASE_URL"], connect_timeout=5)
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def cache() -> redis.Redis:
    return redis.Redis(host=os.environ.get("REDIS_HOST", "cache"), port=6379, socket_timeout=5)
