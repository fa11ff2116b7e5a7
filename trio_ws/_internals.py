"""Every use of Hypercorn's and wsproto's private code, in one place, behind a version gate.

:func:`trio_ws.serve` goes past what Hypercorn's trio worker offers through a few hooks into
Hypercorn's own objects. They rely on names Hypercorn does not document, so they are enabled
only for the versions they were checked against, and every name is pinned by a test in
``tests/test_internals.py`` (one test per name: an upgrade that moves one fails that test).
No Hypercorn code is copied: where a hook needs Hypercorn to build one of our subclasses, it
calls Hypercorn's own function with one global name rebound (:func:`rebound`: the same code
object, a copy of its module's globals), so Hypercorn itself and other servers in the process
are untouched.

Checked versions: Hypercorn 0.17.x and 0.18.x (0.17.3 and 0.18.0 read line by line; 0.18.0 is
the one the test suite runs), wsproto 1.2-1.3, h11 0.14-0.16. On any other Hypercorn version
:func:`load` returns the reason, :func:`available` logs it once on the ``trio_ws`` logger, and
``serve`` runs plain ``hypercorn.trio.serve`` without any hook (its drain by cancellation still
works).

The hooks and the private names each relies on:

:func:`run_worker` and :class:`ServedTCPServer` (the per-connection firewall)
    ``hypercorn.trio.run.worker_serve(app, config, *, shutdown_trigger, task_status)`` (what
    ``hypercorn.trio.serve`` runs), called with its global ``TCPServer`` rebound, and
    ``hypercorn.app_wrappers.ASGIWrapper``. ``hypercorn.trio.tcp_server.TCPServer.run`` (the
    connection's task; closes the stream in its ``finally``), called with its global
    ``ProtocolWrapper`` rebound. ``hypercorn.protocol.ProtocolWrapper`` and its attribute
    ``protocol`` (an ``H11Protocol`` for HTTP/1.1), whose ``__init__`` and ``handle`` are
    called with their global ``H2Protocol`` rebound. ``TCPServer._read_data`` (returns once
    the peer is gone and Hypercorn has handled ``Closed``), ``TCPServer.idle_task.stop()``
    (cancels the keep-alive timer, a task in the connection's task group) and
    ``TCPServer.protocol_send(event)`` (``Updated`` events from ``hypercorn.events`` start and
    stop the timer).

:class:`ServedH2Protocol` (sends end with the connection)
    A subclass of ``hypercorn.protocol.h2.H2Protocol``: ``handle(Closed())`` sets ``closed``,
    ``stream_buffers`` maps stream ids to ``StreamBuffer`` objects whose ``close()`` wakes a
    ``drain()`` and a ``push()`` that waits for room, and ``stream_send(event)`` takes the
    events ``Body``, ``Data``, ``EndBody``, ``EndData`` and ``Trailers`` (which wait on those
    buffers) from ``hypercorn.protocol.events``; ``Closed`` is ``hypercorn.events.Closed``.

:class:`ServedH11Protocol` (WebSocket streams born :class:`ServedWSStream`)
    ``hypercorn.protocol.h11.H11Protocol._create_stream``, called with its global ``WSStream``
    rebound. After an upgrade, ``H11Protocol.connection`` is an ``H11WSConnection`` whose
    ``h11_connection`` (an ``h11.Connection``; ``our_state`` is ``h11.SEND_RESPONSE`` until an
    answer starts) and ``buffer`` (bytes that came after the request) are read.

:class:`ServedWSStream` (handshake screening, client close codes, the deflate switch)
    A subclass of ``hypercorn.protocol.ws_stream.WSStream``. Relies on ``WSStream.handle(event)``
    with the events ``Request`` (a frozen dataclass with ``headers``), ``Body``, ``Data`` and
    ``StreamClosed`` from ``hypercorn.protocol.events``; ``WSStream.app_send`` (the app's
    ``send`` is this bound method); ``WSStream._accept(message)`` (answers the handshake, sets
    ``state`` to ``CONNECTED`` *before* it can fail, and assigns ``self.connection``, a
    ``wsproto.Connection`` whose ``events()`` Hypercorn iterates);
    ``WSStream._send_error_response(status)``; the attributes ``closed``, ``app_put``,
    ``state``, ``scope``, ``send``, ``stream_id`` and ``handshake`` (``accepted``,
    ``subprotocols``, ``extensions``: lists of strings or None); the enum
    ``ASGIWebsocketState`` with ``HANDSHAKE``, ``CONNECTED``, ``CLOSED`` and ``HTTPCLOSED``;
    ``send(StreamClosed(...))`` ending the HTTP/1.1 connection. From wsproto only public
    names: ``CloseConnection`` (``code``, ``reason``) and ``PerMessageDeflate.accept(offer)``.

:func:`abort` (stalled readers)
    Follows the app's ``send`` to the connection's TCP server: ``WSStream.send`` is
    ``H11Protocol.stream_send``, whose ``__self__.send`` is ``TCPServer.protocol_send``;
    ``TCPServer.stream`` is the trio stream (a ``trio.SocketStream``, or a ``trio.SSLStream``
    whose ``transport_stream`` is one). Closing its socket abortively wakes
    ``TCPServer.protocol_send``'s shielded ``send_all`` with ``ClosedResourceError``, which
    Hypercorn handles as a closed connection.

:class:`HypercornHandover` and :func:`find_handover` (the data plane's takeover)
    From the app's ``send`` (``WSStream.app_send``): ``WSStream.send`` is
    ``H11Protocol.stream_send`` (``hypercorn.protocol.h11.H11Protocol``; HTTP/1.1 only), whose
    ``__self__.send`` is ``TCPServer.protocol_send``. ``TCPServer.protocol`` is re-read on every
    read (``_read_data`` calls ``self.protocol.handle(RawData(...))`` and ``handle(Closed())``),
    so putting the data plane there before the 101 is written routes every later read to it;
    it must hold the ``ProtocolWrapper`` whose ``protocol`` is that ``H11Protocol``.
    ``TCPServer.stream`` must be a ``trio.SocketStream`` (the socket data plane) or a trio
    ``Stream`` over one through ``transport_stream`` links (TLS: a ``trio.SSLStream``; the
    stream data plane, which reads it with ``receive_some``, writes it from one task with
    ``send_all`` and closes it with ``trio.aclose_forcefully`` after closing its socket, so
    Hypercorn's own ``aclose`` afterwards is a no-op), and
    ``TCPServer.config.read_timeout`` None (Hypercorn's per-read deadline is not reproduced).
    ``WSStream.app_put`` is a bound ``trio.MemorySendChannel.send`` (the app's queue),
    ``WSStream.task_group.spawn(fn)`` starts a task in the connection's task group,
    ``WSStream.state`` (``HANDSHAKE`` before, ``CONNECTED`` after a good accept),
    ``WSStream.closed`` (set True at the takeover: Hypercorn's WebSocket code then ignores the
    connection and its "app finished" send is a no-op), ``WSStream.connection`` and wsproto's
    ``Connection._proto`` (the ``FrameProtocol`` with the negotiated extensions), and trio's
    ``SocketType._sock`` (the stdlib socket, for non-blocking ``send``/``recv``).
    ``trio_ws._wsproto_private`` holds what reads wsproto's private names
    (``frame_protocol_idle``, ``cap_inflation``), each listed there.

:func:`is_open` and :func:`app_finished` (closing for a plain app after the drain)
    ``WSStream.state is ASGIWebsocketState.CONNECTED`` and ``WSStream.closed``; ``app_send(None)``
    is Hypercorn's "the app returned" step (it sends 1011 or 500 and ends the stream), which
    Hypercorn's app wrapper calls itself after the app returns and which is a no-op the second
    time.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
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
from wsproto.events import CloseConnection
from wsproto.extensions import PerMessageDeflate

from ._types import ASGIApp, Message, Scope, Send
from ._wsproto_private import cap_inflation, frame_protocol_idle

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

try:
    import hypercorn.trio.run
    from hypercorn.app_wrappers import ASGIWrapper
    from hypercorn.events import Closed, Updated
    from hypercorn.protocol import ProtocolWrapper
    from hypercorn.protocol.events import (
        Body,
        Data,
        EndBody,
        EndData,
        Request,
        StreamClosed,
        Trailers,
    )
    from hypercorn.protocol.h2 import H2Protocol
    from hypercorn.protocol.h11 import H11Protocol
    from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
    from hypercorn.trio.tcp_server import TCPServer
except ImportError as _exc:  # pragma: no cover - every checked version has all of these
    _IMPORT_PROBLEM = f"Hypercorn's internals moved ({_exc})"
    WSStream = TCPServer = H11Protocol = H2Protocol = ProtocolWrapper = object  # type: ignore[assignment,misc]
else:
    _IMPORT_PROBLEM = ""

__all__ = [
    "SUPPORTED_HYPERCORN",
    "HypercornHandover",
    "ServedTCPServer",
    "ServedWSStream",
    "Throttle",
    "abort",
    "adopt",
    "app_finished",
    "available",
    "find_handover",
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
    if _IMPORT_PROBLEM or _REBIND_PROBLEM:  # pragma: no cover - checked versions have them
        return _IMPORT_PROBLEM or _REBIND_PROBLEM
    for name in STREAM_METHODS:
        if not callable(getattr(WSStream, name, None)):  # pragma: no cover
            return f"hypercorn WSStream has no {name}()"
    try:
        _worker_serve()
    except (AttributeError, RuntimeError) as exc:  # pragma: no cover
        return f"Hypercorn's internals moved ({exc})"
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
                "trio_ws.serve: %s; serving with plain hypercorn.trio.serve: the data plane, client close codes, "
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


# -- Hypercorn's own functions, one global name rebound -----------------------------------------


def rebound(function: Any, name: str, value: object) -> Any:
    """``function`` with the global ``name`` bound to ``value``: same code, a copy of its globals.

    Nothing in Hypercorn changes; only the calls made through the returned function see
    ``value``. ``function`` must use ``name`` as a global and have no closure.
    """
    if name not in function.__code__.co_names or function.__closure__ is not None:
        raise RuntimeError(f"{function.__qualname__} no longer uses the global {name}")
    names = dict(function.__globals__)
    names[name] = value
    clone = types.FunctionType(
        function.__code__, names, function.__name__, function.__defaults__, None
    )
    clone.__kwdefaults__ = function.__kwdefaults__
    clone.__qualname__ = function.__qualname__
    return clone


class ServedH2Protocol(H2Protocol):
    """Hypercorn's HTTP/2 protocol, whose streams' sends end when the connection does.

    Once the peer has gone, Hypercorn's ``send_task`` (which empties the streams' buffers) has
    ended, and an app's ``send`` waits forever: the last body part drains a buffer nobody
    empties, a large one waits for room that never comes. The connection's task, the app's task
    and the socket then never end. Here the buffers are closed with the connection (which
    wakes every waiting send) and later body sends return at once, as on HTTP/1.1.
    """

    async def handle(self, event: Any) -> None:
        await super().handle(event)
        if isinstance(event, Closed):
            for buffer in list(self.stream_buffers.values()):
                await buffer.close()

    async def stream_send(self, event: Any) -> None:
        if self.closed and isinstance(event, (Body, Data, EndBody, EndData, Trailers)):
            await trio.lowlevel.checkpoint()  # a send loop after the peer left must not spin
            return
        await super().stream_send(event)


class ServedProtocolWrapper(ProtocolWrapper):
    """Hypercorn's ``ProtocolWrapper`` creating :class:`ServedH2Protocol` for HTTP/2 (ALPN,
    prior knowledge and the ``h2c`` upgrade); ``__init__`` and ``handle`` are set below."""


def _served_protocol(*args: Any, **kwargs: Any) -> Any:
    """Hypercorn's ``ProtocolWrapper`` with the served protocols: HTTP/1.1 re-classed into
    :class:`ServedH11Protocol`, HTTP/2 created as :class:`ServedH2Protocol`."""
    wrapper = ServedProtocolWrapper(*args, **kwargs)
    if type(wrapper.protocol) is H11Protocol:
        wrapper.protocol.__class__ = ServedH11Protocol
    return wrapper


class ServedTCPServer(TCPServer):
    """Hypercorn's per-connection ``TCPServer``; an error escaping it ends that connection only.

    Plain Hypercorn lets any exception out of a connection's task (h11's ``LocalProtocolError``
    for an upgrade request with a body, ``UnicodeDecodeError`` for a non-ASCII
    ``Sec-WebSocket-Protocol``...) end the whole server. Here it is logged (throttled) and the
    connection, already closed by ``TCPServer.run``'s own cleanup, is gone; cancellation still
    propagates. Its HTTP/1.1 protocol is :class:`ServedH11Protocol`, its HTTP/2 protocol
    :class:`ServedH2Protocol`; once the peer has gone, its keep-alive timer stays off.
    """

    #: Hypercorn's own ``TCPServer.run``, creating the served protocol (set below).
    _trio_ws_run: Callable[[], Awaitable[None]]

    async def run(self) -> None:  # noqa: ASYNC910 - Hypercorn's run checkpoints; a failure ends it
        try:
            await self._trio_ws_run()
        except BaseExceptionGroup as group:
            failures, rest = group.split(Exception)
            if failures is not None:
                self._trio_ws_note(failures)
            if rest is not None:
                raise rest from None
        except Exception as exc:
            self._trio_ws_note(exc)

    #: Whether Hypercorn's read loop has ended (the peer is gone): the keep-alive timer is off.
    _trio_ws_read_ended = False

    async def _read_data(self) -> None:
        """Hypercorn's read loop; then the keep-alive timer stops with the connection.

        Hypercorn leaves the timer running when the peer leaves an idle connection (before a
        complete request: a port scan, a health check, a cut-off handshake; or between HTTP
        requests), and HTTP/2 starts it again when a stream the app answers after the peer
        left ends; the connection's task, and what it holds, then stays until
        ``keep_alive_timeout`` (5 s) has passed.
        """
        await super()._read_data()
        self._trio_ws_read_ended = True
        await self.idle_task.stop()

    async def protocol_send(self, event: Any) -> None:
        """Hypercorn's ``protocol_send``, except that the timer stays off once the peer left."""
        if self._trio_ws_read_ended and isinstance(event, Updated):
            await trio.lowlevel.checkpoint()
            return
        await super().protocol_send(event)

    def _trio_ws_note(self, exc: BaseException) -> None:
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
    """Hypercorn's own ``worker_serve``, creating :class:`ServedTCPServer` per connection."""
    return cast(
        Callable[..., Awaitable[None]],
        rebound(hypercorn.trio.run.worker_serve, "TCPServer", ServedTCPServer),
    )


