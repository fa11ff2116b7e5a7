"""trio-websocket server handlers as ASGI applications: ``trio_ws.trio_websocket_app(handler)``.

A trio-websocket server is ``serve_websocket(handler, host, port, ssl_context)`` with
``async def handler(request)``. :func:`trio_websocket_app` runs the same handler under any ASGI
server with a trio worker (Hypercorn, :func:`trio_ws.serve`): each connection is a
:class:`~trio_ws.WebSocket` session, and the handler gets a :class:`TrioWebSocketRequest`, and
after ``accept`` a :class:`TrioWebSocketConnection`, with trio-websocket's API and exceptions
(``ConnectionClosed``, ``CloseReason``, ``Endpoint`` are trio-websocket's own classes).

trio-websocket is an optional dependency (``pip install 'trio_ws[trio-websocket]'``), imported
when :func:`trio_websocket_app` is first called.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import trio

from ._app import SessionApp
from ._exceptions import WebSocketDisconnect
from ._types import ASGIApp, Receive, Scope, Send
from ._websocket import WebSocket

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup
if TYPE_CHECKING:
    import trio_websocket

__all__ = ["TrioWebSocketConnection", "TrioWebSocketRequest", "trio_websocket_app"]

#: ``async def handler(request) -> None``, written for ``trio_websocket.serve_websocket``.
TrioWebSocketHandler = Callable[[Any], Awaitable[object]]

_NO_PINGS = (
    "ASGI has no ping or pong frames: the server answers the client's pings itself, and sends "
    "its own with Hypercorn's websocket_ping_interval setting. Pass pings='skip' to "
    "trio_websocket_app to make ping() and pong() return at once instead."
)


def _trio_websocket() -> ModuleType:
    """The trio_websocket module, or an error that says how to install it."""
    try:
        return importlib.import_module("trio_websocket")
    except ModuleNotFoundError as exc:
        if exc.name != "trio_websocket":
            raise
        raise ModuleNotFoundError(
            "trio_ws.trio_websocket_app needs the trio-websocket package: "
            "pip install 'trio_ws[trio-websocket]'",
            name="trio_websocket",
        ) from None


def _endpoint(address: Any, scheme: str) -> trio_websocket.Endpoint | str:
    if not address:
        return "<unknown>"
    host, port = address[0], address[1]
    endpoint: trio_websocket.Endpoint = _trio_websocket().Endpoint(
        host, port, scheme in ("wss", "https")
    )
    return endpoint


class TrioWebSocketRequest:
    """The client's handshake, as ``trio_websocket.WebSocketRequest`` presents it.

    The handler of :func:`trio_websocket_app` gets one per connection.
    """

    __slots__ = ("_connection", "_websocket")

    def __init__(self, websocket: WebSocket[Any], pings: Literal["raise", "skip"]) -> None:
        self._websocket = websocket
        self._connection = TrioWebSocketConnection(websocket, pings)

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The request's HTTP headers, ``(name, value)`` pairs with lower-case names."""
        return [(bytes(name), bytes(value)) for name, value in self._websocket.scope["headers"]]

    @property
    def path(self) -> str:
        """The request target as the client sent it, the path and any ``?query``."""
        return self._connection.path

    @property
    def proposed_subprotocols(self) -> tuple[str, ...]:
        """The subprotocols the client offered, in its order."""
        return tuple(self._websocket.scope.get("subprotocols", ()))

    @property
    def local(self) -> trio_websocket.Endpoint | str:
        """The server's address as a ``trio_websocket.Endpoint`` (a string if unknown)."""
        return self._connection.local

    @property
    def remote(self) -> trio_websocket.Endpoint | str:
        """The client's address as a ``trio_websocket.Endpoint`` (a string if unknown)."""
        return self._connection.remote

    async def accept(
        self,
        *,
        subprotocol: str | None = None,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> TrioWebSocketConnection:
        """Accept the handshake and return the connection.

        Args:
            subprotocol: The subprotocol to select; it must be one the client offered.
            extra_headers: Extra response headers as ``(name, value)`` byte pairs.

        Raises:
            ValueError: ``subprotocol`` was not offered, or ``extra_headers`` set
                ``Sec-WebSocket-Protocol``.
            RuntimeError: The handshake was already accepted or rejected.
        """
        await self._websocket.accept(subprotocol, extra_headers or [])
        self._connection._subprotocol = subprotocol
        return self._connection

    async def reject(
        self,
        status_code: int,
        *,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes | None = None,
    ) -> None:
        """Refuse the handshake with an HTTP response.

        Needs the server's ``websocket.http.response`` extension (Hypercorn has it);
        elsewhere the client gets HTTP 403 without the body and headers.

        Args:
            status_code: The HTTP status, ideally 300-599 (RFC 6455 section 4.2.2).
            extra_headers: Extra response headers as ``(name, value)`` byte pairs.
            body: The response body.

        Raises:
            RuntimeError: The handshake was already accepted or rejected.
        """
        await self._websocket.deny(status_code, body or b"", extra_headers or ())
        # As trio-websocket reports a rejected connection.
        self._connection._closed = _trio_websocket().CloseReason(
            1006, "Rejected WebSocket handshake"
        )


class TrioWebSocketConnection:
    """An accepted connection, as ``trio_websocket.WebSocketConnection`` presents it.

    Messages the client sent before closing are still delivered; after them
    :meth:`get_message` raises ``trio_websocket.ConnectionClosed``. After :meth:`aclose`,
    every call raises it at once. The session underneath keeps its own guarantees: receives
    and sends are cancel-safe, and a send after the client left raises instead of vanishing.
    """

    __slots__ = ("_closed", "_closing", "_pings", "_subprotocol", "_websocket")

    def __init__(self, websocket: WebSocket[Any], pings: Literal["raise", "skip"]) -> None:
        self._websocket = websocket
        self._pings = pings
        self._subprotocol: str | None = None
        self._closed: trio_websocket.CloseReason | None = None
        self._closing = False  # this side closed: pending messages are discarded

    @property
    def closed(self) -> trio_websocket.CloseReason | None:
        """Why the connection closed or is closing (a ``trio_websocket.CloseReason``), or ``None``.

        The client's close code needs a server that reports it: :func:`trio_ws.serve` does,
        plain Hypercorn reports 1006 for every client close.
        """
        websocket = self._websocket
        if self._closed is None and websocket.close_code is not None:
            self._closed = _trio_websocket().CloseReason(
                websocket.close_code, websocket.close_reason or None
            )
        return self._closed

    @property
    def is_client(self) -> bool:
        """Always ``False``: this is the server's side."""
        return False

    @property
    def is_server(self) -> bool:
        """Always ``True``."""
        return True

    @property
    def local(self) -> trio_websocket.Endpoint | str:
        """The server's address as a ``trio_websocket.Endpoint`` (a string if unknown)."""
        scope = self._websocket.scope
        return _endpoint(scope.get("server"), scope.get("scheme", "ws"))

    @property
    def remote(self) -> trio_websocket.Endpoint | str:
        """The client's address as a ``trio_websocket.Endpoint`` (a string if unknown)."""
        scope = self._websocket.scope
        return _endpoint(scope.get("client"), scope.get("scheme", "ws"))

    @property
    def path(self) -> str:
        """The request target as the client sent it, the path and any ``?query``."""
        scope = self._websocket.scope
        raw = scope.get("raw_path")
        target = raw.decode("latin-1") if raw else scope["path"]
        query = scope.get("query_string", b"")
        return f"{target}?{query.decode('latin-1')}" if query else target

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol selected by ``accept``, or ``None``."""
        return self._subprotocol

    @property
    def handshake_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The client's handshake headers (trio-websocket's own servers leave this empty)."""
        return tuple(
            (bytes(name), bytes(value)) for name, value in self._websocket.scope["headers"]
        )

    def _connection_closed(self) -> BaseException:
        closed: Exception = _trio_websocket().ConnectionClosed(self.closed)
        return closed

    async def get_message(self) -> str | bytes:
        """Receive the next message: ``str`` for text, ``bytes`` for binary.

        Raises:
            trio_websocket.ConnectionClosed: The connection is closed (by the client, after the
                messages it sent before; by this side, at once).
        """
        if self._closing:
            await trio.lowlevel.checkpoint()
            raise self._connection_closed()
        message = await self._websocket.receive()
        if message["type"] == "websocket.disconnect":
            if self._closed is None:
                code = message.get("code", 1005)
                self._closed = _trio_websocket().CloseReason(code, message.get("reason") or None)
            raise self._connection_closed()
        text = message.get("text")
        data: str | bytes = message["bytes"] if text is None else text
        return data

    async def send_message(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message.

        Raises:
            trio_websocket.ConnectionClosed: The connection is closed or closing.
            ValueError: ``message`` is neither ``str`` nor ``bytes``.
        """
        if self.closed is not None:
            await trio.lowlevel.checkpoint()
            raise self._connection_closed()
        try:
            if isinstance(message, str):
                await self._websocket.send_text(message)
            elif isinstance(message, bytes):
                await self._websocket.send_bytes(message)
            else:  # untyped callers
                await trio.lowlevel.checkpoint()  # type: ignore[unreachable]
                raise ValueError("message must be str or bytes")
        except WebSocketDisconnect:
            raise self._connection_closed() from None

    async def ping(self, payload: bytes | None = None) -> None:
        """Not available over ASGI (see :func:`trio_websocket_app`'s ``pings``).

        Raises:
            NotImplementedError: With ``pings="raise"`` (the default).
            trio_websocket.ConnectionClosed: With ``pings="skip"``, when the connection is
                closed.
        """
        await self._no_ping()

    async def pong(self, payload: bytes | None = None) -> None:
        """Not available over ASGI (see :func:`trio_websocket_app`'s ``pings``).

        Raises:
            NotImplementedError: With ``pings="raise"`` (the default).
            trio_websocket.ConnectionClosed: With ``pings="skip"``, when the connection is
                closed.
        """
        await self._no_ping()

    async def _no_ping(self) -> None:
        await trio.lowlevel.checkpoint()
        if self._pings == "raise":
            raise NotImplementedError(_NO_PINGS)
        if self.closed is not None:
            raise self._connection_closed()

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection and wait for the client's closing handshake.

        Idempotent, as trio-websocket's: closing a closed connection does nothing.

        Raises:
            ValueError: ``code`` cannot be sent (1005, 1006, 1015, below 1000 ...) or
                ``reason`` is longer than 123 bytes in UTF-8.
        """
        websocket = self._websocket
        if self.closed is not None:
            self._closing = True
            await trio.lowlevel.checkpoint()
            return
        await websocket.close(code, reason)
        self._closing = True
        self._closed = _trio_websocket().CloseReason(code, reason)
        await websocket.wait_disconnected()

    def __str__(self) -> str:
        return f"server-{self.path}"


class _TrioWebSocketApp(SessionApp):
    """Runs a trio-websocket handler in a session per connection."""

    def __init__(
        self,
        handler: TrioWebSocketHandler,
        options: dict[str, Any],
        pings: Literal["raise", "skip"],
        connection_closed: type[Exception],
    ) -> None:
        super().__init__(handler, options)
        self.pings = pings
        self._connection_closed = connection_closed

    async def serve_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with WebSocket(scope, receive, send, **self.options) as websocket:
            try:
                await self.handler(TrioWebSocketRequest(websocket, self.pings))
            except self._connection_closed as exc:
                # The client left and the handler let trio-websocket's error out: a normal
                # end, as a disconnect is for a session (trio-websocket's server would crash).
                raise WebSocketDisconnect(websocket.close_code or 1005) from exc
            except BaseExceptionGroup as group:
                closed, rest = group.split(self._connection_closed)
                if closed is None or rest is not None:
                    raise
                raise WebSocketDisconnect(websocket.close_code or 1005) from group


def trio_websocket_app(
    handler: TrioWebSocketHandler,
    *,
    pings: Literal["raise", "skip"] = "raise",
    **options: Any,
) -> ASGIApp:
    """Serve a trio-websocket server handler as an ASGI application.

    Moving a server from ``trio_websocket.serve_websocket`` to Hypercorn changes its serve line
    only::

        async def handler(request):  # a trio-websocket server handler, unchanged
            ws = await request.accept()
            await ws.send_message(await ws.get_message())

        # before: await serve_websocket(handler, "127.0.0.1", 8000, ssl_context=None)
        app = trio_ws.trio_websocket_app(handler)  # hypercorn -k trio module:app

    Each connection runs in a :class:`~trio_ws.WebSocket` session. The handler gets a
    :class:`TrioWebSocketRequest` (``path``, ``headers``, ``proposed_subprotocols``,
    ``local``, ``remote``, ``accept``, ``reject``), whose ``accept`` returns a
    :class:`TrioWebSocketConnection` (``get_message``, ``send_message``, ``aclose``,
    ``closed``, ``subprotocol``, ``path``). Errors are trio-websocket's:
    ``ConnectionClosed`` carrying a ``CloseReason``.

    Differences from trio-websocket's own server:

    * ``ping`` and ``pong``: ASGI cannot send ping or pong frames. Hypercorn answers the
      client's pings itself and sends its own with its ``websocket_ping_interval`` setting
      (it does not check the pongs). ``pings`` says what the methods do.
    * A handler that returns without accepting denies the handshake (HTTP 403) instead of
      dropping the TCP connection; ``reject`` needs the ``websocket.http.response`` extension
      (Hypercorn has it) to send its status, headers and body.
    * A ``ConnectionClosed`` that escapes the handler (alone or in an exception group) ends
      the connection quietly instead of crashing the server. Any other exception closes with
      1011 and propagates to the ASGI server, which logs it and keeps serving.
    * ``max_message_size`` (a session option) counts bytes of UTF-8, not characters.
      ``message_queue_size`` has no equivalent: see the session's ``max_queued_messages`` and
      ``on_inbox_full``.
    * The client's close code in ``closed`` needs a server that reports it
      (:func:`trio_ws.serve`; plain Hypercorn reports 1006).

    Args:
        handler: ``async def handler(request) -> None``, as written for trio-websocket.
        pings: ``"raise"``: ``ping()`` and ``pong()`` raise :class:`NotImplementedError`
            naming the alternatives. ``"skip"``: they return at once (after a checkpoint),
            so heartbeat loops keep running, and raise ``ConnectionClosed`` once closed.
        **options: Keyword options for each connection's :class:`~trio_ws.WebSocket`
            (``max_message_size``, ``close_timeout`` ...).

    Returns:
        An ASGI 3 application (lifespan events acknowledged, HTTP requests answered 404).

    Raises:
        ModuleNotFoundError: trio-websocket is not installed.
        ValueError: ``pings`` is neither ``"raise"`` nor ``"skip"``, or a bad option value.
        TypeError: ``handler`` is not callable, or an unknown option.
    """
    module = _trio_websocket()
    if pings not in ("raise", "skip"):
        raise ValueError(f'pings must be "raise" or "skip", not {pings!r}')
    # Fail now, not at the first connection, on a bad option.
    WebSocket({"type": "websocket"}, _never, _never, **options)
    return _TrioWebSocketApp(handler, options, pings, module.ConnectionClosed)


async def _never(*args: object) -> Any:  # pragma: no cover - options are only validated
    raise RuntimeError("this WebSocket only validates options")
