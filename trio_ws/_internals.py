"""Every use of Hypercorn's and wsproto's private code, in one place, behind a version gate.

:func:`trio_ws.serve` goes past what Hypercorn's trio worker offers through a few hooks into
Hypercorn's own objects. They rely on names Hypercorn does not document, so they are enabled
only for the versions they were checked against and every name is pinned by a test in
``tests/test_internals.py`` (one test per name: an upgrade that moves one fails that test).

Checked versions: Hypercorn 0.17.x and 0.18.x (0.17.3 and 0.18.0 read line by line; 0.18.0 is
the one the test suite runs), wsproto 1.2-1.3. On any other Hypercorn version :func:`load`
returns the reason, :func:`available` logs it once on the ``trio_ws`` logger, and ``serve`` runs
without the hooks (its drain by cancellation still works).

The hooks and the private names each one relies on:

``ServedWSStream`` (client close codes, the permessage-deflate switch)
    A subclass of ``hypercorn.protocol.ws_stream.WSStream``; :func:`adopt` sets ``__class__``
    of the stream behind the app's ``send`` (``send.__self__``) before the handshake is
    accepted. Relies on: the module ``hypercorn.protocol.ws_stream`` and its ``WSStream``;
    ``WSStream.handle(event)`` (every protocol event, ``StreamClosed`` from
    ``hypercorn.protocol.events`` when the TCP side ends); ``WSStream.app_send`` (the app's
    ``send`` is this bound method); ``WSStream._accept(message)`` (answers the handshake and
    assigns ``self.connection``, a ``wsproto.Connection``, whose ``events()`` Hypercorn's
    ``_handle_events`` iterates); the instance attributes ``closed``, ``app_put``, ``state``
    and ``handshake.extensions`` (a list of offer strings, or None); the enum
    ``ASGIWebsocketState`` with members ``CONNECTED``, ``CLOSED`` and ``HTTPCLOSED``. From
    wsproto only public names: ``wsproto.events.CloseConnection`` (``code``, ``reason``).

:func:`abort` (stalled readers)
    Follows the app's ``send`` to the connection's TCP server: ``WSStream.send`` is
    ``H11Protocol.stream_send``, whose ``__self__.send`` is ``TCPServer.protocol_send``
    (``hypercorn.trio.tcp_server.TCPServer``); ``TCPServer.stream`` is the trio stream (a
    ``trio.SocketStream``, or a ``trio.SSLStream`` whose ``transport_stream`` is one). Closing
    its socket abortively wakes ``TCPServer.protocol_send``'s shielded ``send_all`` with
    ``ClosedResourceError``, which Hypercorn handles as a closed connection.

:func:`is_open` and :func:`app_finished` (closing for a plain app after the drain)
    ``WSStream.state is ASGIWebsocketState.CONNECTED`` and ``WSStream.closed``; ``app_send(None)``
    is Hypercorn's "the app returned" step (it sends 1011 or 500 and ends the stream), which
    Hypercorn's app wrapper calls itself after the app returns and which is a no-op the second
    time.
"""

from __future__ import annotations

import importlib.metadata
import logging
import socket
import struct
import sys
import time
import types
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import suppress
from typing import Any, cast

import h11
import trio
import wsproto.utilities
from wsproto.events import CloseConnection
from wsproto.extensions import PerMessageDeflate

from ._types import ASGIApp, Scope, Send

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

try:
    import hypercorn.trio.run
    from hypercorn.app_wrappers import ASGIWrapper
    from hypercorn.protocol.events import Body, Data, StreamClosed
    from hypercorn.protocol.h11 import H11Protocol
    from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
    from hypercorn.trio.tcp_server import TCPServer
except ImportError as _exc:  # pragma: no cover - every checked version has all of these
    _IMPORT_PROBLEM = f"Hypercorn's internals moved ({_exc})"
    WSStream = TCPServer = object  # type: ignore[assignment,misc]
else:
    _IMPORT_PROBLEM = ""

