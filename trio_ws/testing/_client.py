"""An in-process WebSocket client that speaks ASGI to an application, with no threads.

:func:`connect` runs the application in a task of its own and plays the server's part over
trio memory channels, the way Hypercorn's trio worker does: the application's ``receive`` is
the bound ``receive`` of a memory channel holding 10 messages, so a trio_ws session takes the
same direct-read path it takes in production. The test holds the client's end.

What the client does on the server's behalf, as Hypercorn 0.18 does:

* ``websocket.close`` before accept is a denial with HTTP 403; so are the
  ``websocket.http.response.*`` messages of the denial-response extension (with their status).
  After a denial the application receives ``websocket.disconnect`` (1000).
* ``websocket.close`` after accept is answered with ``websocket.disconnect`` carrying the same
  code and reason, as a well-behaved client echoes the close frame.
* An application that returns after accept without closing leaves the client a close with 1011;
  one that returns before accepting or denying, an HTTP 500 denial.
* Once the connection is closed, the application's sends are dropped silently.

Unlike Hypercorn it gives the application the client's exact close code and reason (Hypercorn
reports 1006 for every client close; ``trio_ws.serve`` fixes that), and it raises in the
*application* when it sends something a server would reject (a subprotocol the client did not
offer, a message of the wrong type).

Errors the test sees::

    Exception raised by the application   re-raised as is, at the client's next call (or on exit)
    WebSocketDenied                       the application refused the handshake (a
                                          WebSocketDisconnect, as in Starlette's test client)
    WebSocketDisconnect(code, reason)     the application closed the connection
    WebSocketMessageTypeError             receive_text() got binary data, or the reverse
    trio.ClosedResourceError              the test used the client after closing it
    trio.TooSlowError                     a wait exceeded ``wait_limit``; the message says
                                          what was awaited
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import trio

from .._exceptions import WebSocketDisconnect, WebSocketMessageTypeError
from .._types import ASGIApp, Message, Scope

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

__all__ = [
    "LifespanFailure",
    "WebSocketDenied",
    "WebSocketTestClient",
    "connect",
    "lifespan",
]

#: Messages the application's queue holds before a client send waits (Hypercorn's default).
APP_QUEUE_SIZE = 10
_DENIAL_EXTENSION = "websocket.http.response"
_Phase = Literal["handshake", "response", "connected", "closed", "denied"]
HeaderPairs = Iterable[tuple[str | bytes, str | bytes]]


class WebSocketDenied(WebSocketDisconnect):
    """The application refused the connection instead of accepting it.

    Raised by :func:`connect`. It is a :class:`~trio_ws.WebSocketDisconnect`, as Starlette's
    test client raises for a denial, so tests ported from Starlette keep passing.

    Attributes:
        status: The HTTP status of the refusal: 403 for a ``websocket.close`` before accept,
            the application's status for a denial response (``WebSocket.deny``,
            ``send_denial_response``), 500 when the application returned without answering.
        headers: The response headers as ``(name, value)`` byte pairs.
        body: The response body.
        code: The close code the application sent before accept (1000 for a denial response).
        reason: The close reason it sent with it (``""`` for a denial response).
    """

    def __init__(
        self,
        status: int,
        headers: Iterable[tuple[bytes, bytes]] = (),
        body: bytes = b"",
        *,
        code: int = 1000,
        reason: str | None = None,
    ) -> None:
        super().__init__(code, reason)
        self.status: int = status
        self.headers: list[tuple[bytes, bytes]] = list(headers)
        self.body: bytes = body

    def __str__(self) -> str:
        body = f", body {self.body[:60]!r}" if self.body else ""
        return f"the app denied the connection with HTTP {self.status}{body}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, headers={self.headers!r}, "
            f"body={self.body!r}, code={self.code!r}, reason={self.reason!r})"
        )


class LifespanFailure(RuntimeError):
    """The application reported ``lifespan.startup.failed`` or ``lifespan.shutdown.failed``.

    Raised by :func:`lifespan`, with the application's message (``""`` if it gave none).
    """


@contextmanager
def _bounded(limit: float, what: str) -> Iterator[None]:
    """Bound a wait; past ``limit`` raise ``trio.TooSlowError`` saying what was awaited."""
    with trio.move_on_after(limit) as scope:
        yield
    if scope.cancelled_caught:
        raise trio.TooSlowError(f"{what} within {limit:g} s")


def _encode(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


def _describe(message: Message) -> str:
    if message["type"] == "websocket.send":
        text = message.get("text")
        if text is not None:
            return f"a text message {text[:60]!r}"
        return f"a binary message {bytes(message['bytes'])[:60]!r}"
    if message["type"] == "websocket.close":
        return f"close {message.get('code', 1000)} {message.get('reason') or ''!r}"
    return repr(message)


def _websocket_scope(
    url: str,
    *,
    subprotocols: Iterable[str] = (),
    headers: HeaderPairs = (),
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    root_path: str = "",
    extensions: Iterable[str] = (_DENIAL_EXTENSION,),
    state: Mapping[str, Any] | None = None,
) -> Scope:
    """Build the ASGI scope of a WebSocket handshake for ``url``, as Hypercorn would."""
    parts = urlsplit(url)
    scheme = "wss" if parts.scheme in ("wss", "https") else "ws"
    default_port = 443 if scheme == "wss" else 80
    host = parts.hostname or "testserver"
    port = parts.port or default_port
    authority = parts.netloc or host
    raw_path = (parts.path or "/").encode("latin-1")
    offered = list(subprotocols)
    extra = [(_encode(name).lower(), _encode(value)) for name, value in headers]
    scope_headers: list[tuple[bytes, bytes]] = []
    if not any(name == b"host" for name, _ in extra):
        scope_headers.append((b"host", authority.encode("latin-1")))
    scope_headers += [
        (b"connection", b"upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"sec-websocket-version", b"13"),
    ]
    if offered:
        scope_headers.append((b"sec-websocket-protocol", ", ".join(offered).encode("latin-1")))
    scope_headers += extra
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": scheme,
        "server": (host, port),
        "client": client,
        "root_path": root_path,
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": parts.query.encode("latin-1"),
        "headers": scope_headers,
        "subprotocols": offered,
        "extensions": {name: {} for name in extensions},
        "state": dict(state or {}),
    }


class WebSocketTestClient:
    """The test's end of one in-process WebSocket connection, from :func:`connect`.

    Every call waits at most :attr:`wait_limit` seconds, then raises ``trio.TooSlowError``
    saying what it waited for. An exception raised by the application is re-raised, as is, by
    the client's next call (or when the ``async with`` block ends), once.

    Attributes:
        scope: The scope the application was given.
        accepted_subprotocol: The subprotocol the application accepted, or ``None``.
        accept_headers: The extra headers the application accepted with.
        wait_limit: Seconds any single wait may take; may be changed at any time.
    """

    def __init__(self, scope: Scope, *, wait_limit: float = 5.0) -> None:
        self.scope: Scope = scope
        self.accepted_subprotocol: str | None = None
        self.accept_headers: list[tuple[bytes, bytes]] = []
        self.wait_limit: float = wait_limit
        self._to_app, self._app_inbox = trio.open_memory_channel[Message](APP_QUEUE_SIZE)
        self._to_client, self._from_app = trio.open_memory_channel[Message](math.inf)
        self._nursery: trio.Nursery | None = None
        self._phase: _Phase = "handshake"
        self._denial: WebSocketDenied | None = None
        self._response_start: Message | None = None
        self._response_body = bytearray()
        self._answered = trio.Event()  # accepted, denied, or the app returned
        self._app_done = trio.Event()
        self._app_error: Exception | None = None
        self._error_reported = False
        self._app_close: tuple[int, str] | None = None  # set once the app's side has ended
        self._close_seen = False
        self._client_close: tuple[int, str] | None = None

    # ------------------------------------------------------------------ the server's side

    async def _run_app(self, app: ASGIApp) -> None:  # noqa: ASYNC910 (a task: nobody awaits it)
        try:
            await app(self.scope, self._app_inbox.receive, self._app_send)
        except Exception as exc:  # reported to the test by the client's next call
            self._app_error = exc
        finally:
            if self._phase == "connected":
                self._phase = "closed"
                if self._client_close is None:
                    # Hypercorn closes with 1011 after an app that returns without closing.
                    self._app_close = (1011, "")
                    if self._app_error is None:
                        self._to_client.send_nowait(
                            {"type": "websocket.close", "code": 1011, "reason": ""}
                        )
            self._to_client.close()
            self._app_inbox.close()
            self._app_done.set()
            self._answered.set()

    async def _app_send(self, message: Message) -> None:
        """The ``send`` callable the application gets."""
        await trio.lowlevel.checkpoint()
        kind = message["type"]
        phase = self._phase
        if phase in ("closed", "denied") or self._client_close is not None:
            return  # Hypercorn drops whatever the app sends once the connection is closed
        if phase == "connected":
            if kind == "websocket.send":
                text, data = message.get("text"), message.get("bytes")
                if (text is None) == (data is None):
                    raise TypeError(
                        "a websocket.send message needs exactly one of 'text' and 'bytes', "
                        f"got {message!r}"
                    )
                if text is not None and not isinstance(text, str):
                    raise TypeError(f"'text' must be a str, not {type(text).__name__}")
                self._to_client.send_nowait(message)
            elif kind == "websocket.close":
                code, reason = int(message.get("code", 1000)), message.get("reason") or ""
                self._phase = "closed"
                self._app_close = (code, reason)
                self._to_client.send_nowait(message)
                # The client answers the close frame with the same code, as clients do.
                self._to_app_nowait(
                    {"type": "websocket.disconnect", "code": code, "reason": reason}
                )
            else:
                raise RuntimeError(f"unexpected ASGI message {kind!r} after websocket.accept")
        elif phase == "handshake":
            if kind == "websocket.accept":
                subprotocol = message.get("subprotocol")
                if subprotocol is not None and subprotocol not in self.scope["subprotocols"]:
                    raise ValueError(
                        f"the app accepted subprotocol {subprotocol!r}, which the client did "
                        f"not offer ({self.scope['subprotocols']!r})"
                    )
                self.accepted_subprotocol = subprotocol
                self.accept_headers = [
                    (_encode(name), _encode(value)) for name, value in message.get("headers") or ()
                ]
                self._phase = "connected"
                self._answered.set()
            elif kind == "websocket.close":
                headers = [(b"content-length", b"0"), (b"connection", b"close")]
                self._deny(
                    WebSocketDenied(
                        403,
                        headers,
                        code=int(message.get("code", 1000)),
                        reason=message.get("reason"),
                    )
                )
            elif kind == "websocket.http.response.start":
                if _DENIAL_EXTENSION not in self.scope["extensions"]:
                    raise RuntimeError(
                        f"{kind!r} needs the {_DENIAL_EXTENSION!r} extension, which this "
                        "client's scope does not offer"
                    )
                self._response_start = message
                self._phase = "response"
            else:
                raise RuntimeError(f"unexpected ASGI message {kind!r} before websocket.accept")
        elif kind == "websocket.http.response.body":  # phase == "response"
            self._response_body += message.get("body", b"")
            if not message.get("more_body", False):
                start = self._response_start
                assert start is not None
                headers = [(_encode(n), _encode(v)) for n, v in start.get("headers") or ()]
                self._deny(
                    WebSocketDenied(int(start["status"]), headers, bytes(self._response_body))
                )
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} during a denial response")

    def _deny(self, denial: WebSocketDenied) -> None:
        self._phase = "denied"
        self._denial = denial
        self._answered.set()
        # The server closes the connection after the response; the app hears of it.
        self._to_app_nowait({"type": "websocket.disconnect", "code": 1000})

    def _to_app_nowait(self, message: Message) -> None:
        """Queue ``message`` for the app; if its queue is full, from a task that waits."""
        try:
            self._to_app.send_nowait(message)
        except trio.WouldBlock:
            assert self._nursery is not None
            self._nursery.start_soon(self._to_app_later, message)
        except trio.BrokenResourceError:
            pass  # the app has returned

    async def _to_app_later(self, message: Message) -> None:
        try:
            await self._to_app.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await trio.lowlevel.checkpoint()

    # ------------------------------------------------------------------ helpers

    def _raise_app_error(self) -> None:
        if self._app_error is not None and not self._error_reported:
            self._error_reported = True
            raise self._app_error

    def _closed_error(self) -> WebSocketDisconnect:
        code, reason = self._app_close or (1006, "")
        return WebSocketDisconnect(code, reason)

    def _check_open(self, what: str) -> None:
        if self._client_close is not None:
            raise trio.ClosedResourceError(
                f"{what}: this client already closed the connection (code {self._client_close[0]})"
            )

    async def _handshake(self) -> None:
        with _bounded(self.wait_limit, "the app did not accept or deny the connection"):
            await self._answered.wait()
        if self._phase in ("connected", "closed") and self._denial is None:
            return
        with _bounded(self.wait_limit, "the app did not return after refusing the connection"):
            await self._app_done.wait()
        self._raise_app_error()
        if self._denial is not None:
            raise self._denial
        raise WebSocketDenied(500)  # what Hypercorn answers when the app returns without a word

    async def _finish(self) -> None:
        """Leave the connection: disconnect if still open, wait for the app, report its error."""
        if self._client_close is None and self._app_close is None:
            self._client_close = (1000, "")
            await self._send_to_app(
                {"type": "websocket.disconnect", "code": 1000, "reason": ""}, "the disconnect"
            )
        with _bounded(self.wait_limit, "the app did not return after the connection closed"):
            await self._app_done.wait()
        self._raise_app_error()

    async def _send_to_app(self, message: Message, what: str) -> None:
        with _bounded(
            self.wait_limit,
            f"the app did not read {what} (its queue of {APP_QUEUE_SIZE} messages is full)",
        ):
            try:
                await self._to_app.send(message)
            except trio.BrokenResourceError:
                pass
            else:
                return
        # The app has returned.
        self._raise_app_error()
        raise self._closed_error()

    # ------------------------------------------------------------------ sending

    async def _send_data(self, message: Message, what: str) -> None:
        self._check_open(what)
        if self._app_close is not None:
            await trio.lowlevel.checkpoint()
            self._raise_app_error()
            raise self._closed_error()
        await self._send_to_app(message, "the client's message")

    async def send_text(self, data: str) -> None:
        """Send a text message to the application.

        Raises:
            WebSocketDisconnect: The application has closed the connection (or returned).
            trio.ClosedResourceError: This client has closed the connection.
            trio.TooSlowError: The application's queue stayed full for ``wait_limit`` seconds.
        """
        await self._send_data({"type": "websocket.receive", "text": data}, "send_text")

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message to the application.

        Raises:
            WebSocketDisconnect: The application has closed the connection (or returned).
            trio.ClosedResourceError: This client has closed the connection.
            trio.TooSlowError: The application's queue stayed full for ``wait_limit`` seconds.
        """
        await self._send_data({"type": "websocket.receive", "bytes": bytes(data)}, "send_bytes")

    async def send_json(self, data: Any, mode: Literal["text", "binary"] = "text") -> None:
        """Send ``data`` encoded as JSON.

        Args:
            data: Anything :func:`json.dumps` accepts.
            mode: ``"text"`` for a text message, ``"binary"`` for UTF-8 in a binary one.

        Raises:
            ValueError: ``mode`` is neither ``"text"`` nor ``"binary"``.
            WebSocketDisconnect: The application has closed the connection (or returned).
            trio.ClosedResourceError: This client has closed the connection.
        """
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if mode == "text":
            await self.send_text(text)
        elif mode == "binary":
            await self.send_bytes(text.encode("utf-8"))
        else:
            raise ValueError(f'mode must be "text" or "binary", not {mode!r}')

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection from the client's side and wait for the application to return.

        The application receives ``websocket.disconnect`` with this ``code`` and ``reason``.
        Closing again, or after the application closed, only waits for it to return.

        Raises:
            Exception: Whatever the application raised, if not reported yet.
            trio.TooSlowError: The application did not read the disconnect, or did not return,
                within ``wait_limit`` seconds.
        """
        if self._client_close is None and self._app_close is None:
            self._client_close = (code, reason)
            await self._send_to_app(
                {"type": "websocket.disconnect", "code": code, "reason": reason}, "the disconnect"
            )
        with _bounded(self.wait_limit, "the app did not return after the client disconnected"):
            await self._app_done.wait()
        self._raise_app_error()

    # ------------------------------------------------------------------ receiving

    async def receive(self) -> Message:
        """Receive the next ASGI message the application sent.

        Returns:
            A ``websocket.send`` message, or the ``websocket.close`` that ends the connection.

        Raises:
            WebSocketDisconnect: The close was already received, or the application returned.
            Exception: Whatever the application raised, in place of its close.
            trio.ClosedResourceError: This client has closed the connection.
            trio.TooSlowError: Nothing came within ``wait_limit`` seconds.
        """
        self._check_open("receive")
        if self._close_seen:
            await trio.lowlevel.checkpoint()
            self._raise_app_error()
            raise self._closed_error()
        message: Message | None = None
        with _bounded(self.wait_limit, "the app sent nothing"):
            try:
                message = await self._from_app.receive()
            except trio.EndOfChannel:  # the app has returned and everything it sent was read
                message = None
        if message is None:
            # Raised out here, not in the except clause, so the app's error keeps its context.
            self._close_seen = True
            self._raise_app_error()
            self._check_open("receive")  # the client closed while this call waited
            raise self._closed_error()
        if message["type"] == "websocket.close":
            self._close_seen = True
            if message.get("code") == 1011:
                # "Internal error": the app (a trio_ws session, say) usually closes like this
                # on its way out with an exception. Give it the chance to raise, so the test
                # sees the exception rather than the close.
                with trio.move_on_after(self.wait_limit):
                    await self._app_done.wait()
                self._raise_app_error()
        return message  # noqa: ASYNC910 (EndOfChannel above leads to a raise)

    async def _receive_data(self) -> Message:
        message = await self.receive()
        if message["type"] == "websocket.close":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        return message

    async def receive_text(self) -> str:
        """Receive a text message.

        Raises:
            WebSocketDisconnect: The application closed the connection.
            WebSocketMessageTypeError: The application sent a binary message.
        """
        message = await self._receive_data()
        text = message.get("text")
        if text is None:
            raise WebSocketMessageTypeError("text", "binary", len(message["bytes"]))
        return str(text)

    async def receive_bytes(self) -> bytes:
        """Receive a binary message.

        Raises:
            WebSocketDisconnect: The application closed the connection.
            WebSocketMessageTypeError: The application sent a text message.
        """
        message = await self._receive_data()
        data = message.get("bytes")
        if data is None:
            raise WebSocketMessageTypeError("bytes", "text", len(message["text"]))
        return bytes(data)

    async def receive_json(self, mode: Literal["text", "binary"] = "text") -> Any:
        """Receive a message and decode it as JSON.

        Args:
            mode: ``"text"`` to read a text message, ``"binary"`` for UTF-8 in a binary one.

        Raises:
            ValueError: ``mode`` is neither ``"text"`` nor ``"binary"``.
            json.JSONDecodeError: The message is not JSON.
            WebSocketDisconnect: The application closed the connection.
            WebSocketMessageTypeError: The message was of the other type.
        """
        if mode == "text":
            return json.loads(await self.receive_text())
        if mode == "binary":
            return json.loads((await self.receive_bytes()).decode("utf-8"))
        raise ValueError(f'mode must be "text" or "binary", not {mode!r}')

    async def expect_close(self, code: int | None = None) -> tuple[int, str]:
        """Wait for the application to close the connection.

        Args:
            code: The close code the application must send; ``None`` accepts any.

        Returns:
            The ``(code, reason)`` the application closed with.

        Raises:
            AssertionError: The application sent a data message first, or closed with another
                code.
            Exception: Whatever the application raised, in place of its close.
            trio.TooSlowError: The application did not close within ``wait_limit`` seconds.
        """
        if self._close_seen and self._app_close is not None:
            await trio.lowlevel.checkpoint()
            self._raise_app_error()
            actual = self._app_close
        else:
            message = await self.receive()
            if message["type"] != "websocket.close":
                raise AssertionError(
                    f"expected the app to close the connection, but it sent {_describe(message)}"
                )
            actual = (int(message.get("code", 1000)), message.get("reason") or "")
        if code is not None and actual[0] != code:
            raise AssertionError(
                f"expected the app to close with {code}, but it closed with {actual[0]} "
                f"{actual[1]!r}"
            )
        return actual


def _merge_failures(failure: BaseException, app_error: Exception | None) -> BaseException:
    """The test's exception, grouped with an app error that nobody has reported yet."""
    if app_error is None or app_error is failure or not isinstance(failure, Exception):
        return failure
    return ExceptionGroup("both the test and the app failed", [failure, app_error])


