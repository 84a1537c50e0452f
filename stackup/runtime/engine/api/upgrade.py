"""Upgraded connections (`Connection: Upgrade`, `Upgrade: tcp`) on the engine's one socket.

Why at uvicorn's protocol level: ASGI has no way to take over a connection for anything but a
WebSocket, and uvicorn hands a request asking for another upgrade to the app as plain HTTP
(its parser then drops whatever follows the headers). The HTTP protocol class is pluggable
(`uvicorn.Config(http=...)`), so `upgrading_protocol` subclasses uvicorn's httptools protocol:
a request asking for `Upgrade: tcp` is kept from the app and, once its headers are parsed,
the transport is handed to a `RawConnection` and the request to `streams.serve`. Every other
request goes through uvicorn and Starlette unchanged. This touches three of the protocol's
members (`_should_upgrade`, `data_received`, `url`/`headers`), which is the price of serving
streams on the same socket, with the same permissions and the same client as the rest of the
API, as Docker does; a second listener would have doubled the socket handling instead.

`RawConnection` joins uvicorn's connection set, so a graceful shutdown closes it too.
"""

from __future__ import annotations

import asyncio
import json
import select
import urllib.parse
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any, Protocol

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from stackup.runtime.wire.models import ErrorBody, ErrorKind
from stackup.runtime.wire.streams import UPGRADE_PROTOCOL

HANGUP_POLL_S = 0.5
"""How often a half-closed connection is checked for a client that went away entirely."""


class InputSink(Protocol):
    """Where an upgraded connection's incoming bytes go once a stream is set up."""

    def input(self, data: bytes) -> None: ...

    def input_eof(self) -> None: ...

    def lost(self) -> None: ...


class RawConnection(asyncio.Protocol):
    """The connection after the request headers: raw bytes both ways, with flow control.

    Input that arrives before a sink is attached (the client may send stdin right after its
    request) is kept and delivered on `attach`. A request body (`Content-Length`) is skipped.
    """

    def __init__(self, server_state: Any, transport: asyncio.Transport, skip: int = 0) -> None:
        self._server_state = server_state
        self.transport = transport
        self._skip = skip
        self._pending = bytearray()
        self._eof = False
        self._sink: InputSink | None = None
        self.is_lost = False
        self.lost_event = asyncio.Event()
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.on_pause: Callable[[bool], None] = lambda _paused: None
        server_state.connections.add(self)

    # -- asyncio.Protocol -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._skip:
            taken = min(self._skip, len(data))
            self._skip -= taken
            data = data[taken:]
        if not data:
            return
        if self._sink is not None:
            self._sink.input(data)
        else:
            self._pending += data

    def eof_received(self) -> bool:
        """The client closed its sending side (end of stdin); keep the connection for output.

        A client that closed the whole connection looks the same until something is written
        to it, which a silent process may never do; a Unix socket whose peer is gone polls
        as hung up, though, so that is watched from here on (`_watch_hangup`).
        """
        if self._sink is not None:
            self._sink.input_eof()
        else:
            self._eof = True
        self._watch_hangup()
        return True

    def _watch_hangup(self) -> None:
        if self.is_lost or self.transport.is_closing():
            return
        sock = self.transport.get_extra_info("socket")
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLHUP)
        if any(events & select.POLLHUP for _fd, events in poller.poll(0)):
            self.transport.abort()  # connection_lost follows
            return
        asyncio.get_running_loop().call_later(HANGUP_POLL_S, self._watch_hangup)

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_lost = True
        self.lost_event.set()
        self._server_state.connections.discard(self)
        self.can_write.set()
        if self._sink is not None:
            self._sink.lost()

    def pause_writing(self) -> None:
        self.can_write.clear()
        self.on_pause(True)

    def resume_writing(self) -> None:
        self.can_write.set()
        self.on_pause(False)

    # -- what uvicorn's server asks of a connection ----------------------------------------

    def shutdown(self) -> None:
        self.transport.close()

    # -- for the stream handlers ------------------------------------------------------------

    def attach(self, sink: InputSink) -> None:
        self._sink = sink
        if self._pending:
            data, self._pending = bytes(self._pending), bytearray()
            sink.input(data)
        if self._eof:
            sink.input_eof()
        if self.is_lost:
            sink.lost()

    def write(self, data: bytes) -> None:
        if not self.is_lost and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def switch(self, content_type: str) -> None:
        """Answer `101 Switching Protocols`: from here on, the stream's bytes."""
        self.write(
            b"HTTP/1.1 101 UPGRADED\r\n"
            + f"Content-Type: {content_type}\r\n".encode()
            + f"Connection: Upgrade\r\nUpgrade: {UPGRADE_PROTOCOL}\r\n\r\n".encode()
        )

    def fail(self, status: int, kind: ErrorKind, message: str) -> None:
        """An ordinary HTTP error answer (nothing was upgraded), then close."""
        body = json.dumps(ErrorBody(kind=kind, message=message).model_dump(mode="json")).encode()
        self.write(
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()
            + b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        self.close()


StreamServer = Callable[[str, str, dict[str, str], RawConnection], Coroutine[Any, Any, None]]
"""(method, path, query, connection) -> serve the stream until it ends."""


def upgrading_protocol(serve: StreamServer) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, taking `Upgrade: tcp` requests off to `serve`."""

    class UpgradingProtocol(HttpToolsProtocol):
        def _wants_stream(self) -> bool:
            return self._get_upgrade() == UPGRADE_PROTOCOL.encode()

        def _should_upgrade(self) -> bool:
            # True keeps uvicorn from starting the app for this request (`on_headers_complete`).
            return self._wants_stream() or super()._should_upgrade()

        def data_received(self, data: bytes) -> None:
            """uvicorn's, except that an `Upgrade: tcp` request is taken over here."""
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            except httptools.HttpParserUpgrade as exc:
                if self._wants_stream():
                    # The exception carries the offset of the first byte after the headers.
                    self._take_over(data[int(exc.args[0]) if exc.args else len(data) :])
                elif self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()

        def _take_over(self, rest: bytes) -> None:
            self.connections.discard(self)
            url = httptools.parse_url(self.url)
            path = urllib.parse.unquote(url.path.decode("ascii"))
            query = dict(urllib.parse.parse_qsl((url.query or b"").decode("ascii")))
            length = next((v for k, v in self.headers if k == b"content-length"), b"0")
            method = str(self.scope["method"])
            raw = RawConnection(self.server_state, self.transport, skip=int(length or b"0"))
            self.transport.set_protocol(raw)
            if rest:
                raw.data_received(rest)
            task: asyncio.Task[None] = self.loop.create_task(serve(method, path, query, raw))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    return UpgradingProtocol
