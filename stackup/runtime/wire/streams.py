"""Interactive streams over the engine's socket: exec sessions and attach, as Docker does them.

A stream starts as an HTTP/1.1 request carrying `Connection: Upgrade` and `Upgrade: tcp`
(`POST /exec/{id}/start`, `POST /containers/{ref}/attach`). The engine answers
`101 Switching Protocols` and from then on the connection is a raw byte stream both ways:

- engine -> client: the process's output. Without a TTY every chunk is framed with Docker's
  8-byte header (stream id 1 = stdout, 2 = stderr; three zero bytes; the payload length as a
  big-endian uint32). With a TTY the bytes are the terminal's, unframed.
- client -> engine: the process's stdin, raw. Half-closing the connection (`shutdown(SHUT_WR)`)
  is end of input.
- The engine closes the connection once the process has ended *and* been reaped, so its exit
  code is known by then: `GET /exec/{id}/json` answers it (`ExecInspect.exit_code`); for attach
  it is the container's (`POST /containers/{ref}/wait`).

Resizing a TTY is a separate request: `POST /exec/{id}/resize?h=&w=` or
`POST /containers/{ref}/resize?h=&w=`. An error before the upgrade is an ordinary HTTP answer
with an `ErrorBody`.
"""

from __future__ import annotations

import struct
from enum import IntEnum

from pydantic import BaseModel, ConfigDict, Field

UPGRADE_PROTOCOL = "tcp"
RAW_STREAM_TYPE = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM_TYPE = "application/vnd.docker.multiplexed-stream"
HEADER = struct.Struct(">BxxxI")
"""Docker's frame header: stream id, three zero bytes, big-endian payload length."""
MAX_FRAME = 1 << 20
"""A frame longer than this is a broken peer, not output: refuse it instead of buffering it."""


class StreamId(IntEnum):
    """Docker's stream ids in a frame header."""

    STDIN = 0
    STDOUT = 1
    STDERR = 2


def frame(stream: StreamId, data: bytes) -> bytes:
    """One framed chunk (non-TTY output)."""
    return HEADER.pack(stream, len(data)) + data


class FrameError(ValueError):
    """The peer sent something that is not a Docker frame."""


class FrameDecoder:
    """Incremental decoder: feed bytes as they arrive, take whole frames out."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[StreamId, bytes]]:
        self._buffer += data
        frames: list[tuple[StreamId, bytes]] = []
        while len(self._buffer) >= HEADER.size:
            stream, length = HEADER.unpack_from(self._buffer)
            if stream not in StreamId._value2member_map_ or length > MAX_FRAME:
                raise FrameError(f"not a stream frame (stream {stream}, length {length})")
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append((StreamId(stream), bytes(self._buffer[HEADER.size : end])))
            del self._buffer[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still buffered (non-zero at the end: a truncated stream)."""
        return len(self._buffer)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ExecCreate(_Frozen):
    """An exec session to start later over an upgraded connection (`POST /containers/{ref}/execs`).

    `env`, `cwd` and `user` work as for `ExecRequest`; `privileged` adds every capability (as
    `docker exec --privileged`); `tty` gives the process a terminal, `stdin` connects its input.
    """

    args: tuple[str, ...] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    user: str | None = None
    privileged: bool = False
    tty: bool = False
    stdin: bool = False


class ExecInspect(_Frozen):
    """An exec session: `running` from its start until its process is reaped, then `exit_code`."""

    id: str
    container_id: str
    args: tuple[str, ...]
    tty: bool = False
    stdin: bool = False
    running: bool = False
    started: bool = False
    pid: int | None = None
    exit_code: int | None = None