__all__ = [
    "SUPPORTED_HYPERCORN",
    "ServedTCPServer",
    "ServedWSStream",
    "Throttle",
    "abort",
    "adopt",
    "app_finished",
    "available",
    "hypercorn_version",
    "is_open",
    "load",
    "run_worker",
    "screen",
    "unsupported",
]

logger = logging.getLogger("trio_ws")

#: Hypercorn versions (major, minor) whose private code the hooks were checked against.
SUPPORTED_HYPERCORN = ((0, 17), (0, 18))
#: The ``WSStream`` methods the hooks override or call.
STREAM_METHODS = ("handle", "_accept", "app_send", "_send_error_response")
#: Request headers whose repeated occurrences form one list (RFC 6455 section 11.3).
LIST_HEADERS = (b"sec-websocket-protocol", b"sec-websocket-extensions")
# How many ``__self__``/``send`` hops lead from the app's ``send`` to Hypercorn's TCPServer.
_MAX_HOPS = 4
# How long a screened-out connection waits for an answer Hypercorn is still writing.
_ANSWER_WAIT = 1.0


def hypercorn_version() -> tuple[int, ...]:
    """The installed Hypercorn's (major, minor), or ``()`` when it cannot be read."""
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


def load() -> str:
    """Check the gate: ``""`` when the hooks may be used, else the reason they may not."""
    version = hypercorn_version()
    if version[:2] not in SUPPORTED_HYPERCORN:
        shown = ".".join(map(str, version)) or "unknown"
        return f"Hypercorn {shown} is not a checked version (0.17.x-0.18.x)"
    if _IMPORT_PROBLEM:  # pragma: no cover - checked versions have all of these
        return _IMPORT_PROBLEM
    for name in STREAM_METHODS:
        if not callable(getattr(WSStream, name, None)):  # pragma: no cover
            return f"hypercorn WSStream has no {name}()"
    worker = getattr(hypercorn.trio.run, "worker_serve", None)
    if worker is None or "TCPServer" not in worker.__code__.co_names:  # pragma: no cover
        return "hypercorn.trio.run.worker_serve no longer creates TCPServer"
    return ""


_PROBLEM: str | None = None
_WARNED = False


def available() -> bool:
    """True when the hooks may be used; otherwise logs the reason (once per process)."""
    global _PROBLEM, _WARNED
    if _PROBLEM is None:
        _PROBLEM = load()
    if _PROBLEM:
        if not _WARNED:
            _WARNED = True
            logger.warning(
                "trio_ws.serve: %s; serving with plain hypercorn.trio.serve: client close codes, "
                "the permessage-deflate switch, the handshake screening, the per-connection "
                "firewall and aborting stalled connections are disabled (the drain still works)",
                _PROBLEM,
            )
        return False
    return True


def unsupported(what: str) -> None:
    """One hook could not find what it expected on one connection: log once, skip it."""
    global _WARNED
    if not _WARNED:
        _WARNED = True
        logger.warning("trio_ws.serve: %s; that remedy is skipped for such connections", what)


class Throttle:
    """Log lines caused by clients, at most one per kind per ``interval`` seconds.

    A scan that sends thousands of bad handshakes produces one line per kind and interval, each
    saying how many like it were held back.
    """

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return
        self._last[kind] = now
        held = self._held.pop(kind, 0)
        more = f" ({held} more like this not logged)" if held else ""
        logger.warning("trio_ws.serve: " + message + "%s", *args, more)


#: The one throttle for lines that a client's behaviour causes.
throttle = Throttle()


def _peer(scope: Any) -> str:
    client = scope.get("client") if isinstance(scope, dict) else None
    return f"{client[0]}:{client[1]}" if client else "a client"


# -- each connection's task: a firewall --------------------------------------------------------


