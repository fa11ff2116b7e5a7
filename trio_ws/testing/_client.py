"""An in-process WebSocket client that speaks ASGI to an application, with no threads.

:func:`open_connection` runs the application in a task of its own and plays the server's part over
trio memory channels, the way Hypercorn's trio worker does: the application's ``receive`` is
the bound ``receive`` of a memory channel holding 10 messages, so a trio_ws session takes the
same direct-read path it takes in production. The test holds the client's end.

What the client does on the server's behalf (denials, closes, 1011 and 500 when the
application returns early) is described in :mod:`trio_ws.testing._server_role`.

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
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

import trio

from .._exceptions import WebSocketDisconnect, WebSocketMessageTypeError
from .._types import ASGIApp, Message, Scope
from ._deprecated import warn_deprecated
from ._errors import WebSocketDenied
from ._messages import CONNECT, describe, disconnect, receive_bytes, receive_text
from ._scope import DENIAL_EXTENSION, HeaderPairs, websocket_scope
from ._server_role import APP_QUEUE_SIZE, ServerRole
from ._waits import bounded

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup

__all__ = ["WebSocketDenied", "WebSocketTestClient", "connect", "open_connection"]


class WebSocketTestClient(ServerRole):
    """The test's end of one in-process WebSocket connection, from :func:`open_connection`.

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
        super().__init__(scope)
        self.wait_limit: float = wait_limit
        self._error_reported = False
        self._close_seen = False

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
        with bounded(self.wait_limit, "the app did not accept or deny the connection"):
            await self._answered.wait()
        if self._phase in ("connected", "closed") and self._denial is None:
            return
        with bounded(self.wait_limit, "the app did not return after refusing the connection"):
            await self._app_done.wait()
        self._raise_app_error()
        if self._denial is not None:
            raise self._denial
        raise WebSocketDenied(500)  # what Hypercorn answers when the app returns without a word

    async def _finish(self) -> None:
        """Leave the connection: disconnect if still open, wait for the app, report its error."""
        await self._leave(disconnect(1000, ""), "the connection closed")

    async def _send_to_app(self, message: Message, what: str) -> None:
        with bounded(
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
        await self._send_data(receive_text(data), "send_text")

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message to the application.

        Raises:
            WebSocketDisconnect: The application has closed the connection (or returned).
            trio.ClosedResourceError: This client has closed the connection.
            trio.TooSlowError: The application's queue stayed full for ``wait_limit`` seconds.
        """
        await self._send_data(receive_bytes(bytes(data)), "send_bytes")

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

    async def close(self, code: int | None = 1000, reason: str = "") -> None:
        """Close the connection from the client's side and wait for the application to return.

        The application receives ``websocket.disconnect`` with this ``code`` and ``reason``, as
        :func:`trio_ws.serve` reports a client's close frame (plain Hypercorn reports 1006).
        Closing again, or after the application closed, only waits for it to return.

        Args:
            code: The close code (RFC 6455 section 7.4), or ``None`` for a close frame without
                one, which the application receives as 1005 (section 7.1.5).
            reason: The close reason; must be ``""`` when ``code`` is ``None``.

        Raises:
            ValueError: ``reason`` was given without a ``code``.
            Exception: Whatever the application raised, if not reported yet.
            trio.TooSlowError: The application did not read the disconnect, or did not return,
                within ``wait_limit`` seconds.
        """
        if code is None:
            if reason:
                await trio.lowlevel.checkpoint()
                raise ValueError("a close frame without a code cannot carry a reason")
            code = 1005  # RFC 6455 section 7.1.5: "no status code was actually present"
        await self._leave(disconnect(code, reason))

    async def abort(self) -> None:
        """Drop the connection without a close frame, as a lost TCP connection does.

        The application receives ``websocket.disconnect`` with code 1006 and no reason, as from
        Hypercorn and :func:`trio_ws.serve` (RFC 6455 section 7.1.5: closed abnormally). Then
        this waits for the application to return, like :meth:`close`.

        Raises:
            Exception: Whatever the application raised, if not reported yet.
            trio.TooSlowError: The application did not read the disconnect, or did not return,
                within ``wait_limit`` seconds.
        """
        await self._leave(disconnect(1006))

    async def _leave(self, message: Message, after: str = "the client disconnected") -> None:
        """Hand the app ``message`` (a disconnect) if still open, wait for it to return."""
        if self._client_close is None and self._app_close is None:
            self._client_close = (message["code"], message.get("reason", ""))
            await self._send_to_app(message, "the disconnect")
        with bounded(self.wait_limit, f"the app did not return after {after}"):
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
        with bounded(self.wait_limit, "the app sent nothing"):
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
                    f"expected the app to close the connection, but it sent {describe(message)}"
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
async def open_connection(
    app: ASGIApp,
    url: str = "/",
    *,
    subprotocols: Iterable[str] = (),
    headers: HeaderPairs = (),
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    root_path: str = "",
    extensions: Iterable[str] = (DENIAL_EXTENSION,),
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
            :func:`open_lifespan`).
        wait_limit: Seconds any single wait may take before ``trio.TooSlowError``.

    Yields:
        The connected :class:`WebSocketTestClient`.

    Raises:
        WebSocketDenied: The application refused the connection.
        Exception: Whatever the application raised.
        trio.TooSlowError: The application did not answer within ``wait_limit`` seconds.

    Example::

        async def echo(ws: trio_ws.WebSocket) -> None:
            await ws.accept()
            await ws.send_text(await ws.receive_text())

        async def test_echo():
            app = trio_ws.websocket_app(echo)
            async with trio_ws.testing.open_connection(app, "/echo") as client:
                await client.send_text("hi")
                assert await client.receive_text() == "hi"
    """
    scope = websocket_scope(
        url,
        subprotocols=subprotocols,
        headers=headers,
        client=client,
        root_path=root_path,
        extensions=extensions,
        state=state,
    )
    connection = WebSocketTestClient(scope, wait_limit=wait_limit)
    connection._to_app.send_nowait(dict(CONNECT))
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


def connect(
    app: ASGIApp,
    url: str = "/",
    *,
    subprotocols: Iterable[str] = (),
    headers: HeaderPairs = (),
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    root_path: str = "",
    extensions: Iterable[str] = (DENIAL_EXTENSION,),
    state: Mapping[str, Any] | None = None,
    wait_limit: float = 5.0,
) -> AbstractAsyncContextManager[WebSocketTestClient]:
    """Deprecated alias of :func:`open_connection`, with the same arguments.

    .. deprecated:: 0.1.0
       Use :func:`open_connection`. Removed in the next release.

    Warns:
        DeprecationWarning: Always.
    """
    warn_deprecated("connect", "open_connection")
    return open_connection(
        app,
        url,
        subprotocols=subprotocols,
        headers=headers,
        client=client,
        root_path=root_path,
        extensions=extensions,
        state=state,
        wait_limit=wait_limit,
    )
