"""``serve()``: Hypercorn's trio worker inside a trio program, with a drain on shutdown.

:func:`serve` runs ``hypercorn.trio.serve`` in the caller's nursery and adds what the plain
``hypercorn -k trio`` worker lacks (DESIGN section 3):

* **Drain** (item 8). Each WebSocket connection's app call runs in a cancel scope kept in a
  registry, with ``scope["extensions"]["trio_ws.shutdown"]`` set to a dict. On shutdown that dict
  gets ``close_code``/``reason`` and the scope is cancelled, so every session closes with
  ``drain_close_code`` (1001) before Hypercorn even starts its own graceful shutdown. Only then
  is Hypercorn told to stop; it runs the app's lifespan shutdown after the last connection ends.
* **Stalled readers** (item 7). Hypercorn writes to the socket in a shielded scope with no
  deadline. At the end of the drain window the sockets of connections that are still open are
  closed abortively (``SO_LINGER`` 0, then close), which wakes the shielded write at once.
* **Client close codes** (item 1, hypercorn issue #127). Each connection's ``WSStream`` is
  re-classed into a subclass that remembers the client's close code and reason and reports them
  in ``websocket.disconnect`` (1005 for a close frame without a code, 1006 only when the TCP
  connection dropped).
* **permessage-deflate** can be turned off (Hypercorn always negotiates it when offered).

The last three reach into Hypercorn's internals, so they are enabled only for the Hypercorn
versions whose code they were checked against (0.17.x-0.18.x); on any other version they are
skipped with one log message and :func:`serve` still drains by cancellation.
"""

from __future__ import annotations

import importlib.metadata
import logging
import math
import socket
import struct
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, cast

import hypercorn.trio
import trio
from hypercorn.config import Config
from hypercorn.typing import Framework

from ._session import SHUTDOWN_EXTENSION
from ._state import validate_close
from ._types import ASGIApp, Receive, Scope, Send

__all__ = ["serve"]

logger = logging.getLogger("trio_ws")

#: Hypercorn versions whose ``WSStream`` and ``TCPServer`` the remedies were checked against.
SUPPORTED_HYPERCORN = ((0, 17), (0, 18))
#: The reason sent with ``drain_close_code``.
DRAIN_REASON = "server shutting down"
# After the drain window: how long aborted connections get to unwind.
_ABORT_GRACE = 1.0
# How many ``__self__``/``send`` hops lead from the app's ``send`` to Hypercorn's TCPServer.
_MAX_HOPS = 4
_UNAVAILABLE_BODY = b"server shutting down"


def _hypercorn_version() -> tuple[int, ...]:
    try:
        text = importlib.metadata.version("hypercorn")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - vendored copies
        return ()
    parts: list[int] = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _load_internals() -> tuple[type[Any], type[Any]] | str:
    """Build the ``WSStream`` subclass and find ``TCPServer``, or say why not."""
    version = _hypercorn_version()
    if version[:2] not in SUPPORTED_HYPERCORN:
        shown = ".".join(map(str, version)) or "unknown"
        return f"Hypercorn {shown} is not a checked version (0.17.x-0.18.x)"
    try:
        from hypercorn.protocol.events import StreamClosed
        from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
        from hypercorn.trio.tcp_server import TCPServer
        from wsproto.events import CloseConnection
    except ImportError as exc:  # pragma: no cover - checked versions have all of these
        return f"Hypercorn's internals moved ({exc})"
    for name in ("handle", "_accept", "app_send"):
        if not callable(getattr(WSStream, name, None)):  # pragma: no cover
            return f"hypercorn WSStream has no {name}()"

    closed_states = {ASGIWebsocketState.CLOSED, ASGIWebsocketState.HTTPCLOSED}

    class ServedWSStream(WSStream):
        """Hypercorn's ``WSStream``, re-classed per connection by :func:`serve`.

        Instances are created by Hypercorn as plain ``WSStream`` objects; the app wrapper sets
        ``__class__`` before the handshake is accepted, so no client frame is ever handled by
        the plain class.
        """

        trio_ws_peer_close: tuple[int, str] | None = None
        trio_ws_report_close = True
        trio_ws_deflate = True

        async def handle(self, event: Any) -> None:
            peer = self.trio_ws_peer_close
            if (
                peer is not None
                and isinstance(event, StreamClosed)
                and not self.closed
                and self.app_put is not None
                and self.state not in closed_states
            ):
                # The client closed first: report its code and reason, not Hypercorn's 1006.
                self.closed = True
                await self.app_put(
                    {"type": "websocket.disconnect", "code": peer[0], "reason": peer[1]}
                )
                return
            await super().handle(event)

        async def _accept(self, message: Any) -> None:
            offers = self.handshake.extensions
            if not self.trio_ws_deflate and offers:
                self.handshake.extensions = [
                    offer
                    for offer in offers
                    if offer.split(";", 1)[0].strip().lower() != "permessage-deflate"
                ]
            await super()._accept(message)

        # Hypercorn assigns the wsproto connection in _accept; wrap it as it is assigned, so
        # that the client's close event is noted on its way to Hypercorn's own event loop.
        @property
        def connection(self) -> Any:
            try:
                return self.__dict__["_trio_ws_connection"]
            except KeyError:
                raise AttributeError("connection") from None

        @connection.setter
        def connection(self, value: Any) -> None:
            self.__dict__["_trio_ws_connection"] = _CloseRecorder(value, self)

    class _CloseRecorder:
        """A wsproto connection, passed through, that notes the client's close code and reason."""

        def __init__(self, connection: Any, stream: ServedWSStream) -> None:
            self._connection = connection
            self._stream = stream

        def events(self) -> Any:
            for event in self._connection.events():
                if isinstance(event, CloseConnection) and self._stream.trio_ws_report_close:
                    self._stream.trio_ws_peer_close = (int(event.code), event.reason or "")
                yield event

        def __getattr__(self, name: str) -> Any:
            return getattr(self._connection, name)

    return ServedWSStream, TCPServer