class ServedTCPServer(TCPServer):
    """Hypercorn's per-connection ``TCPServer``; an error escaping it ends that connection only.

    Plain Hypercorn lets any exception out of a connection's task (h11's ``LocalProtocolError``
    for an upgrade request with a body, ``UnicodeDecodeError`` for a non-ASCII
    ``Sec-WebSocket-Protocol``...) end the whole server. Here it is logged (throttled) and the
    connection, already closed by ``TCPServer.run``'s own cleanup, is gone; cancellation still
    propagates.
    """

    async def run(self) -> None:
        try:
            await super().run()
        except BaseExceptionGroup as group:
            failures, rest = group.split(Exception)
            if failures is not None:
                self._note(failures)
            if rest is not None:
                raise rest from None
        except Exception as exc:
            self._note(exc)

    def _note(self, exc: BaseException) -> None:
        while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
            exc = exc.exceptions[0]
        name = type(exc).__name__
        throttle.warning(
            "connection-failed:" + name,
            "a connection failed inside Hypercorn and was closed (the server keeps serving): %s: %s",
            name,
            exc,
        )
        logger.debug("trio_ws.serve: the failed connection's traceback", exc_info=exc)


def _worker_serve() -> Callable[..., Awaitable[None]]:
    """Hypercorn's own ``worker_serve``, its name ``TCPServer`` bound to :class:`ServedTCPServer`.

    A new function object over the same code, with a copy of its module's globals: nothing in
    Hypercorn is changed, other servers in the process are untouched.
    """
    original = hypercorn.trio.run.worker_serve
    scope = dict(original.__globals__)
    scope["TCPServer"] = ServedTCPServer
    clone = types.FunctionType(
        original.__code__, scope, original.__name__, original.__defaults__, original.__closure__
    )
    clone.__kwdefaults__ = original.__kwdefaults__
    return cast(Callable[..., Awaitable[None]], clone)


async def run_worker(
    app: ASGIApp,
    config: Any,
    *,
    shutdown_trigger: Callable[..., Awaitable[object]],
    task_status: Any,
) -> None:
    """Run Hypercorn's trio worker (as ``hypercorn.trio.serve`` does) with the firewall."""
    await _worker_serve()(
        ASGIWrapper(cast(Any, app)),
        config,
        shutdown_trigger=shutdown_trigger,
        task_status=task_status,
    )


# -- each WebSocket stream ---------------------------------------------------------------------


def _answer_started(stream: Any) -> bool:
    """HTTP/1.1 only: Hypercorn already began an HTTP answer to this upgrade request."""
    protocol = getattr(stream.send, "__self__", None)
    if not isinstance(protocol, H11Protocol):
        return False
    h11_connection = getattr(protocol.connection, "h11_connection", None)
    if h11_connection is None:  # pragma: no cover - an upgrade always has the H11WSConnection
        return False
    return h11_connection.our_state is not h11.SEND_RESPONSE


def _valid_offers(offers: Iterable[str], deflate: bool) -> tuple[list[str], list[str]]:
    """Keep the first acceptable permessage-deflate offer (RFC 7692 section 5); list the rest."""
    kept: list[str] = []
    declined: list[str] = []
    have_deflate = False
    for offer in offers:
        if offer.split(";", 1)[0].strip().lower() != "permessage-deflate":
            kept.append(offer)
            continue
        if not deflate or have_deflate:
            continue
        try:
            accepted = PerMessageDeflate().accept(offer)
        except ValueError:
            accepted = None
        if accepted is None:
            declined.append(offer)  # RFC 7692 section 5: decline an offer with invalid values
        else:
            kept.append(offer)
            have_deflate = True
    return kept, declined