async def run_worker(
    app: ASGIApp,
    config: Any,
    *,
    shutdown_trigger: Callable[..., Awaitable[object]],
    task_status: Any,
) -> None:
    """Run Hypercorn's trio worker (as ``hypercorn.trio.serve`` does) with the hooks."""
    await _worker_serve()(
        ASGIWrapper(cast(Any, app)),
        config,
        shutdown_trigger=shutdown_trigger,
        task_status=task_status,
    )


# -- each WebSocket stream ---------------------------------------------------------------------


def _answer_started(stream: Any) -> bool:
    """HTTP/1.1 only: an HTTP answer to this upgrade request has begun (h11's own state)."""
    protocol = getattr(stream.send, "__self__", None)
    if not isinstance(protocol, H11Protocol):
        return False
    h11_connection = getattr(protocol.connection, "h11_connection", None)
    if h11_connection is None:  # pragma: no cover - an upgrade always has the H11WSConnection
        return False
    return h11_connection.our_state is not h11.SEND_RESPONSE


#: Request headers that Hypercorn's ``Handshake`` decodes as ASCII.
_ASCII_HEADERS = (b"connection", b"sec-websocket-protocol", b"sec-websocket-extensions")


def _early_bytes(stream: Any) -> bool:
    """HTTP/1.1 only: bytes after the upgrade request came with it (in h11's trailing data)."""
    protocol = getattr(stream.send, "__self__", None)
    if not isinstance(protocol, H11Protocol):
        return False
    return bool(getattr(protocol.connection, "buffer", None))