_INTERNALS: tuple[type[Any], type[Any]] | str | None = None
_WARNED = False


def _internals() -> tuple[type[Any], type[Any]] | None:
    """The ``WSStream`` subclass and ``TCPServer``; None (logged once) if unsupported."""
    global _INTERNALS, _WARNED
    if _INTERNALS is None:
        _INTERNALS = _load_internals()
    if isinstance(_INTERNALS, str):
        if not _WARNED:
            _WARNED = True
            logger.warning(
                "trio_ws.serve: %s; client close codes, the permessage-deflate switch and "
                "aborting stalled connections are disabled (the drain still works)",
                _INTERNALS,
            )
        return None
    return _INTERNALS


def _unsupported(what: str) -> None:
    global _WARNED
    if not _WARNED:
        _WARNED = True
        logger.warning("trio_ws.serve: %s; that remedy is skipped for such connections", what)


class _Connection:
    """One registered app call: how to cancel it, what to tell it, how to reach its socket."""

    __slots__ = ("cancel_scope", "notice", "send", "stream")

    def __init__(self, send: Send, notice: dict[str, Any] | None, stream: Any) -> None:
        self.send = send
        self.notice = notice
        self.stream = stream
        self.cancel_scope = trio.CancelScope()


def _tcp_server_of(send: Send, tcp_server_class: type[Any]) -> Any:
    """Follow ``send.__self__.send.__self__...`` from the app's ``send`` to Hypercorn's TCPServer."""
    hop: Any = send
    for _ in range(_MAX_HOPS):
        owner = getattr(hop, "__self__", None)
        if isinstance(owner, tcp_server_class):
            return owner
        hop = getattr(owner, "send", None)
        if hop is None:
            return None
    return None


def _abort(send: Send, tcp_server_class: type[Any]) -> bool:
    """Close the connection's socket abortively (RST); True if a socket was found."""
    server = _tcp_server_of(send, tcp_server_class)
    stream = getattr(server, "stream", None)
    sock = getattr(stream, "socket", None)
    if sock is None:  # TLS: trio.SSLStream over a SocketStream
        sock = getattr(getattr(stream, "transport_stream", None), "socket", None)
    if not isinstance(sock, trio.socket.SocketType):
        _unsupported("a connection's socket could not be found from its ASGI send callable")
        return False
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # Wakes Hypercorn's shielded send_all (and its reader) with ClosedResourceError, which
    # Hypercorn handles as a closed connection.
    sock.close()
    return True


