"""Run ASGI apps under Hypercorn's trio worker, in memory or on a real socket.

Three async context managers:

``hypercorn_memory(app, config=None)``
    Yields ``connect``. Each ``await connect(path="/", ...)`` runs one Hypercorn trio
    ``TCPServer`` over an in-memory stream pair (no sockets, deterministic, works with the
    ``autojump_clock`` fixture) and returns a :class:`WSClient`, a small wsproto client that
    has already done the opening handshake (accepted or rejected). Leaving the block aborts
    every client stream and cancels the servers. An exception raised by a ``TCPServer`` task
    propagates out of the block (inside trio's exception groups).

``hypercorn_server(app, config=None, *, graceful_timeout=1.0, shutdown=None)``
    The public :func:`trio_ws.testing.open_server` (real ``hypercorn.trio.serve`` on an ephemeral
    port), with the suite's 1 s grace period; yields ``"ws://127.0.0.1:PORT"``. Leaving the block
    triggers Hypercorn's graceful shutdown (or pass ``shutdown``, a ``trio.Event``, to trigger it
    earlier yourself) and waits, bounded, for ``serve`` to return.

``ws_connect(url, *, subprotocols=(), headers=(), extensions=())``
    Yields a :class:`WSClient` connected over TCP (to a ``hypercorn_server`` URL), after the
    handshake; aborts its socket on exit.

Every wait is bounded by ``trio.fail_after``: ``DEFAULT_TIMEOUT`` seconds, or for a client's calls
its ``wait_limit`` attribute (set it to wait longer under the autojump clock).
"""

from __future__ import annotations

import socket
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import trio
import trio.testing
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from trio_websocket import ConnectionRejected, WebSocketConnection, wrap_client_stream
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension
from wsproto.utilities import LocalProtocolError

from trio_ws.testing import open_server

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "DEFAULT_TIMEOUT",
    "Connect",
    "Rejection",
    "WSClient",
    "hypercorn_memory",
    "hypercorn_server",
    "ws_connect",
]

DEFAULT_TIMEOUT = 5.0
"""Seconds any single harness wait may take before ``trio.TooSlowError``."""

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
"""Any ASGI 3 app, ``app(scope, receive, send)`` (typed loosely so probe apps need no casts)."""
StreamPair = Callable[[], tuple[trio.StapledStream[Any, Any], trio.StapledStream[Any, Any]]]
Headers = Iterable[tuple[bytes | str, bytes | str]]

_MAX_RECV = 65536


class _FakeSocket:
    """What ``TCPServer.run`` asks of ``stream.socket``: a family and two addresses."""

    family = socket.AF_INET

    def getpeername(self) -> tuple[str, int]:
        return ("127.0.0.1", 50000)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 8000)


@dataclass(frozen=True)
class Rejection:
    """The HTTP response of a refused handshake."""

    status_code: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass(eq=False)