@asynccontextmanager
async def connect(
    app: ASGIApp,
    url: str = "/",
    *,
    subprotocols: Iterable[str] = (),
    headers: HeaderPairs = (),
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    root_path: str = "",
    extensions: Iterable[str] = (_DENIAL_EXTENSION,),
    state: Mapping[str, Any] | None = None,
    wait_limit: float = 5.0,
) -> AsyncIterator[WebSocketTestClient]:
    """Open an in-process WebSocket connection to an ASGI application.

    Runs ``app`` in a task, hands it a WebSocket scope and ``websocket.connect``, and waits
    for its answer. On leaving the block, a connection still open is closed from the client's
    side (1000), the application is given ``wait_limit`` seconds to return, and an exception it
    raised that no call reported yet is raised. If the block raises, the application is
    cancelled and the block's exception propagates as is.

    Args:
        app: Any ASGI 3 application, such as one made by :func:`trio_ws.websocket_app`.
        url: The request target, ``"/path?query"``, or a full ``ws://host:port/path`` URL
            (its host goes into the ``host`` header and ``scope["server"]``; the default is
            ``testserver`` on port 80).
        subprotocols: The subprotocols the client offers.
        headers: Extra request headers as ``(name, value)`` pairs (``str`` or ``bytes``);
            a ``host`` header here replaces the default one.
        client: ``scope["client"]``.
        root_path: ``scope["root_path"]``.
        extensions: The scope's extensions; by default the denial-response extension, as
            Hypercorn offers. Pass ``()`` to see how the app denies without it.
        state: ``scope["state"]``, copied (as the lifespan state a server passes on; see
            :func:`lifespan`).
        wait_limit: Seconds any single wait may take before ``trio.TooSlowError``.

    Yields:
        The connected :class:`WebSocketTestClient`.

    Raises:
        WebSocketDenied: The application refused the connection.
        Exception: Whatever the application raised.
        trio.TooSlowError: The application did not answer within ``wait_limit`` seconds.

    Example::

        async with trio_ws.testing.connect(app, "/echo") as client:
            await client.send_text("hi")
            assert await client.receive_text() == "hi"
    """
    scope = _websocket_scope(
        url,
        subprotocols=subprotocols,
        headers=headers,
        client=client,
        root_path=root_path,
        extensions=extensions,
        state=state,
    )
    connection = WebSocketTestClient(scope, wait_limit=wait_limit)
    connection._to_app.send_nowait({"type": "websocket.connect"})
    failure: BaseException | None = None
    # Errors are taken out of the nursery and raised after it, so the test sees the app's
    # (or its own) exception itself, not wrapped in an exception group.
    async with trio.open_nursery() as nursery:
        connection._nursery = nursery
        nursery.start_soon(connection._run_app, app, name=f"ASGI app {app!r}")
        try:
            await connection._handshake()
            yield connection
            await connection._finish()
        except BaseException as exc:  # re-raised below, after the nursery
            failure = exc
            nursery.cancel_scope.cancel()
    if failure is not None:
        if connection._error_reported:
            raise failure
        raise _merge_failures(failure, connection._app_error)