class _Server:
    """The ASGI app :func:`serve` hands to Hypercorn, and the shutdown sequence."""

    def __init__(
        self,
        app: ASGIApp,
        config: Config,
        *,
        drain_close_code: int,
        drain_seconds: float,
        abort_stalled: bool,
        permessage_deflate: bool,
        fix_client_close_codes: bool,
    ) -> None:
        self.app = app
        self.config = config
        self.drain_close_code = drain_close_code
        self.drain_seconds = drain_seconds
        self.abort_stalled = abort_stalled
        self.permessage_deflate = permessage_deflate
        self.fix_client_close_codes = fix_client_close_codes
        self.internals = _internals()
        self.websockets: set[_Connection] = set()
        self.http: set[_Connection] = set()
        self.draining = False
        self.websockets_gone = trio.Event()

    # -- the ASGI side ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "http" and self.internals is not None:
            # Registered only so that a stalled HTTP client can be aborted at the end.
            connection = _Connection(send, None, None)
            self.http.add(connection)
            try:
                await self.app(scope, receive, send)
            finally:
                self.http.discard(connection)
        else:
            await self.app(scope, receive, send)

    def _adopt(self, send: Send) -> Any:
        """Re-class the connection's ``WSStream`` (known Hypercorn only); return it or None."""
        if self.internals is None:
            return None
        stream_class, _ = self.internals
        stream: Any = getattr(send, "__self__", None)
        if stream is None or type(stream) is not stream_class.__base__:
            _unsupported("the ASGI send callable is not a Hypercorn WSStream method")
            return None
        stream.__class__ = stream_class
        if not self.fix_client_close_codes:
            setattr(stream, "trio_ws_report_close", False)  # noqa: B010 - typed as the base
        if not self.permessage_deflate:
            setattr(stream, "trio_ws_deflate", False)  # noqa: B010
        return stream

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.draining:
            await self._refuse(send)
            return
        stream = self._adopt(send)
        notice: dict[str, Any] = {}
        extensions = dict(scope.get("extensions") or {})
        extensions[SHUTDOWN_EXTENSION] = notice
        scope = dict(scope)
        scope["extensions"] = extensions
        connection = _Connection(send, notice, stream)
        self.websockets.add(connection)
        try:
            with connection.cancel_scope:
                await self.app(scope, receive, send)
            if connection.cancel_scope.cancelled_caught and stream is not None:
                await self._close_after_drain(stream, send, notice)
        finally:
            try:
                if stream is not None:
                    # Hypercorn's own "app finished" step (it runs it again after us, as a
                    # no-op), done while still registered: its close frame can stall too.
                    await send(cast(Any, None))
            finally:
                self._ended(connection)

    def _ended(self, connection: _Connection) -> None:
        self.websockets.discard(connection)
        if self.draining and not self.websockets:
            self.websockets_gone.set()

    async def _close_after_drain(self, stream: Any, send: Send, notice: dict[str, Any]) -> None:
        """A plain app (not a session) absorbed the drain: close for it, shielded and time-boxed."""
        from hypercorn.protocol.ws_stream import ASGIWebsocketState

        if stream.state is not ASGIWebsocketState.CONNECTED or stream.closed:
            return  # noqa: ASYNC910 - runs right after a cancellation; nothing to close
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + max(self.drain_seconds, 0.1)
            await send(
                {
                    "type": "websocket.close",
                    "code": notice["close_code"],
                    "reason": notice["reason"],
                }
            )

    async def _refuse(self, send: Send) -> None:
        """A WebSocket handshake that arrives while draining: HTTP 503, the app is not called."""
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(_UNAVAILABLE_BODY)).encode("ascii")),
        ]
        await send({"type": "websocket.http.response.start", "status": 503, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": _UNAVAILABLE_BODY})

    # -- the shutdown side -------------------------------------------------------------------

    def _abort_all(self, connections: set[_Connection]) -> int:
        if self.internals is None or not self.abort_stalled:
            return 0
        _, tcp_server_class = self.internals
        return sum(_abort(connection.send, tcp_server_class) for connection in list(connections))

    async def shutdown(
        self,
        stop_hypercorn: trio.Event,
        hypercorn_done: trio.Event,
        hypercorn_scope: trio.CancelScope,
    ) -> None:
        """Drain, abort what is stalled, then let Hypercorn shut down (bounded throughout)."""
        # 1. Drain: every session closes with drain_close_code; new handshakes get 503.
        self.draining = True
        if self.websockets:
            for connection in list(self.websockets):
                assert connection.notice is not None
                connection.notice.update(close_code=self.drain_close_code, reason=DRAIN_REASON)
                connection.cancel_scope.cancel()
            with trio.move_on_after(self.drain_seconds):
                await self.websockets_gone.wait()
        # 2. Whatever is still open is stuck in a shielded socket write: abort it.
        if self.websockets:
            aborted = self._abort_all(self.websockets)
            if aborted:
                logger.info("trio_ws.serve: aborted %d stalled WebSocket connection(s)", aborted)
                with trio.move_on_after(_ABORT_GRACE):
                    await self.websockets_gone.wait()
        # 3. Hypercorn's own shutdown: listeners stop, HTTP requests get graceful_timeout,
        #    then the lifespan shutdown runs.
        stop_hypercorn.set()
        with trio.move_on_after(self.config.graceful_timeout + _ABORT_GRACE):
            await hypercorn_done.wait()
        if not hypercorn_done.is_set():
            # Past Hypercorn's graceful deadline only stalled writes keep connections alive.
            self._abort_all(self.http | self.websockets)
            with trio.move_on_after(self.config.shutdown_timeout + _ABORT_GRACE):
                await hypercorn_done.wait()
            hypercorn_scope.cancel()


def _make_config(config: Config | None, host: str | None, port: int | None) -> Config:
    if config is not None:
        if host is not None or port is not None:
            raise TypeError("pass host and port, or a config (with config.bind), not both")
        return config
    config = Config()
    host = "127.0.0.1" if host is None else host
    port = 8000 if port is None else port
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = 3.0
    config.accesslog = None
    return config


async def serve(
    app: ASGIApp,
    *,
    host: str | None = None,
    port: int | None = None,
    config: Config | None = None,
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    drain_close_code: int = 1001,
    drain_seconds: float = 2.0,
    abort_stalled: bool = True,
    permessage_deflate: bool = True,
    fix_client_close_codes: bool = True,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an ASGI app with Hypercorn's trio worker until cancelled; drain on the way out.

    Use it with ``nursery.start``, which returns the bound URLs::

        async with trio.open_nursery() as nursery:
            urls = await nursery.start(functools.partial(trio_ws.serve, app, port=0))
            ...
            nursery.cancel_scope.cancel()  # shuts down: drain, then Hypercorn's shutdown

    Shutdown starts when the task running ``serve`` is cancelled (or ``shutdown_trigger``
    returns). It runs shielded and bounded, then the cancellation propagates:

    1. every open WebSocket session is cancelled and closes with ``drain_close_code`` and the
       reason ``"server shutting down"``; new handshakes are refused with HTTP 503;
    2. after at most ``drain_seconds``, the sockets of connections that are still open (clients
       that stopped reading, so Hypercorn's write can never finish) are closed abortively;
    3. Hypercorn shuts down: its listeners stop, HTTP requests get ``config.graceful_timeout``,
       then the app's lifespan shutdown runs.

    Args:
        app: An ASGI 3 application (for example from :func:`trio_ws.websocket_app`).
        host: Interface to bind (default ``127.0.0.1``); not with ``config``.
        port: Port to bind (default 8000; 0 picks a free one); not with ``config``.
        config: A ``hypercorn.Config`` used as is (``bind``, TLS, ``graceful_timeout``...).
            Without one: bind ``host:port``, ``graceful_timeout`` 3 s, no access log.
        shutdown_trigger: Optional ``async`` callable; shutdown starts when it returns.
        drain_close_code: Close code sent to open sessions on shutdown (1001, "going away").
        drain_seconds: How long sessions get to finish their closing handshake before the
            connections still open are aborted.
        abort_stalled: Abort connections still open after the drain (needs a checked Hypercorn
            version, 0.17.x-0.18.x).
        permessage_deflate: Negotiate permessage-deflate when a client offers it (Hypercorn
            always does); False refuses it (checked Hypercorn versions only).
        fix_client_close_codes: Report the client's close code and reason in
            ``websocket.disconnect`` instead of Hypercorn's 1006 (checked versions only).
        task_status: Given by ``nursery.start``; receives the list of bound URLs.

    Raises:
        ValueError: ``drain_close_code`` cannot be sent, or ``drain_seconds`` is negative.
        TypeError: Both ``config`` and ``host``/``port`` were given.
    """
    validate_close(drain_close_code, DRAIN_REASON)
    if not drain_seconds >= 0 or math.isinf(drain_seconds):
        raise ValueError(f"drain_seconds must be a finite number >= 0, not {drain_seconds!r}")
    config = _make_config(config, host, port)
    server = _Server(
        app,
        config,
        drain_close_code=drain_close_code,
        drain_seconds=drain_seconds,
        abort_stalled=abort_stalled,
        permessage_deflate=permessage_deflate,
        fix_client_close_codes=fix_client_close_codes,
    )
    stop_hypercorn = trio.Event()
    hypercorn_done = trio.Event()
    hypercorn_scope = trio.CancelScope()
    waiting = trio.CancelScope()

    async def run_hypercorn(*, task_status: trio.TaskStatus[list[str]]) -> None:
        try:
            with hypercorn_scope:
                await hypercorn.trio.serve(
                    cast(Framework, server),
                    config,
                    shutdown_trigger=stop_hypercorn.wait,
                    task_status=task_status,
                    mode="asgi",
                )
        finally:
            hypercorn_done.set()
            waiting.cancel()  # Hypercorn stopped by itself (max_requests, a crash)

    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(run_hypercorn)
        # From now on an outside cancellation reaches Hypercorn only through shutdown().
        hypercorn_scope.shield = True
        task_status.started(urls)
        try:
            with waiting:
                if shutdown_trigger is None:
                    await trio.sleep_forever()
                else:
                    await shutdown_trigger()
        finally:
            with trio.CancelScope(shield=True):
                await server.shutdown(stop_hypercorn, hypercorn_done, hypercorn_scope)
