"""Daemon errors translated at the seam into stackup's exception tree, the daemon's words kept.

The docker SDK raises `docker.errors.NotFound` / `APIError` (HTTP status and the daemon's
`message`) and lets `requests` connection errors through; callers of the runtime should only ever
see `stackup.errors` types. The most specific class wins: a 404 is `NotFound`, a refused or
missing socket is `EngineUnavailable` naming the endpoint that was tried, anything else the
daemon said no to is `RuntimeFailure`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import docker.errors  # type: ignore[import-untyped]
import requests

from stackup.errors import EngineUnavailable, NotFound, RuntimeFailure, StackupError


def daemon_message(exc: BaseException) -> str:
    """What the daemon said (its JSON `message`), else the exception's own text, on one line."""
    text = getattr(exc, "explanation", None) or str(exc)
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return " ".join(str(text).split())


def unavailable(endpoint: str, exc: BaseException | None = None) -> EngineUnavailable:
    """One line: which endpoint was tried and what to do about it."""
    reason = _connection_reason(exc) if exc is not None else "no answer"
    return EngineUnavailable(
        f"cannot reach the Docker daemon at {endpoint} ({reason}); start it (dockerd, or "
        "`podman system service`) or point DOCKER_HOST / the Docker context at a running one"
    )


def _connection_reason(exc: BaseException) -> str:
    """The innermost OS-level reason (`No such file or directory`, `Connection refused`)."""
    seen: BaseException | None = exc
    reason = ""
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            reason = seen.strerror
        nxt = seen.__cause__ or seen.__context__
        args = getattr(seen, "args", ())
        if nxt is None and args and isinstance(args[0], BaseException):
            nxt = args[0]
        seen = nxt if nxt is not seen else None
    if not reason:
        text = str(exc)
        for known in ("Connection refused", "No such file or directory", "Permission denied"):
            if known in text:
                return known
        return " ".join(text.split())[:200]
    return reason


@contextmanager
def daemon_errors(endpoint: str, what: str) -> Iterator[None]:
    """Run a daemon call; re-raise its failure as a `stackup.errors` type prefixed with `what`."""
    try:
        yield
    except StackupError:
        raise
    except docker.errors.NotFound as exc:
        raise NotFound(f"{what}: {daemon_message(exc)}") from exc
    except docker.errors.APIError as exc:
        raise RuntimeFailure(f"{what}: {daemon_message(exc)}") from exc
    except (requests.exceptions.ConnectionError, ConnectionError, FileNotFoundError) as exc:
        raise unavailable(endpoint, exc) from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise RuntimeFailure(f"{what}: {daemon_message(exc)}") from exc