class WSClient:
    """A wsproto client over one trio stream (in-memory or TCP) to Hypercorn.

    After the handshake (``connect`` of :func:`hypercorn_memory`, or :func:`ws_connect`),
    exactly one of ``accepted`` (the server's ``AcceptConnection``: ``.subprotocol``,
    ``.extensions``) and ``rejection`` is set.

    ``server_finished`` (in memory only, else ``None``) is set when this connection's
    ``TCPServer.run`` task has returned.

    ``receive_event`` answers a close frame from the server with the matching close frame,
    as a well-behaved client does; it returns the server's ``CloseConnection`` all the same.
    When the server drops (or resets) the stream without a close frame it returns
    ``CloseConnection(code=1006)``; after that (or after a completed close) it raises
    ``trio.EndOfChannel``.

    Each call fails with ``trio.TooSlowError`` after ``wait_limit`` seconds.
    """

    stream: trio.abc.HalfCloseableStream
    server_finished: trio.Event | None = None
    accepted: AcceptConnection | None = None
    rejection: Rejection | None = None
    wait_limit: float = DEFAULT_TIMEOUT
    _ws: WSConnection = field(default_factory=lambda: WSConnection(ConnectionType.CLIENT))
    _pending: deque[Event] = field(default_factory=deque)
    _eof: bool = False

    async def send_text(self, text: str) -> None:
        await self.send_event(TextMessage(data=text))

    async def send_bytes(self, data: bytes) -> None:
        await self.send_event(BytesMessage(data=data))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (the server's reply is read by ``receive_event``)."""
        await self.send_event(CloseConnection(code=code, reason=reason))

    async def send_event(self, event: Event) -> None:
        """Encode any wsproto event and write it."""
        data = self._ws.send(event)
        with trio.fail_after(self.wait_limit):
            await self.stream.send_all(data)

    async def receive_event(self) -> Event:
        """Return the next wsproto event from the server."""
        with trio.fail_after(self.wait_limit):
            await trio.lowlevel.checkpoint()  # a checkpoint even when an event is buffered
            self._pending.extend(self._ws.events())
            while not self._pending:
                if self._eof:
                    raise trio.EndOfChannel("the server closed the connection")
                try:
                    data = await self.stream.receive_some(_MAX_RECV)
                except trio.BrokenResourceError:  # a reset counts as the end of the stream
                    data = b""
                self._feed(bytes(data))
                self._pending.extend(self._ws.events())
            event = self._pending.popleft()
            if (
                isinstance(event, CloseConnection)
                and self._ws.state is ConnectionState.REMOTE_CLOSING
            ):
                with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self.stream.send_all(self._ws.send(event.response()))
            return event

    async def abort(self) -> None:
        """Drop the connection without a close frame (like a lost TCP connection)."""
        await trio.aclose_forcefully(self.stream)

    def _feed(self, data: bytes) -> None:
        if data:
            self._ws.receive_data(data)
            return
        self._eof = True
        if self._ws.connection is None:
            raise trio.BrokenResourceError("the server closed the stream during the handshake")
        if self._ws.state is not ConnectionState.CLOSED:
            self._ws.receive_data(None)

    async def _handshake(self, request: Request) -> None:
        with trio.fail_after(self.wait_limit):
            await self.stream.send_all(self._ws.send(request))
            rejected: RejectConnection | None = None
            body = bytearray()
            while True:
                event = await self.receive_event()
                if isinstance(event, AcceptConnection):
                    self.accepted = event
                    return
                if isinstance(event, RejectConnection):
                    rejected = event
                elif isinstance(event, RejectData):
                    body += event.data
                else:
                    raise LocalProtocolError(f"unexpected event during the handshake: {event!r}")
                if rejected is not None and (
                    not rejected.has_body or (isinstance(event, RejectData) and event.body_finished)
                ):
                    self.rejection = Rejection(
                        rejected.status_code, list(rejected.headers), bytes(body)
                    )
                    return


class Connect(Protocol):
    """The type of the callable :func:`hypercorn_memory` yields."""

    async def __call__(
        self,
        path: str = "/",
        *,
        subprotocols: Iterable[str] = (),
        headers: Headers = (),
        extensions: Iterable[Extension] = (),
        stream_pair: StreamPair = trio.testing.memory_stream_pair,
    ) -> WSClient:
        """Open one connection and do the opening handshake.

        ``stream_pair`` makes the pair of streams; ``trio.testing.lockstep_stream_pair`` makes
        every server write wait until the client reads it (a client that stops reading then
        stalls the server's writes).
        """
        ...


def _request(
    host: str,
    path: str,
    subprotocols: Iterable[str],
    headers: Headers,
    extensions: Iterable[Extension],
) -> Request:
    return Request(
        host=host,
        target=path,
        subprotocols=list(subprotocols),
        extensions=list(extensions),
        extra_headers=list(headers),  # type: ignore[arg-type]
    )


async def _run_tcp_server(server: TCPServer, finished: trio.Event) -> None:
    try:
        await server.run()
    finally:
        finished.set()


@asynccontextmanager
async def hypercorn_memory(app: ASGIApp, config: Config | None = None) -> AsyncIterator[Connect]:
    """Serve ``app`` with Hypercorn's trio ``TCPServer`` over in-memory streams; yield ``connect``."""
    config = Config() if config is None else config
    wrapped = ASGIWrapper(app)
    context = WorkerContext(None)
    clients: list[WSClient] = []

    async with trio.open_nursery() as nursery:

        async def connect(
            path: str = "/",
            *,
            subprotocols: Iterable[str] = (),
            headers: Headers = (),
            extensions: Iterable[Extension] = (),
            stream_pair: StreamPair = trio.testing.memory_stream_pair,
        ) -> WSClient:
            client_stream, server_stream = stream_pair()
            server_stream.socket = _FakeSocket()  # type: ignore[attr-defined]
            server = TCPServer(wrapped, config, context, {}, server_stream)  # type: ignore[arg-type]
            finished = trio.Event()
            client = WSClient(client_stream, finished)
            clients.append(client)
            nursery.start_soon(_run_tcp_server, server, finished)
            request = _request("hypercorn.test", path, subprotocols, headers, extensions)
            await client._handshake(request)
            return client

        try:
            yield connect
        finally:
            # Aborting the client streams first wakes any shielded server write on them.
            for client in clients:
                await trio.aclose_forcefully(client.stream)
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def hypercorn_server(
    app: ASGIApp,
    config: Config | None = None,
    *,
    graceful_timeout: float = 1.0,
    shutdown: trio.Event | None = None,
) -> AsyncIterator[str]:
    """:func:`trio_ws.testing.open_server` with a 1 s ``graceful_timeout``; yield its ``ws_url``.

    The suite serves through the public helper, so the helper users get is the one the project
    trusts; this only keeps the suite's short grace period and its ``shutdown`` event (set it to
    start Hypercorn's graceful shutdown inside the block).
    """
    config = Config() if config is None else config
    config.graceful_timeout = graceful_timeout
    trigger = None if shutdown is None else shutdown.wait
    async with open_server(
        cast(Any, app), config=config, shutdown_trigger=trigger, wait_limit=DEFAULT_TIMEOUT
    ) as server:
        yield server.ws_url


@asynccontextmanager
async def ws_connect(
    url: str,
    *,
    subprotocols: Iterable[str] = (),
    headers: Headers = (),
    extensions: Iterable[Extension] = (),
) -> AsyncIterator[WSClient]:
    """Connect a :class:`WSClient` over TCP to ``ws://host:port[/path]``; abort it on exit.

    Unlike trio-websocket 0.12 (which leaves its socket open when the server drops the
    connection without a close frame), this never leaks the socket.
    """
    authority, _, path = url.removeprefix("ws://").partition("/")
    host, _, port = authority.rpartition(":")
    with trio.fail_after(DEFAULT_TIMEOUT):
        stream = await trio.open_tcp_stream(host, int(port))
    client = WSClient(stream)
    try:
        await client._handshake(_request(authority, "/" + path, subprotocols, headers, extensions))
        yield client
    finally:
        await trio.aclose_forcefully(stream)


@dataclass
class Rejected(Exception):
    """The server refused a client's handshake with this HTTP response."""

    status: int
    body: bytes = b""


@asynccontextmanager
async def trio_websocket_client(
    url: str, headers: list[tuple[bytes, bytes]] | None = None
) -> AsyncIterator[WebSocketConnection]:
    """A trio-websocket client connection on a TCP stream the test owns and always closes.

    Not ``open_websocket_url``: trio-websocket 0.12 never closes its socket when the server
    closes first (its reader waits for the server's TCP close, then just stops, and ``aclose``
    returns early because the connection is already closed), and the leaked socket's
    ``ResourceWarning`` would fail whichever later test is running when it is collected.

    Raises:
        Rejected: The server refused the handshake (trio-websocket's ``ConnectionRejected``).
    """
    authority, _, path = url.removeprefix("ws://").partition("/")
    host, _, port = authority.rpartition(":")
    with trio.fail_after(DEFAULT_TIMEOUT):
        stream = await trio.open_tcp_stream(host, int(port))
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(DEFAULT_TIMEOUT):
                ws = await wrap_client_stream(
                    nursery, stream, authority, "/" + path, extra_headers=headers
                )
            try:
                yield ws
            finally:
                with trio.fail_after(DEFAULT_TIMEOUT):
                    await ws.aclose()
    except BaseExceptionGroup as group:  # the reader task raised
        rejected, rest = group.split(ConnectionRejected)
        if rejected is None or rest is not None:
            raise
        leaf = rejected.exceptions[0]
        assert isinstance(leaf, ConnectionRejected)
        raise Rejected(leaf.status_code, leaf.body or b"") from None
    finally:
        await trio.aclose_forcefully(stream)
