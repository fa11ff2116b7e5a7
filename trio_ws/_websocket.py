"""The WebSocket connection: Starlette's API, used plainly or as a nursery-scoped session.

Used plainly, :class:`WebSocket` is a thin layer over the ASGI ``receive`` and ``send``
callables with Starlette's state machine, helpers and errors, and nothing else: this module.

Entered as a session (``async with websocket:``), the same object owns a nursery for the
connection; that machinery lives in its base classes: :class:`trio_ws._session.SessionCore`
(the reader role, the inbox and the send gate) and :class:`trio_ws._session_scope.SessionScope`
(entering, the exit table, helper tasks, statistics).
``receive`` and the data sends below hand over to it once the session is entered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any, cast

import trio

from ._exceptions import WebSocketDisconnect, WebSocketDisconnected, WebSocketMessageTypeError
from ._http import StateT
from ._json import JSONValidationError
from ._session import _COUNTS_SCHEDULE_POINTS
from ._session_scope import SessionScope
from ._state import WebSocketState, check_receive_allowed, client_transition
from ._types import ASGIApp, Message, Receive

__all__ = ["WebSocket"]

_CONNECTING = WebSocketState.CONNECTING
_CONNECTED = WebSocketState.CONNECTED
_DISCONNECTED = WebSocketState.DISCONNECTED
_NOT_ACCEPTED = 'WebSocket is not connected. Need to call "accept" first.'
_BAD_MODE = 'The "mode" argument should be "text" or "binary".'


class WebSocket(SessionScope[StateT]):
    """A WebSocket connection with Starlette's API.

    Plain use behaves exactly like ``starlette.websockets.WebSocket``. ``async with websocket:``
    turns it into a session (see the module documentation and :doc:`/cancellation`).

    Args:
        scope: The ASGI connection scope; its ``type`` must be ``"websocket"``.
        receive: The ASGI ``receive`` callable.
        send: The ASGI ``send`` callable.
        max_queued_messages: Session only: how many messages read ahead from the server (to
            watch for the disconnect) the inbox holds for receivers.
            The session reads ahead only to find a disconnect hidden behind unread data (see
            :doc:`/cancellation`); when the inbox is full it stops reading ahead and the client
            is slowed by TCP backpressure.
        on_inbox_full: Session only: what happens when the inbox stays full. ``"close"`` (the
            default): if no task takes a message from the full inbox for
            ``inbox_full_timeout`` seconds while the client keeps sending, the connection is
            closed with 1008 ("too many unread messages") and the application sees a
            disconnect with that code, so the server's queue keeps draining and the client's
            disconnect cannot hide for longer than that. ``"block"``: never close; until the
            application reads again it may not learn that a chatty client left.
        inbox_full_timeout: Session only: seconds (> 0) that the inbox may stay full, with
            nobody receiving, before ``on_inbox_full="close"`` closes. An application that
            takes a message at least this often is never closed for overflow, however fast
            the client pipelines.
        max_message_size: Session only: the largest message, in bytes (text counted in
            UTF-8), the application accepts; a larger one closes the connection with 1009 and
            the application sees a disconnect with that code. ``None``: the server's limit only
            (Hypercorn's ``websocket_max_message_size``, 16 MiB by default).
        close_on_invalid_json: Session only: a message that ``receive_json`` cannot decode,
            or that does not match its ``type``, closes the connection with 1007, and
            ``receive_json`` raises :class:`WebSocketDisconnect` instead of
            :class:`json.JSONDecodeError` or :class:`~trio_ws.JSONValidationError`.
        close_timeout: Session only: seconds that closing on exit may take, the client's
            closing handshake included.
        send_timeout: Session only: seconds a data send may take, or ``None`` (no limit). A
            send that takes longer ends the connection: the session closes it with 1011 ("send
            timed out") and the send raises :class:`WebSocketDisconnect` with that code. Under
            ``trio_ws.serve``'s data plane the write is cancelled and the connection aborted;
            under plain Hypercorn, whose socket writes cannot be cancelled, it only bounds the
            wait for Hypercorn's send lock.
        shutdown_close_code: Session only: the close code sent when the session is cancelled
            from outside (server shutdown, an application timeout).
        shield_sends: Session only: run each server ``send`` shielded from cancellation.
            ``None`` (the default) shields when the client offered permessage-deflate, where
            a frame dropped after compression would corrupt the stream; without compression an
            interrupted send drops the whole frame, which is already safe, and shielding would
            cost about 5 us per message. Connections on ``trio_ws.serve``'s data plane are
            never shielded: there a frame is compressed only when it is certain to be written.
        json_codec: The :class:`~trio_ws.JSONCodec` of ``send_json``, ``receive_json`` and
            ``iter_json``. ``None``: the enclosing :class:`~trio_ws.Router`'s, else
            :meth:`JSONCodec.standard() <trio_ws.JSONCodec.standard>` (Starlette's output).

    Attributes:
        client_state (WebSocketState): What the client has done, as seen through ``receive``.
        application_state (WebSocketState): What the application has done, as seen through
            ``send``.
        close_code (int | None): The close code: the one the application sent, or the
            client's (or the server's) if it closed first; ``None`` while open.
        close_reason (str): The reason that goes with :attr:`close_code`.
        closed_by (str | None): Who closed first: ``"application"``, ``"client"``,
            ``"server"`` (the server ended the connection itself: a protocol error 1002,
            invalid UTF-8 1007, a message over its size limit 1009, a missed pong; reported
            by ``trio_ws.serve``), or ``None`` while open.

    Raises:
        ValueError: The scope is not a WebSocket scope, or an option is out of range.
        TypeError: ``receive`` or ``send`` is not callable, or an option has the wrong type.
    """

    __slots__ = ()

    # Declared again here, where plain mode assigns them (pyright: one declared type).
    client_state: WebSocketState
    application_state: WebSocketState

    # ------------------------------------------------------------------ receiving

    async def receive(self) -> Message:
        """Receive the next ASGI message, checking it against the state machine.

        In a session, messages queued before the disconnect come first; after them every call
        returns the disconnect message again.

        Raises:
            WebSocketDisconnected: Plain use only: the disconnect was already received.
            RuntimeError: The server sent a message the current state does not allow.
        """
        if self._nursery is not None:
            return await self._session_receive()
        state = self.client_state
        if state is not _CONNECTED:
            check_receive_allowed(state)
        if self._receive_checkpoints:
            message = await self._receive()
        else:
            message = await _checkpointed(self._receive)
        message_type = message["type"]
        if state is not _CONNECTED or message_type != "websocket.receive":
            self.client_state = client_transition(state, message_type)
            if message_type == "websocket.disconnect":
                self._record_disconnect(message)
        return message

    def _raise_on_disconnect(self, message: Message) -> None:
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message["code"], message.get("reason"))

    async def receive_text(self) -> str:
        """Receive a text message.

        Raises:
            WebSocketDisconnect: The client disconnected.
            WebSocketDisconnected: The connection is not accepted, or already closed.
            WebSocketMessageTypeError: The message was binary (a :class:`KeyError`).
        """
        if self.application_state is not _CONNECTED:
            raise WebSocketDisconnected(_NOT_ACCEPTED)
        message = await self.receive()
        self._raise_on_disconnect(message)
        text = message.get("text")
        if text is None:
            raise WebSocketMessageTypeError("text", "binary", len(message.get("bytes") or b""))
        return cast(str, text)

    async def receive_bytes(self) -> bytes:
        """Receive a binary message.

        Raises:
            WebSocketDisconnect: The client disconnected.
            WebSocketDisconnected: The connection is not accepted, or already closed.
            WebSocketMessageTypeError: The message was text (a :class:`KeyError`).
        """
        if self.application_state is not _CONNECTED:
            raise WebSocketDisconnected(_NOT_ACCEPTED)
        message = await self.receive()
        self._raise_on_disconnect(message)
        data = message.get("bytes")
        if data is None:
            raise WebSocketMessageTypeError("bytes", "text", len(message.get("text") or ""))
        return cast(bytes, data)

    async def receive_json(self, mode: str = "text", *, type: Any = None) -> Any:
        """Receive a message and decode it as JSON, with the session's JSON codec.

        Args:
            mode: ``"text"`` to read a text message, ``"binary"`` for UTF-8 in a binary one.
            type: Validate the message as this type and return an instance of it: a pydantic
                model, a ``msgspec.Struct``, a dataclass, ``list[int]`` ... (needs pydantic or
                msgspec; see :class:`~trio_ws.JSONCodec`). ``None``: any JSON value.

        Raises:
            RuntimeError: ``mode`` is neither ``"text"`` nor ``"binary"``.
            json.JSONDecodeError: The message is not JSON; the error says why and shows the
                start of the message. With ``close_on_invalid_json`` (sessions), the connection
                is closed with 1007 and :class:`WebSocketDisconnect` raised instead.
            JSONValidationError: The message does not match ``type`` (a :class:`ValueError`).
                With ``close_on_invalid_json`` (sessions), the connection is closed with 1007
                and :class:`WebSocketDisconnect` raised instead.
            WebSocketDisconnect: The client disconnected.
            WebSocketDisconnected: The connection is not accepted, or already closed.
        """
        if mode not in {"text", "binary"}:
            raise RuntimeError(_BAD_MODE)
        if self.application_state is not _CONNECTED:
            raise WebSocketDisconnected(_NOT_ACCEPTED)
        message = await self.receive()
        self._raise_on_disconnect(message)
        # A key present with None means absent (Hypercorn sends both keys, one of them None).
        if mode == "text":
            text = message.get("text")
            if text is None:
                data = message.get("bytes") or b""
                raise WebSocketMessageTypeError("text", "binary", len(data), "receive_json")
            data = text
        else:
            data = message.get("bytes")
            if data is None:
                size = len(message.get("text") or "")
                raise WebSocketMessageTypeError("bytes", "text", size, "receive_json")
            data = bytes(data)
        try:
            return self._json.decode(data, type)
        except (json.JSONDecodeError, JSONValidationError) as exc:
            if self._close_on_invalid_json and self._nursery is not None:
                reason = (
                    exc.close_reason if isinstance(exc, JSONValidationError) else "invalid JSON"
                )
                self._end_conversation(1007, reason)
                raise WebSocketDisconnect(1007, reason) from exc
            raise

    async def iter_text(self) -> AsyncIterator[str]:  # noqa: ASYNC911 (receive checkpoints)
        """Yield text messages until the client disconnects."""
        try:
            while True:
                yield await self.receive_text()
        except WebSocketDisconnect:
            pass

    async def iter_bytes(self) -> AsyncIterator[bytes]:  # noqa: ASYNC911 (receive checkpoints)
        """Yield binary messages until the client disconnects."""
        try:
            while True:
                yield await self.receive_bytes()
        except WebSocketDisconnect:
            pass

    async def iter_json(  # noqa: ASYNC911 (receive checkpoints)
        self, *, type: Any = None
    ) -> AsyncIterator[Any]:
        """Yield JSON-decoded text messages until the client disconnects.

        Args:
            type: As for :meth:`receive_json`.
        """
        try:
            while True:
                yield await self.receive_json(type=type)
        except WebSocketDisconnect:
            pass

    # ------------------------------------------------------------------ sending

    async def send(self, message: Message) -> None:
        """Send an ASGI message, checking it against the state machine.

        In a session, a data send after the client left raises :class:`WebSocketDisconnect`
        at once (Hypercorn would drop it silently), a second ``websocket.close`` is ignored,
        and accept and close are validated first.

        Raises:
            RuntimeError: The message type is not allowed in the current state.
            WebSocketDisconnected: The application already closed.
            WebSocketDisconnect: The server's ``send`` raised :class:`OSError` (code 1006), or,
                in a session, the client has left.
            ValueError: Session only: an invalid accept or close (see :meth:`accept`,
                :meth:`close`).
        """
        if self._nursery is not None:
            await self._session_send(message)
            return
        state = self.application_state
        if state is not _CONNECTED or message["type"] != "websocket.send":
            self.application_state = self._transition(state, message)
        task = trio.lowlevel.current_task()
        points = task._schedule_points if _COUNTS_SCHEDULE_POINTS else -1
        if state is _CONNECTED:
            try:
                await self._send(message)
            except OSError:
                self.application_state = _DISCONNECTED
                raise WebSocketDisconnect(code=1006)  # noqa: B904 (Starlette keeps the context)
        else:
            await self._send(message)
        if not _COUNTS_SCHEDULE_POINTS or task._schedule_points == points:
            # The server returned without yielding (Hypercorn does once the client's close is
            # processed): a checkpoint, so that a send loop cannot starve the server's reader.
            await trio.lowlevel.checkpoint()

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Iterable[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Accept the connection, first waiting for the client's connect message.

        Args:
            subprotocol: The subprotocol to select; in a session it must be one the client
                offered.
            headers: Extra response headers as ``(name, value)`` byte pairs.

        Raises:
            ValueError: Session only: ``subprotocol`` was not offered, or ``headers`` set
                ``Sec-WebSocket-Protocol``.
        """
        headers = headers or []
        if self.client_state is _CONNECTING:
            await self.receive()
        await self.send(
            {"type": "websocket.accept", "subprotocol": subprotocol, "headers": headers}
        )

    async def send_text(self, data: str) -> None:
        """Send a text message.

        Raises:
            TypeError: ``data`` is not a :class:`str`.
        """
        if data.__class__ is not str and not isinstance(data, str):
            raise TypeError(_wrong_data("send_text", "str", data))
        await self.send({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message.

        Raises:
            TypeError: ``data`` is not bytes-like (:class:`bytes`, :class:`bytearray` or
                :class:`memoryview`).
        """
        if data.__class__ is not bytes and not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(_wrong_data("send_bytes", "bytes", data))
        await self.send({"type": "websocket.send", "bytes": data})

    async def send_json(self, data: Any, mode: str = "text") -> None:
        """Encode ``data`` with the session's JSON codec and send it.

        The default codec (:meth:`JSONCodec.standard`) writes compact JSON with non-ASCII
        characters as they are, exactly as Starlette does.

        Args:
            data: Anything the codec encodes (for the default, what :func:`json.dumps` accepts).
            mode: ``"text"`` for a text message, ``"binary"`` for UTF-8 in a binary one.

        Raises:
            RuntimeError: ``mode`` is neither ``"text"`` nor ``"binary"``.
        """
        if mode not in {"text", "binary"}:
            raise RuntimeError(_BAD_MODE)
        if mode == "text":
            await self.send({"type": "websocket.send", "text": self._json.encode_text(data)})
        else:
            await self.send({"type": "websocket.send", "bytes": self._json.encode_bytes(data)})

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Close the connection (before ``accept``, deny it with HTTP 403).

        In a session, closing again or after the client left does nothing.

        Raises:
            ValueError: Session only: ``code`` cannot be sent or ``reason`` is too long.
        """
        await self.send({"type": "websocket.close", "code": code, "reason": reason or ""})

    async def deny(
        self,
        status: int = 403,
        body: bytes = b"",
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """Refuse the connection before ``accept`` with an HTTP response.

        Uses the ``websocket.http.response`` extension where the server has it (Hypercorn
        does); elsewhere the connection is closed instead, which servers answer with HTTP 403.

        Args:
            status: The HTTP status code.
            body: The response body.
            headers: Extra response headers as ``(name, value)`` byte pairs.

        Raises:
            RuntimeError: The connection was already accepted, closed or denied.
        """
        if self.application_state is not _CONNECTING:
            raise RuntimeError(
                "deny() must come before accept; the application state is "
                f"{self.application_state.name}"
            )
        if "websocket.http.response" not in self.scope.get("extensions", {}):
            await self.close()
            return
        response_headers = [(b"content-length", str(len(body)).encode("ascii")), *headers]
        await self.send(
            {"type": "websocket.http.response.start", "status": status, "headers": response_headers}
        )
        await self.send({"type": "websocket.http.response.body", "body": body})

    async def send_denial_response(self, response: ASGIApp) -> None:
        """Deny the connection with an HTTP response, before ``accept``.

        Args:
            response: Any ASGI application that sends one HTTP response, such as a Starlette
                ``Response``; its ``http.response.*`` messages go out as
                ``websocket.http.response.*``.

        Raises:
            RuntimeError: The server lacks the ``websocket.http.response`` extension.
        """
        if "websocket.http.response" in self.scope.get("extensions", {}):
            await response(self.scope, self.receive, self.send)
        else:
            raise RuntimeError(
                "The server doesn't support the Websocket Denial Response extension."
            )


# A session moves a WebSocket to a subclass whose receive and send are the session's own;
# subclasses that override one keep theirs (SessionCore.__init_subclass__).
WebSocket._session_bindings = ("receive", "send")


def _wrong_data(method: str, wanted: str, data: object) -> str:
    hint = " (use send_bytes for bytes)" if method == "send_text" else " (use send_text for str)"
    if not isinstance(data, (str, bytes, bytearray, memoryview)):
        hint = " (encode it first, or use send_json)"
    return f"{method}() needs {wanted}, not {type(data).__name__}{hint}"


async def _checkpointed(receive: Receive) -> Message:
    """Call a server's ``receive`` that is not known to checkpoint, as a full checkpoint."""
    await trio.lowlevel.checkpoint_if_cancelled()
    task = trio.lowlevel.current_task()
    points = task._schedule_points if _COUNTS_SCHEDULE_POINTS else -1
    message = await receive()
    if not _COUNTS_SCHEDULE_POINTS or task._schedule_points == points:
        await trio.lowlevel.cancel_shielded_checkpoint()
    return message