def _lifespan_scope(state: dict[str, Any]) -> Scope:
    """Build an ASGI lifespan scope sharing ``state``."""
    return {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}


async def _run_lifespan_app(  # noqa: ASYNC910 (a task: nobody awaits it)
    app: ASGIApp,
    scope: Scope,
    inbox: trio.MemoryReceiveChannel[Message],
    outbox: trio.MemorySendChannel[Message],
    errors: list[Exception],
) -> None:
    async def send(message: Message) -> None:
        await trio.lowlevel.checkpoint()
        outbox.send_nowait(message)

    try:
        await app(scope, inbox.receive, send)
    except Exception as exc:  # reported by lifespan()
        errors.append(exc)
    finally:
        outbox.close()


async def _lifespan_step(  # noqa: ASYNC910 (EndOfChannel leads to a raise)
    to_app: trio.MemorySendChannel[Message],
    from_app: trio.MemoryReceiveChannel[Message],
    errors: list[Exception],
    step: str,
    wait_limit: float,
) -> None:
    to_app.send_nowait({"type": f"lifespan.{step}"})
    message: Message | None = None
    with _bounded(wait_limit, f"the app did not complete lifespan {step}"):
        try:
            message = await from_app.receive()
        except trio.EndOfChannel:  # the app has returned
            message = None
    if message is None:
        if errors:
            raise errors[0]
        raise LifespanFailure(f"the app returned during lifespan {step}")
    if message["type"] == f"lifespan.{step}.failed":
        raise LifespanFailure(message.get("message", ""))
    if message["type"] != f"lifespan.{step}.complete":
        raise RuntimeError(f"unexpected ASGI message during lifespan {step}: {message!r}")


