"""Signals during a test run: SIGTERM ends it like Ctrl-C, and tear-down is not cut short.

pytest runs fixture finalizers on KeyboardInterrupt, but SIGTERM (what CI runners and `timeout`
send) kills the interpreter without them, leaving the stacks up. Turning SIGTERM into an
interruption gives it the same clean exit. A second signal arriving while a stack is being
removed would abort the removal half-way, so removals run with SIGINT and SIGTERM held back.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

DEFERRED = frozenset({signal.SIGINT, signal.SIGTERM})


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an interruption so pytest stops and runs every finalizer."""


def _raise_terminated(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(f"stopped by signal {signal.Signals(signum).name}")


def install_sigterm() -> signal.Handlers | None:
    """Interrupt on SIGTERM unless someone else already handles it; the handler to restore, or
    None when nothing was installed (not the main thread, or a handler of someone else's)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if previous is not signal.SIG_DFL:
        return None
    signal.signal(signal.SIGTERM, _raise_terminated)
    return signal.SIG_DFL


def restore_sigterm(previous: signal.Handlers | None) -> None:
    if previous is not None and signal.getsignal(signal.SIGTERM) is _raise_terminated:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver them (and let them raise).

    Handlers, not the signal mask: a process-directed signal masked in the main thread would go
    to another thread (xdist's I/O thread) and Python would still raise it in the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in DEFERRED}
    if any(h is None for h in previous.values()):  # installed outside Python: leave it alone
        yield
        return
    caught: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        caught.append(signum)

    for s in DEFERRED:
        signal.signal(s, hold)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)
