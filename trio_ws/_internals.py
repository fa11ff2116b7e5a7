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

:class:`HypercornHandover` and :func:`find_handover` (the data plane's takeover)
    From the app's ``send`` (``WSStream.app_send``): ``WSStream.send`` is
    ``H11Protocol.stream_send`` (``hypercorn.protocol.h11.H11Protocol``; HTTP/1.1 only), whose
    ``__self__.send`` is ``TCPServer.protocol_send``. ``TCPServer.protocol`` is re-read on every
    read (``_read_data`` calls ``self.protocol.handle(RawData(...))`` and ``handle(Closed())``),
    so putting the data plane there before the 101 is written routes every later read to it;
    it must hold the ``ProtocolWrapper`` whose ``protocol`` is that ``H11Protocol``.
    ``TCPServer.stream`` must be a plain ``trio.SocketStream`` (TLS falls back) and
    ``TCPServer.config.read_timeout`` None (Hypercorn's per-read deadline is not reproduced).
    ``WSStream.app_put`` is a bound ``trio.MemorySendChannel.send`` (the app's queue),
    ``WSStream.task_group.spawn(fn)`` starts a task in the connection's task group,
    ``WSStream.state`` (``HANDSHAKE`` before, ``CONNECTED`` after a good accept),
    ``WSStream.closed`` (set True at the takeover: Hypercorn's WebSocket code then ignores the
    connection and its "app finished" send is a no-op), ``WSStream.connection`` and wsproto's
    ``Connection._proto`` (the ``FrameProtocol`` with the negotiated extensions), and trio's
    ``SocketType._sock`` (the stdlib socket, for non-blocking ``send``/``recv``).
    :func:`frame_protocol_idle` reads wsproto's ``FrameProtocol._frame_decoder`` (``header``,
    ``buffer``) and ``FrameProtocol._message_decoder.opcode``: the data plane parses complete
    frames itself only while wsproto holds nothing.

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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import suppress
from typing import Any, cast

import trio
from wsproto.events import CloseConnection

from ._types import Message, Send

try:
    from hypercorn.protocol.events import StreamClosed
    from hypercorn.protocol.h11 import H11Protocol
    from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
    from hypercorn.trio.tcp_server import TCPServer
except ImportError as _exc:  # pragma: no cover - every checked version has all of these
    _IMPORT_PROBLEM = f"Hypercorn's internals moved ({_exc})"
    WSStream = object  # type: ignore[assignment,misc]
else:
    _IMPORT_PROBLEM = ""

__all__ = [
    "SUPPORTED_HYPERCORN",
    "HypercornHandover",
    "ServedWSStream",
    "abort",
    "adopt",
    "app_finished",
    "available",
    "find_handover",
    "hypercorn_version",
    "is_open",
    "load",
    "unsupported",
]

logger = logging.getLogger("trio_ws")

#: Hypercorn versions (major, minor) whose private code the hooks were checked against.
SUPPORTED_HYPERCORN = ((0, 17), (0, 18))
#: The ``WSStream`` methods the hooks override or call.
STREAM_METHODS = ("handle", "_accept", "app_send")
# How many ``__self__``/``send`` hops lead from the app's ``send`` to Hypercorn's TCPServer.
_MAX_HOPS = 4


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
                "trio_ws.serve: %s; the data plane, client close codes, the permessage-deflate "
                "switch and aborting stalled connections are disabled (the drain still works)",
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


class ServedWSStream(WSStream):
    """Hypercorn's ``WSStream``, re-classed per connection by :func:`adopt`.

    Instances are created by Hypercorn as plain ``WSStream`` objects; :func:`adopt` sets
    ``__class__`` before the handshake is accepted, so no client frame is ever handled by the
    plain class.
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
            and self.state not in (ASGIWebsocketState.CLOSED, ASGIWebsocketState.HTTPCLOSED)
        ):
            # The client closed first: report its code and reason, not Hypercorn's 1006.
            self.closed = True
            await self.app_put({"type": "websocket.disconnect", "code": peer[0], "reason": peer[1]})
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

    # Hypercorn assigns the wsproto connection in _accept; wrap it as it is assigned, so that
    # the client's close event is noted on its way to Hypercorn's own event loop.
    @property
    def connection(self) -> Any:
        try:
            return self.__dict__["_trio_ws_connection"]
        except KeyError:
            raise AttributeError("connection") from None

    @connection.setter
    def connection(self, value: Any) -> None:
        self.__dict__["_trio_ws_connection"] = CloseRecorder(value, self)


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


def is_open(stream: Any) -> bool:
    """The adopted stream's handshake was accepted and no side has closed it yet."""
    return stream.state is ASGIWebsocketState.CONNECTED and not stream.closed


async def app_finished(stream: Any) -> None:
    """Hypercorn's own "app returned" step (1011 if still open, 500 before accept)."""
    await stream.app_send(cast(Any, None))


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


class HypercornHandover:
    """One Hypercorn HTTP/1.1 WebSocket connection, as the data plane needs it.

    Implements ``trio_ws._dataplane.Handover`` (see the module docstring for the names used).
    """

    __slots__ = ("forward", "stream", "tcp_server")

    def __init__(self, stream: Any, tcp_server: Any) -> None:
        self.stream = stream
        self.tcp_server = tcp_server
        #: Hypercorn's own ``send`` for this connection.
        self.forward: Callable[[Message], Awaitable[None]] = stream.app_send

    def can_take_over(self) -> bool:
        return not self.stream.closed and self.stream.state is ASGIWebsocketState.HANDSHAKE

    def swap_in(self, plane: Any) -> Any:
        previous = self.tcp_server.protocol
        self.tcp_server.protocol = plane
        return previous

    def swap_out(self, previous: Any) -> None:
        self.tcp_server.protocol = previous

    def take_over(
        self,
    ) -> (
        tuple[
            Any,
            socket.socket,
            Any,
            Callable[[Callable[[], Awaitable[None]]], None],
            Callable[[Any], bool],
        ]
        | None
    ):
        stream = self.stream
        if stream.closed or stream.state is not ASGIWebsocketState.CONNECTED:
            return None
        proto = stream.connection._proto
        # Hypercorn's WebSocket code is done with this connection: it ignores what it is
        # handed from now on, and its "app finished" send is a no-op.
        stream.closed = True
        sock = self.tcp_server.stream.socket
        return sock, sock._sock, proto, stream.task_group.spawn, frame_protocol_idle


def frame_protocol_idle(proto: Any) -> bool:
    """wsproto's ``FrameProtocol`` is between messages with no byte buffered.

    Relies on ``FrameProtocol._frame_decoder`` (``buffer``, a ``Buffer`` with ``__len__``;
    ``header``, None between frames) and ``FrameProtocol._message_decoder.opcode`` (None
    between messages).
    """
    decoder = proto._frame_decoder
    return (
        decoder.header is None and not len(decoder.buffer) and proto._message_decoder.opcode is None
    )


def find_handover(
    send: Send,
) -> tuple[HypercornHandover, trio.MemorySendChannel[Any], int] | str:
    """The handover for the connection whose ASGI ``send`` this is, or why there is none.

    Returns the handover, the app's inbound channel and ``websocket_max_message_size``.
    """
    stream: Any = getattr(send, "__self__", None)
    if not isinstance(stream, WSStream):
        return "the ASGI send callable is not a Hypercorn WSStream method"
    protocol = getattr(getattr(stream, "send", None), "__self__", None)
    if not isinstance(protocol, H11Protocol):
        return "not an HTTP/1.1 connection"
    tcp_server = getattr(getattr(protocol, "send", None), "__self__", None)
    if not isinstance(tcp_server, TCPServer):
        return "the connection is not served by Hypercorn's trio TCPServer"
    transport: Any = tcp_server.stream  # annotated as an SSLStream; plain TCP is a SocketStream
    if type(transport) is not trio.SocketStream:
        return "TLS connection"
    if getattr(tcp_server.protocol, "protocol", None) is not protocol:
        return "Hypercorn's protocol wrapper is not where it was expected"
    config = tcp_server.config
    if config.read_timeout is not None:
        return "config.read_timeout is set"
    inbox = getattr(stream.app_put, "__self__", None)
    if not isinstance(inbox, trio.MemorySendChannel):
        return "the app's inbound queue is not a trio memory channel"
    if not isinstance(getattr(tcp_server.stream.socket, "_sock", None), socket.socket):
        return "trio's socket has no _sock"
    return HypercornHandover(stream, tcp_server), inbox, int(config.websocket_max_message_size)