@asynccontextmanager
async def lifespan(
    app: ASGIApp, *, state: dict[str, Any] | None = None, wait_limit: float = 5.0
) -> AsyncIterator[dict[str, Any]]:
    """Run an application's lifespan: startup on entry, shutdown on exit.

    Args:
        app: Any ASGI 3 application.
        state: The lifespan state dictionary the application may fill in (a new one if not
            given); pass it on to :func:`connect` as ``state=``.
        wait_limit: Seconds startup, shutdown and the application's return may each take.

    Yields:
        The lifespan state.

    Raises:
        LifespanFailure: The application reported that startup or shutdown failed, or
            returned in the middle of one.
        Exception: Whatever the application raised.
        trio.TooSlowError: A step took longer than ``wait_limit`` seconds.

    Example::

        async with trio_ws.testing.lifespan(app) as state:
            async with trio_ws.testing.connect(app, "/", state=state) as client:
                ...
    """
    state = {} if state is None else state
    to_app, inbox = trio.open_memory_channel[Message](2)
    outbox, from_app = trio.open_memory_channel[Message](math.inf)
    errors: list[Exception] = []
    failure: BaseException | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_run_lifespan_app, app, _lifespan_scope(state), inbox, outbox, errors)
        try:
            await _lifespan_step(to_app, from_app, errors, "startup", wait_limit)
            yield state
            await _lifespan_step(to_app, from_app, errors, "shutdown", wait_limit)
            with _bounded(wait_limit, "the app did not return after lifespan shutdown"):
                async for message in from_app:
                    raise RuntimeError(
                        f"unexpected ASGI message after lifespan shutdown: {message!r}"
                    )
            if errors:
                raise errors[0]
        except BaseException as exc:  # re-raised below, after the nursery
            failure = exc
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