class ServedWSStream(WSStream):
    """Hypercorn's ``WSStream``, re-classed per connection by :func:`adopt`.

    Instances are created by Hypercorn as plain ``WSStream`` objects; :func:`adopt` sets
    ``__class__`` before the app runs, so no client frame is ever handled by the plain class
    after the handshake is answered.
    """

    trio_ws_peer_close: tuple[int, str] | None = None
    trio_ws_report_close = True
    trio_ws_deflate = True
    trio_ws_told_app = False

    async def handle(self, event: Any) -> None:
        if isinstance(event, StreamClosed):
            if (
                not self.closed
                and self.app_put is not None
                and self.state
                not in (
                    ASGIWebsocketState.CLOSED,
                    ASGIWebsocketState.HTTPCLOSED,
                )
            ):
                peer = self.trio_ws_peer_close
                if peer is not None:
                    # The client closed first: report its code and reason, not Hypercorn's 1006.
                    self.closed = True
                    self.trio_ws_told_app = True
                    await self.app_put(
                        {"type": "websocket.disconnect", "code": peer[0], "reason": peer[1]}
                    )
                    return
                self.trio_ws_told_app = True
        elif isinstance(event, (Body, Data)) and not self.handshake.accepted and not self.closed:
            # Bytes after the upgrade request, before it was answered (a body, an early
            # frame, garbage): RFC 6455 section 4.1 lets a client send only after the 101.
            await self.trio_ws_reject("bytes arrived after the upgrade request, before its answer")
            return
        await super().handle(event)

    async def app_send(self, message: Any) -> None:
        if (
            message is not None
            and self.state is ASGIWebsocketState.HANDSHAKE
            and not self.closed
            and _answer_started(self)
        ):
            # Hypercorn is answering early bytes with its own 400: this handshake is over.
            await self.trio_ws_tell_app()
            return
        try:
            await super().app_send(message)
        except (h11.LocalProtocolError, wsproto.utilities.LocalProtocolError) as exc:
            # The connection's HTTP state no longer allows this message: the connection is over.
            throttle.warning(
                "state:" + type(exc).__name__,
                "closed the connection from %s: %s",
                _peer(getattr(self, "scope", None)),
                exc,
            )
            await self.trio_ws_reject("")

    async def _accept(self, message: Any) -> None:
        offers = self.handshake.extensions
        if offers:
            kept, declined = _valid_offers(offers, self.trio_ws_deflate)
            if declined:
                throttle.warning(
                    "offer",
                    "declined a malformed permessage-deflate offer from %s (RFC 7692 5): %r",
                    _peer(self.scope),
                    declined[0],
                )
            self.handshake.extensions = kept
        try:
            await super()._accept(message)
        except Exception:
            if "_trio_ws_connection" not in self.__dict__:
                # Nothing was sent (an unoffered subprotocol, a bad header): the handshake is
                # still open, so the app's exit answers it with HTTP 500 instead of Hypercorn
                # later failing on a connection that was never made.
                self.state = ASGIWebsocketState.HANDSHAKE
            raise

    # Hypercorn assigns the wsproto connection in _accept; wrap it as it is assigned, so that
    # the client's close event is noted on its way to Hypercorn's own event loop.
    @property
    def connection(self) -> Any:
        try:
            return self.__dict__["_trio_ws_connection"]
        except KeyError:
            raise AttributeError(
                "connection (the WebSocket handshake was never accepted on this stream)"
            ) from None

    @connection.setter
    def connection(self, value: Any) -> None:
        self.__dict__["_trio_ws_connection"] = CloseRecorder(value, self)

    async def trio_ws_tell_app(self) -> None:
        """The app (if it runs) learns that the connection is gone; once."""
        if not self.trio_ws_told_app and self.app_put is not None:
            self.trio_ws_told_app = True
            await self.app_put({"type": "websocket.disconnect", "code": 1006, "reason": ""})

    async def trio_ws_reject(self, reason: str, status: int = 400) -> None:
        """Answer the handshake with ``status`` if it is still open, close, tell the app."""
        if self.closed:
            return
        self.closed = True  # from here on Hypercorn drops the app's messages
        if reason:
            throttle.warning(
                "reject:" + reason, "HTTP %d to %s: %s", status, _peer(self.scope), reason
            )
        if self.state is ASGIWebsocketState.HANDSHAKE and not _answer_started(self):
            with suppress(h11.LocalProtocolError):
                await self._send_error_response(status)
        await self.send(StreamClosed(stream_id=self.stream_id))
        await self.trio_ws_tell_app()