def _refusal(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """Why an upgrade request with these headers gets HTTP 400 from ``serve``, or ""."""
    keys = 0
    for name, value in headers:
        lowered = name.lower()
        if lowered in (b"content-length", b"transfer-encoding"):
            return f"the upgrade request has a body ({lowered.decode('latin-1')})"
        if lowered in _ASCII_HEADERS and not value.isascii():
            return f"the {lowered.decode('latin-1')} header is not ASCII"
        if lowered == b"sec-websocket-key":  # HTTP/1.1 only (RFC 8441 has no key)
            keys += 1
            if keys > 1:
                return "the sec-websocket-key header is repeated"
            if not _valid_key(value):
                return "the sec-websocket-key header is not the base64 of 16 bytes"
    return ""


def _valid_key(value: bytes) -> bool:
    """RFC 6455 section 4.2.1 item 5: the key decodes (base64) to exactly 16 bytes."""
    try:
        return len(base64.b64decode(value.strip(), validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


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
    """Hypercorn's ``WSStream`` for connections served by ``trio_ws.serve``.

    Under :class:`ServedH11Protocol` every HTTP/1.1 WebSocket stream is born this class (so
    it sees the upgrade request itself); over HTTP/2 :func:`adopt` re-classes the plain stream
    when the app is called, before the handshake can be accepted.
    """

    trio_ws_peer_close: tuple[int, str] | None = None
    trio_ws_report_close = True
    trio_ws_deflate = True
    trio_ws_told_app = False
    trio_ws_ended = False
    #: Why this handshake must be refused (a body), or "".
    trio_ws_refuse = ""

    async def handle(self, event: Any) -> None:
        # Class identity, not isinstance: this runs for every frame Hypercorn reads.
        kind = event.__class__
        if kind is Data or kind is Body:
            if not self.handshake.accepted:
                # Bytes after the upgrade request, before it was answered (a body, an early
                # frame, garbage): RFC 6455 section 4.1 lets a client send only after the 101.
                await self.trio_ws_reject(
                    "bytes arrived after the upgrade request, before its answer"
                )
                return
        elif kind is Request:
            await self._trio_ws_request(event)
            return
        elif kind is StreamClosed and self._trio_ws_open():
            self.trio_ws_told_app = True
            peer = self.trio_ws_peer_close
            if peer is not None:
                # The client closed first: report its code and reason, not Hypercorn's 1006.
                self.closed = True
                assert self.app_put is not None
                await self.app_put(
                    {"type": "websocket.disconnect", "code": peer[0], "reason": peer[1]}
                )
                return
        await super().handle(event)

    def _trio_ws_open(self) -> bool:
        return (
            not self.closed
            and self.app_put is not None
            and self.state not in (ASGIWebsocketState.CLOSED, ASGIWebsocketState.HTTPCLOSED)
        )

    async def _trio_ws_request(self, event: Any) -> None:
        self.trio_ws_refuse = _refusal(event.headers) or (
            "bytes arrived after the upgrade request, before its answer"
            if _early_bytes(self)
            else ""
        )
        if self.trio_ws_refuse:
            # Hypercorn's Handshake would raise UnicodeDecodeError on a non-ASCII value (out
            # of the connection's task): it reads the request without those headers.
            headers = [
                (name, value)
                for name, value in event.headers
                if value.isascii() or name.lower() not in _ASCII_HEADERS
            ]
            event = dataclasses.replace(event, headers=headers)
        await super().handle(event)
        if self.trio_ws_refuse or (self.closed and self.app_put is None):
            # Ours to refuse; or Hypercorn refused it itself (400, 404) and would keep the
            # connection open, though its answer says "connection: close".
            await self.trio_ws_reject(self.trio_ws_refuse)

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

    async def trio_ws_reject(self, reason: str, status: int = 400) -> None:
        """Answer the handshake with ``status`` if it is still open, close, tell the app; once."""
        if self.trio_ws_ended:
            return  # noqa: ASYNC910 - internal and idempotent; Hypercorn's event loop checkpoints
        self.trio_ws_ended = True
        self.closed = True  # from here on Hypercorn drops the app's messages
        if reason:
            throttle.warning(
                "reject:" + reason[:40], "HTTP %d to %s: %s", status, _peer(self.scope), reason
            )
        if (
            self.state is ASGIWebsocketState.HANDSHAKE
            and not _answer_started(self)
            and hasattr(self, "scope")
        ):
            with suppress(h11.LocalProtocolError):
                await self._send_error_response(status)
        await self.send(StreamClosed(stream_id=self.stream_id))
        if not self.trio_ws_told_app and self.app_put is not None:
            self.trio_ws_told_app = True
            await self.app_put({"type": "websocket.disconnect", "code": 1006, "reason": ""})


class ServedH11Protocol(H11Protocol):
    """Hypercorn's HTTP/1.1 protocol whose WebSocket streams are born :class:`ServedWSStream`.

    Its ``_create_stream`` is Hypercorn's own, with the global ``WSStream`` rebound (set below).
    """


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


try:
    ServedTCPServer._trio_ws_run = rebound(TCPServer.run, "ProtocolWrapper", _served_protocol)
    ServedProtocolWrapper.__init__ = rebound(  # type: ignore[method-assign]
        ProtocolWrapper.__init__, "H2Protocol", ServedH2Protocol
    )
    ServedProtocolWrapper.handle = rebound(  # type: ignore[method-assign]
        ProtocolWrapper.handle, "H2Protocol", ServedH2Protocol
    )
    ServedH11Protocol._create_stream = rebound(  # type: ignore[method-assign]
        H11Protocol._create_stream, "WSStream", ServedWSStream
    )
except (AttributeError, RuntimeError) as _exc:  # pragma: no cover - checked versions have them
    _REBIND_PROBLEM = f"Hypercorn's internals moved ({_exc})"
else:
    _REBIND_PROBLEM = ""


def adopt(send: Send, *, report_close: bool, deflate: bool) -> Any:
    """The ``ServedWSStream`` behind the app's ``send`` (re-classed if plain), or None."""
    stream: Any = getattr(send, "__self__", None)
    if type(stream) is WSStream:  # HTTP/2: Hypercorn's H2Protocol made a plain one
        stream.__class__ = ServedWSStream
    elif type(stream) is not ServedWSStream:
        unsupported("the ASGI send callable is not a Hypercorn WSStream method")
        return None
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
    headers: list[tuple[bytes, bytes]] = scope.get("headers") or []
    reason = stream.trio_ws_refuse or _refusal(headers)
    if reason or stream.closed:
        await stream.trio_ws_reject(reason)  # a no-op if the stream already did it
        return reason or "the handshake was already refused"
    subprotocols = _combined(headers, b"sec-websocket-protocol")
    if subprotocols is not None:
        scope["subprotocols"] = subprotocols
        stream.handshake.subprotocols = subprotocols
    extensions = _combined(headers, b"sec-websocket-extensions")
    if extensions is not None:
        stream.handshake.extensions = extensions
    return ""  # noqa: ASYNC910 - internal; the app it lets run checkpoints right after


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


def socket_under(stream: Any) -> Any:
    """The trio socket of ``stream``: a ``trio.SocketStream``, or a stream over one through
    ``transport_stream`` links (TLS: ``trio.SSLStream``); None when there is none."""
    for _ in range(_MAX_HOPS):
        if isinstance(stream, trio.SocketStream):
            return stream.socket
        stream = getattr(stream, "transport_stream", None)
    return None


def abort(send: Send) -> bool:
    """Close the connection's socket abortively (RST); True if a socket was found."""
    server = _tcp_server_of(send)
    sock = socket_under(getattr(server, "stream", None))
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
    ``streamed`` is True when the data plane must use the trio stream (TLS), not the socket.
    """

    __slots__ = ("forward", "max_message_size", "sock", "stream", "streamed", "tcp_server")

    def __init__(
        self, stream: Any, tcp_server: Any, sock: Any, *, streamed: bool, max_message_size: int
    ) -> None:
        self.stream = stream
        self.tcp_server = tcp_server
        self.sock = sock
        self.streamed = streamed
        self.max_message_size = max_message_size
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
        cap_inflation(proto, self.max_message_size)
        sock = self.sock
        transport = self.tcp_server.stream if self.streamed else sock._sock
        return sock, transport, proto, stream.task_group.spawn, frame_protocol_idle


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
    streamed = type(transport) is not trio.SocketStream
    sock = socket_under(transport)
    if sock is None:
        return "the connection's trio stream is not over a trio socket"
    if getattr(tcp_server.protocol, "protocol", None) is not protocol:
        return "Hypercorn's protocol wrapper is not where it was expected"
    config = tcp_server.config
    if config.read_timeout is not None:
        return "config.read_timeout is set"
    inbox = getattr(stream.app_put, "__self__", None)
    if not isinstance(inbox, trio.MemorySendChannel):
        return "the app's inbound queue is not a trio memory channel"
    if not streamed and not isinstance(getattr(sock, "_sock", None), socket.socket):
        return "trio's socket has no _sock"
    size = int(config.websocket_max_message_size)
    hook = HypercornHandover(stream, tcp_server, sock, streamed=streamed, max_message_size=size)
    return hook, inbox, size
