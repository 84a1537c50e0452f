"""The streams served over upgraded connections: exec sessions and attach (see `wire/streams.py`
for the protocol, `upgrade.py` for how a connection gets here).

Both pump file descriptors on the event loop (`add_reader`/`add_writer`, never a thread per
byte): the process's output to the connection, framed unless it has a TTY, and the client's
input to the process. Writing to the connection is flow-controlled: while its buffer is full the
engine stops reading the process's output, so a fast producer slows down instead of filling
the engine's memory. Blocking calls (spawning, reaping, killing) run on a dedicated thread per
call: an interactive session may live for hours and must not hold one of the threadpool's slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from stackup.errors import Conflict, NotFound, StackupError
from stackup.runtime.engine.api.upgrade import RawConnection, StreamServer
from stackup.runtime.engine.containers import attach
from stackup.runtime.engine.containers.execs import RunningExec
from stackup.runtime.engine.service import EngineService
from stackup.runtime.wire.models import ErrorKind
from stackup.runtime.wire.records import ContainerStatus
from stackup.runtime.wire.streams import MULTIPLEXED_STREAM_TYPE, RAW_STREAM_TYPE, StreamId, frame

_T = TypeVar("_T")
_CHUNK = 65536
_INPUT_HIGH_WATER = 1 << 20
_EXEC_START = re.compile(r"^/exec/([^/]+)/start$")
_ATTACH = re.compile(r"^/containers/([^/]+)/attach$")
_EOT = b"\x04"
"""End of input on a terminal (VEOF): what closing stdin means for a process with a TTY."""


async def on_thread(func: Callable[[], _T]) -> _T:
    """Run a blocking call on its own thread and await its result."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def settle(result: _T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = func()
        except BaseException as exc:  # handed to the awaiting coroutine
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="stackupd-stream", daemon=True).start()
    return await future


_MAX_SIZE = 65535  # a winsize field is 16 bits


def _size(query: dict[str, str]) -> tuple[int, int] | None:
    try:
        rows, cols = int(query.get("h", "0")), int(query.get("w", "0"))
    except ValueError:
        return None
    return (rows, cols) if 0 < rows <= _MAX_SIZE and 0 < cols <= _MAX_SIZE else None


class _Pump:
    """Output fds -> connection, connection -> one input fd; subclasses say how to read/write."""

    def __init__(self, conn: RawConnection) -> None:
        self.loop = asyncio.get_running_loop()
        self.conn = conn
        self.outputs: set[int] = set()
        self.input_fd: int | None = None
        self._input = bytearray()
        self._input_eof = False
        self.finished = asyncio.Event()
        conn.on_pause = self._paused

    def watch(self, fd: int) -> None:
        self.outputs.add(fd)
        self.loop.add_reader(fd, self._readable, fd)

    def _paused(self, paused: bool) -> None:
        for fd in self.outputs:
            if paused:
                self.loop.remove_reader(fd)
            else:
                self.loop.add_reader(fd, self._readable, fd)

    def _readable(self, fd: int) -> None:
        if not self.read_output(fd):
            self.loop.remove_reader(fd)
            self.outputs.discard(fd)
            if not self.outputs:
                self.finished.set()

    def read_output(self, fd: int) -> bool:
        """Move what `fd` has to the connection; False at its end."""
        raise NotImplementedError

    def drain(self) -> None:
        """After the process ended: what is still buffered in the output fds."""
        for fd in list(self.outputs):
            self.loop.remove_reader(fd)
            with contextlib.suppress(BlockingIOError):
                while self.read_output(fd):
                    pass
        self.outputs.clear()

    # -- input ------------------------------------------------------------------------------

    def input(self, data: bytes) -> None:
        if self.input_fd is None:
            return  # the session takes no input: dropped, as Docker does
        self._input += data
        self._flush()
        if len(self._input) > _INPUT_HIGH_WATER:
            self.conn.transport.pause_reading()

    def input_eof(self) -> None:
        self._input_eof = True
        self._flush()

    def _flush(self) -> None:
        fd = self.input_fd
        if fd is None:
            return
        try:
            while self._input:
                written = self.write_input(fd, bytes(self._input[: attach.MAX_INPUT]))
                del self._input[:written]
        except BlockingIOError:
            self.loop.add_writer(fd, self._writable, fd)
            return
        except OSError:  # the process closed its input: drop the rest
            self._input.clear()
        self.loop.remove_writer(fd)
        if not self.conn.is_lost:
            self.conn.transport.resume_reading()
        if self._input_eof:
            self.close_input()

    def _writable(self, fd: int) -> None:
        self.loop.remove_writer(fd)
        self._flush()

    def write_input(self, fd: int, data: bytes) -> int:
        return os.write(fd, data)

    def close_input(self) -> None:
        raise NotImplementedError

    def lost(self) -> None:
        self.finished.set()

    def stop(self) -> None:
        for fd in self.outputs:
            self.loop.remove_reader(fd)
        if self.input_fd is not None:
            self.loop.remove_writer(self.input_fd)