class CloseRecorder:
    """A wsproto connection, passed through, that notes the client's close code and reason."""

    def __init__(self, connection: Any, stream: ServedWSStream) -> None:
        self._connection = connection
        self._stream = stream

    def events(self) -> Iterator[Any]:
        for event in self._connection.events():
            if isinstance(event, CloseConnection) and self._stream.trio_ws_report_close:
                self._stream.trio_ws_peer_close = (int(event.code), event.reason or "")
            yield event

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def adopt(send: Send, *, report_close: bool, deflate: bool) -> Any:
    """Re-class the ``WSStream`` behind the app's ``send``; return it, or None (logged once)."""
    stream: Any = getattr(send, "__self__", None)
    if stream is None or type(stream) is not WSStream:
        unsupported("the ASGI send callable is not a Hypercorn WSStream method")
        return None
    stream.__class__ = ServedWSStream
    served = cast(ServedWSStream, stream)
    if not report_close:
        served.trio_ws_report_close = False
    if not deflate:
        served.trio_ws_deflate = False
    return served


def _combined(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str] | None:
    values = [value for key, value in headers if key.lower() == name]
    if not values:
        return None
    return [
        token.strip()
        for value in values
        for token in value.decode("latin-1").split(",")
        if token.strip()
    ]


async def screen(stream: Any, scope: Scope) -> str:
    """Before the app runs: ``""`` if it may, else why not (the client was answered).

    Also reads the repeated list-valued headers as one list (RFC 6455 section 11.3.4) into
    ``scope["subprotocols"]`` and into Hypercorn's handshake, which kept only the last one.
    """
    if stream.closed or _answer_started(stream):
        # Bytes after the request reached Hypercorn before the app ran: it answers 400 by
        # itself. Wait for that answer (bounded; Hypercorn sets no event, and this race is
        # rare), then end the connection, which Hypercorn would leave open.
        with trio.move_on_after(_ANSWER_WAIT):
            while not stream.closed:  # noqa: ASYNC110
                await trio.sleep(0.005)
        reason = "bytes arrived after the upgrade request, before its answer"
        throttle.warning("reject:" + reason, "HTTP 400 to %s: %s", _peer(scope), reason)
        await stream.send(StreamClosed(stream_id=stream.stream_id))
        return reason
    headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
    for name, _ in headers:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            reason = f"the upgrade request has a body ({name.decode('latin-1').lower()})"
            await stream.trio_ws_reject(reason)
            return reason
    subprotocols = _combined(headers, b"sec-websocket-protocol")
    if subprotocols is not None:
        scope["subprotocols"] = subprotocols
        stream.handshake.subprotocols = subprotocols
    extensions = _combined(headers, b"sec-websocket-extensions")
    if extensions is not None:
        stream.handshake.extensions = extensions
    return ""


def is_open(stream: Any) -> bool:
    """The adopted stream's handshake was accepted and no side has closed it yet."""
    return stream.state is ASGIWebsocketState.CONNECTED and not stream.closed


async def app_finished(stream: Any) -> None:
    """Hypercorn's own "app returned" step (1011 if still open, 500 before accept)."""
    await stream.app_send(cast(Any, None))


# -- reaching a connection's socket ----------------------------------------------------------


def _tcp_server_of(send: Send) -> Any:
    """Follow ``send.__self__.send.__self__...`` from the app's ``send`` to the TCPServer."""
    hop: Any = send
    for _ in range(_MAX_HOPS):
        owner = getattr(hop, "__self__", None)
        if isinstance(owner, TCPServer):
            return owner
        hop = getattr(owner, "send", None)
        if hop is None:
            return None
    return None


def abort(send: Send) -> bool:
    """Close the connection's socket abortively (RST); True if a socket was found."""
    server = _tcp_server_of(send)
    stream = getattr(server, "stream", None)
    sock = getattr(stream, "socket", None)
    if sock is None:  # TLS: trio.SSLStream over a SocketStream
        sock = getattr(getattr(stream, "transport_stream", None), "socket", None)
    if not isinstance(sock, trio.socket.SocketType):
        unsupported("a connection's socket could not be found from its ASGI send callable")
        return False
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # Wakes Hypercorn's shielded send_all (and its reader) with ClosedResourceError, which
    # Hypercorn handles as a closed connection.
    sock.close()
    return True