class _ExecPump(_Pump):
    def __init__(self, conn: RawConnection, running: RunningExec) -> None:
        super().__init__(conn)
        self.running = running
        self.tty = running.terminal is not None
        self.input_fd = running.terminal if self.tty else running.stdin
        self._streams = {running.stdout: StreamId.STDOUT, running.stderr: StreamId.STDERR}
        for fd in (running.terminal, running.stdout, running.stderr):
            if fd is not None:
                self.watch(fd)

    def read_output(self, fd: int) -> bool:
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return True
        except OSError:  # EIO: the terminal's other side is closed
            return False
        if data:
            self.conn.write(data if self.tty else frame(self._streams[fd], data))
        return bool(data)

    def close_input(self) -> None:
        if self.tty:
            with contextlib.suppress(OSError):
                os.write(self.input_fd or -1, _EOT)
        elif self.running.stdin is not None:
            self.loop.remove_writer(self.running.stdin)
            with contextlib.suppress(OSError):
                os.close(self.running.stdin)
            self.running.stdin = None
        self.input_fd = None if not self.tty else self.input_fd


class _AttachPump(_Pump):
    def __init__(self, conn: RawConnection, sock: socket.socket, tty: bool, stdin: bool) -> None:
        super().__init__(conn)
        self.sock = sock
        self.tty = tty
        self.input_fd = sock.fileno() if stdin else None
        self.watch(sock.fileno())

    def read_output(self, fd: int) -> bool:
        try:
            message = self.sock.recv(_CHUNK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not message:
            return False
        stream = StreamId.STDERR if message[0] == attach.STDERR_PIPE else StreamId.STDOUT
        payload = message[1:]
        if payload:
            self.conn.write(payload if self.tty else frame(stream, payload))
        return True

    def write_input(self, fd: int, data: bytes) -> int:
        return self.sock.send(data)

    def close_input(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        self.input_fd = None


def stream_server(engine: EngineService) -> StreamServer:
    """The handler `upgrade.upgrading_protocol` calls for each upgraded request."""

    async def serve(method: str, path: str, query: dict[str, str], conn: RawConnection) -> None:
        try:
            if method == "POST" and (match := _EXEC_START.match(path)):
                await _serve_exec(engine, conn, match.group(1), _size(query))
            elif method == "POST" and (match := _ATTACH.match(path)):
                await _serve_attach(engine, conn, match.group(1), query.get("stdin") in ("1", "true"))
            else:
                conn.fail(404, ErrorKind.NOT_FOUND, f"no stream endpoint {method} {path}")
        except NotFound as exc:
            conn.fail(404, ErrorKind.NOT_FOUND, str(exc))
        except StackupError as exc:
            conn.fail(500, ErrorKind.FAILURE, str(exc))

    return serve


async def _serve_exec(
    engine: EngineService, conn: RawConnection, exec_id: str, size: tuple[int, int] | None
) -> None:
    """Spawn the session's process, answer 101, pump until it has been reaped, then close."""
    running = await on_thread(lambda: engine.execs.start(exec_id, size))
    session = running.session
    conn.switch(RAW_STREAM_TYPE if running.terminal is not None else MULTIPLEXED_STREAM_TYPE)
    pump = _ExecPump(conn, running)
    conn.attach(pump)
    reaped = asyncio.ensure_future(on_thread(running.reap))
    code = -1
    try:
        lost = asyncio.ensure_future(conn.lost_event.wait())
        await asyncio.wait({reaped, lost}, return_when=asyncio.FIRST_COMPLETED)
        lost.cancel()
        if not reaped.done():  # the client went away first: do not leave the process behind
            await on_thread(running.kill)
        code = await reaped
        pump.drain()
    finally:
        pump.stop()
        running.close_fds()
        engine.execs.ended(session, code)
        conn.close()
    await on_thread(lambda: engine.exec_ended(session.container_id, session.id, code))


async def _serve_attach(engine: EngineService, conn: RawConnection, ref: str, stdin: bool) -> None:
    """Connect to the container's conmon, answer 101, pump until the container's output ends."""
    record = await on_thread(lambda: engine.containers.get(ref))
    if record.status is not ContainerStatus.RUNNING:
        raise Conflict(f"container {record.name} is not running ({record.status})")
    tty = engine.containers.config_of(record).tty
    bundle = engine.paths.container(record.id).dir
    sock = await on_thread(lambda: attach.connect(bundle))
    conn.switch(RAW_STREAM_TYPE if tty else MULTIPLEXED_STREAM_TYPE)
    pump = _AttachPump(conn, sock, tty, stdin)
    conn.attach(pump)
    try:
        await pump.finished.wait()
    finally:
        pump.stop()
        sock.close()
        conn.close()
