"""The session machinery behind ``async with websocket:``, and the state both modes share.

:class:`SessionCore` is the base of :class:`~trio_ws.WebSocket`. It holds the connection's
state (what the client and the application have done, the close code and who closed), and
everything a session adds on top of plain use:

* **The reader role.** Only one task at a time calls the server's ``receive``. When the
  server's ``receive`` is a trio memory channel (Hypercorn's trio worker, :mod:`trio_ws.testing`),
  a task inside ``receive_*`` reads it directly: no extra task hop on the hot path. Otherwise,
  or while somebody waits for the disconnect, a *pump* task reads and queues messages in a
  bounded inbox that receivers take from.
* **The disconnect never waits behind data.** Whoever reads it records the code and reason,
  marks the client side finished, wakes waiters and cancels
  :meth:`~SessionCore.cancel_on_disconnect` scopes. Messages queued before it are still
  delivered first.
* **The send gate.** Before each send, pending messages are moved from the server's channel
  into the inbox without blocking, so a send-only handler learns of the disconnect on its next
  send; sends after the client left raise at once.
* **The exit table.** Leaving the session closes the connection with the code its exit path
  calls for (see :meth:`SessionCore.__aexit__`).
* **Helper tasks and statistics**: :meth:`~SessionCore.start_soon`, :meth:`~SessionCore.start`,
  :meth:`~SessionCore.statistics`.

The Starlette-compatible API and plain mode live in :mod:`trio_ws._websocket`; its
``receive`` and data sends hand over to :meth:`SessionCore._session_receive` and
:meth:`SessionCore._session_send` once the session is entered.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

import trio

from ._exceptions import (
    WebSocketDisconnect,
    WebSocketException,
)
from ._http import HTTPConnection, StateT
from ._json import JSON_CODEC_SCOPE_KEY, JSONCodec
from ._state import (
    WebSocketState,
    application_transition,
    client_transition,
    validate_accept,
    validate_close,
)
from ._types import Message, Receive, Scope, Send

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup
if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["SHUTDOWN_EXTENSION", "SessionCore", "SessionStatistics"]

_CONNECTING = WebSocketState.CONNECTING
_CONNECTED = WebSocketState.CONNECTED
_DISCONNECTED = WebSocketState.DISCONNECTED
_RESPONSE = WebSocketState.RESPONSE

_NORMAL_ENDS = (WebSocketDisconnect, WebSocketException)
# Cancelled from outside, the closing handshake waits only while messages keep coming this often.
_QUIET_LIMIT = 0.2
#: The scope extension through which a server asks the sessions it cancels to close with its
#: own code: ``scope["extensions"][SHUTDOWN_EXTENSION] = {"close_code": 1001, "reason": ...}``.
SHUTDOWN_EXTENSION = "trio_ws.shutdown"
_OVERFLOW_REASON = "too many unread messages"


@dataclass(frozen=True)
class SessionStatistics:
    """A snapshot of a session's counters, from :meth:`WebSocket.statistics`.

    Attributes:
        messages_received: Data messages taken from the server.
        bytes_received: Their payload size (text counted in UTF-8).
        messages_sent: Data messages handed to the server.
        bytes_sent: Their payload size (text counted in UTF-8).
        queued_in: Messages read from the server and waiting in the inbox.
        max_queued_in: The inbox limit (``max_queued_messages``).
        sending: Sends currently inside the server's ``send``.
        receivers_waiting: Tasks waiting inside ``receive_*`` for someone else to read.
        pump_running: Whether the pump task reads on the session's behalf.
        helper_tasks: Tasks in the session's nursery, the pump included.
        close_code: See :attr:`WebSocket.close_code`.
        closed_by: See :attr:`WebSocket.closed_by`.
    """

    messages_received: int
    bytes_received: int
    messages_sent: int
    bytes_sent: int
    queued_in: int
    max_queued_in: int
    sending: int
    receivers_waiting: int
    pump_running: bool
    helper_tasks: int
    close_code: int | None
    closed_by: Literal["client", "application"] | None


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _offers_compression(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"sec-websocket-extensions" and b"permessage-deflate" in value.lower():
            return True
    return False


class SessionCore(HTTPConnection[StateT]):
    """The connection state both modes share, and the session machinery.

    Not used directly: :class:`~trio_ws.WebSocket` is the class to construct; its
    docstring lists the constructor arguments.
    """

    #: Whether entering a session may replace ``receive`` on the instance with
    #: :meth:`_session_receive`, saving a coroutine frame on every message. A subclass that
    #: overrides ``receive`` keeps its own (which reaches the session through ``super()``).
    _direct_session_receive: ClassVar[bool] = False

    # HTTPConnection's own attributes (the scope and its cached views) stay in __dict__.
    __slots__ = (
        "_accepted",
        "_block_when_full",
        "_bytes_in",
        "_bytes_out",
        "_close_on_invalid_json",
        "_close_timeout",
        "_disconnect",
        "_disconnect_scopes",
        "_disconnected",
        "_inbox",
        "_json",
        "_max_queued",
        "_max_size",
        "_messages_in",
        "_messages_out",
        "_nowait",
        "_nursery",
        "_nursery_manager",
        "_pump_running",
        "_reading",
        "_receive",
        "_send",
        "_sending",
        "_server_queue",
        "_shield",
        "_shield_option",
        "_shutdown_code",
        "_waiters",
        "application_state",
        "client_state",
        "close_code",
        "close_reason",
        "closed_by",
    )

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        max_queued_messages: int = 32,
        on_inbox_full: Literal["close", "block"] = "close",
        max_message_size: int | None = None,
        close_on_invalid_json: bool = False,
        close_timeout: float = 2.0,
        shutdown_close_code: int = 1012,
        shield_sends: bool | None = None,
        json_codec: JSONCodec | None = None,
    ) -> None:
        if scope.get("type") != "websocket":
            raise ValueError(
                f"WebSocket needs a scope of type 'websocket', not {scope.get('type')!r}"
            )
        super().__init__(scope)
        if max_queued_messages < 1:
            raise ValueError(f"max_queued_messages must be at least 1, not {max_queued_messages}")
        validate_close(shutdown_close_code, None)
        self._receive = receive
        self._send = send
        self.client_state: WebSocketState = _CONNECTING
        self.application_state: WebSocketState = _CONNECTING
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.closed_by: Literal["client", "application"] | None = None
        if on_inbox_full not in ("close", "block"):
            raise ValueError(f'on_inbox_full must be "close" or "block", not {on_inbox_full!r}')
        self._max_queued = max_queued_messages
        if max_message_size is not None and max_message_size < 0:
            raise ValueError(f"max_message_size must not be negative, not {max_message_size}")
        self._max_size: float = math.inf if max_message_size is None else max_message_size
        self._close_on_invalid_json = close_on_invalid_json
        if json_codec is None:
            json_codec = scope.get(JSON_CODEC_SCOPE_KEY) or JSONCodec.standard()
        elif not isinstance(json_codec, JSONCodec):
            raise TypeError(f"json_codec must be a trio_ws.JSONCodec, not {json_codec!r}")
        self._json: JSONCodec = json_codec
        self._block_when_full = on_inbox_full == "block"
        self._close_timeout = close_timeout
        self._shutdown_code = shutdown_close_code
        self._shield_option = shield_sends
        # Session state; _nursery is None until the session is entered, and the inbox is
        # created when a message first has to wait in it (an idle session stays small).
        self._inbox: deque[Message] | None = None
        self._nursery: trio.Nursery | None = None
        self._nursery_manager: Any = None
        self._nowait: Callable[[], Message] | None = None
        self._server_queue: Any = None  # the trio channel's state, to peek at its buffer
        self._shield = True
        self._reading = False
        self._waiters: trio.lowlevel.ParkingLot | None = None
        self._disconnect: Message | None = None
        self._disconnected: trio.Event | None = None
        self._disconnect_scopes: set[trio.CancelScope] | None = None
        self._pump_running = False
        self._accepted = False
        self._sending = 0
        self._messages_in = self._bytes_in = self._messages_out = self._bytes_out = 0

    # ------------------------------------------------------------------ session receive

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "receive" in vars(cls):
            cls._direct_session_receive = False

    async def _session_receive(self) -> Message:
        """The session's ``receive``: the inbox first, then the reader role."""
        while True:
            inbox = self._inbox
            if inbox:
                await trio.lowlevel.checkpoint_if_cancelled()
                message = inbox.popleft()
                self._wake()  # the pump may wait for room
                await trio.lowlevel.cancel_shielded_checkpoint()
                return message
            if self._disconnect is not None:
                await trio.lowlevel.checkpoint()
                return self._disconnect
            if not self._reading and self._nowait is not None:
                # Fast path: read the server's channel ourselves; a trio channel's receive
                # loses nothing when cancelled.
                self._reading = True
                try:
                    message = await self._receive()
                finally:
                    self._reading = False
                    if self._waiters:
                        self._waiters.unpark_all()
                if message["type"] == "websocket.receive" and self.client_state is _CONNECTED:
                    # The hot path, inlined from _incoming.
                    self._messages_in += 1
                    text = message.get("text")
                    if text is None:
                        size = len(message["bytes"])
                    else:
                        size = len(text) if text.isascii() else len(text.encode())
                    self._bytes_in += size
                    if size <= self._max_size:
                        return message
                    self._too_big(size)
                else:
                    self._incoming(message)
                return message if self._disconnect is None else self._disconnect
            await self._wait_for_change()

    def _record_disconnect(self, message: Message) -> None:
        if self.closed_by is None:
            self.closed_by = "client"
            self.close_code = message.get("code", 1005)
            self.close_reason = message.get("reason") or ""

    def _incoming(self, message: Message) -> bool:
        """Apply a message just read from the server; return whether it is data for a receiver."""
        message_type = message["type"]
        if message_type != "websocket.receive" or self.client_state is not _CONNECTED:
            self.client_state = client_transition(self.client_state, message_type)
        if message_type == "websocket.receive":
            self._messages_in += 1
            text = message.get("text")
            size = len(message["bytes"]) if text is None else _utf8_size(text)
            self._bytes_in += size
            if size > self._max_size:
                self._too_big(size)
                return False
            return True
        if message_type == "websocket.disconnect":
            self._on_disconnect(message)
            return False
        return True  # websocket.connect

    def _on_disconnect(self, message: Message) -> None:
        if self._disconnect is not None:
            return  # the client's reply after an overflow close: the app already knows
        self._disconnect = message
        self._record_disconnect(message)
        if self._disconnected is not None:
            self._disconnected.set()
        if self._disconnect_scopes:
            for scope in self._disconnect_scopes:
                scope.cancel()
        self._wake()

    def _wake(self) -> None:
        if self._waiters:
            self._waiters.unpark_all()

    async def _wait_for_change(self) -> None:
        """Park until a message is queued, the reader role is free, or the client left."""
        if self._waiters is None:
            self._waiters = trio.lowlevel.ParkingLot()
        await self._waiters.park()

    async def _pump(self) -> None:
        inbox = self._get_inbox()
        await trio.lowlevel.checkpoint()
        try:
            while self._disconnect is None:
                if self._reading or (self._block_when_full and len(inbox) >= self._max_queued):
                    await self._wait_for_change()
                    continue
                self._reading = True
                try:
                    message = await self._receive()
                finally:
                    self._reading = False
                if self._incoming(message):
                    self._queue(message)
                self._wake()
        finally:
            self._pump_running = False

    def _queue(self, message: Message) -> bool:
        """Put a data message in the inbox; return whether another may follow it."""
        inbox = self._get_inbox()
        if len(inbox) >= self._max_queued:
            # Only reached with on_inbox_full="close": the client sent more than the inbox
            # holds while nobody received.
            self._end_conversation(1008, _OVERFLOW_REASON)
            return False
        inbox.append(message)
        self._wake()
        return not self._block_when_full or len(inbox) < self._max_queued

    def _end_conversation(self, code: int, reason: str) -> None:
        """Close on the application's behalf (inbox overflow, oversize message, bad JSON).

        The application sees a disconnect with ``code`` at once (after the messages already
        queued); a helper task sends the close frame and discards what the client still sends,
        until its side of the closing handshake, so the server's queue keeps draining.
        """
        if self._disconnect is not None or self.application_state is not _CONNECTED:
            # Already over: the client left or the application closed, and what still comes
            # in (while closing, or after an earlier end) is being discarded anyway.
            return
        close = {"type": "websocket.close", "code": code, "reason": reason}
        self._note_close(close)
        self._on_disconnect({**close, "type": "websocket.disconnect"})
        cast(trio.Nursery, self._nursery).start_soon(self._close_on_behalf, close)

    async def _close_on_behalf(self, close: Message) -> None:  # noqa: ASYNC910
        # Shielded on purpose: the close must go out even as the session ends.
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + self._close_timeout
            with contextlib.suppress(OSError):
                await self._send(close)
            while self.client_state is not _DISCONNECTED:
                self._incoming(await self._receive())

    def _too_big(self, size: int) -> None:
        self._end_conversation(1009, f"message of {size} bytes exceeds {self._max_size}")

    def _get_inbox(self) -> deque[Message]:
        if self._inbox is None:
            self._inbox = deque()
        return self._inbox

    def _drain_nowait(self, message: Message) -> None:
        """Queue ``message`` and whatever else the server already has, without blocking."""
        receive_nowait = self._nowait
        assert receive_nowait is not None
        while self._incoming(message) and self._queue(message):
            try:
                message = receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return

    # ------------------------------------------------------------------ session send

    def _transition(self, state: WebSocketState, message: Message) -> WebSocketState:
        """Check a non-data send against the state machine and note what it means."""
        new_state = application_transition(state, message)
        message_type = message["type"]
        if message_type == "websocket.close":
            self._note_close(message)
        elif message_type == "websocket.accept":
            self._accepted = True
        return new_state

    def _note_close(self, message: Message) -> None:
        if self.closed_by is None:
            self.closed_by = "application"
            self.close_code = message.get("code", 1000)
            self.close_reason = message.get("reason") or ""

    async def _session_send(self, message: Message) -> None:
        message_type = message["type"]
        if message_type == "websocket.send":
            receive_nowait = self._nowait
            queue = self._server_queue
            if (
                self._disconnect is None
                and receive_nowait is not None
                and not self._reading
                and (queue is None or queue.data or queue.send_tasks)
                and not (self._block_when_full and len(self._inbox or ()) >= self._max_queued)
            ):
                # Whatever the server has queued, its disconnect included, goes to the inbox.
                try:
                    pending = receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    pass
                else:
                    self._drain_nowait(pending)
            if self._disconnect is not None and self.application_state is _CONNECTED:
                await trio.lowlevel.checkpoint()
                raise WebSocketDisconnect(self.close_code or 1006, self.close_reason)
            if self.application_state is not _CONNECTED:
                # Let the state machine raise Starlette's error.
                application_transition(self.application_state, message)
            self._sending += 1
            try:
                if self._shield:
                    with trio.CancelScope(shield=True):
                        await self._send(message)
                else:
                    await self._send(message)
            except OSError:
                raise WebSocketDisconnect(code=1006)  # noqa: B904 (as in plain mode)
            finally:
                self._sending -= 1
            self._messages_out += 1
            text = message.get("text")
            if text is None:
                self._bytes_out += len(message["bytes"])
            else:
                self._bytes_out += len(text) if text.isascii() else len(text.encode())
            return
        state = self.application_state
        if message_type == "websocket.close":
            if state is _DISCONNECTED or (state is _CONNECTED and self._disconnect is not None):
                await trio.lowlevel.checkpoint()
                return  # closing twice, or after the client left, is a no-op in a session
            validate_close(message.get("code", 1000), message.get("reason"))
        elif message_type == "websocket.accept":
            validate_accept(
                self.scope.get("subprotocols", ()),
                message.get("subprotocol"),
                message.get("headers") or (),
            )
        self.application_state = self._transition(state, message)
        try:
            with trio.CancelScope(shield=True):
                await self._send(message)
        except OSError:
            raise WebSocketDisconnect(code=1006)  # noqa: B904 (as in plain mode)

    # ------------------------------------------------------------------ session

    async def __aenter__(self) -> Self:
        """Enter the session: open the connection's nursery and take over receiving."""
        if self._nursery_manager is not None:
            raise RuntimeError("this WebSocket session was already entered")
        owner = getattr(self._receive, "__self__", None)
        if isinstance(owner, trio.MemoryReceiveChannel) and (
            getattr(self._receive, "__func__", None) is trio.MemoryReceiveChannel.receive
        ):
            self._nowait = owner.receive_nowait
            # Peeking at the channel's buffer saves a raised WouldBlock on every send (about 2%
            # of an echo's instructions). The attributes are trio's own, unchanged since trio
            # 0.11; where they are missing, the probe raises and catches instead.
            state = getattr(owner, "_state", None)
            if isinstance(getattr(state, "data", None), deque) and hasattr(state, "send_tasks"):
                self._server_queue = state
        option = self._shield_option
        self._shield = _offers_compression(self.scope) if option is None else option
        self._nursery_manager = trio.open_nursery()
        self._nursery = await self._nursery_manager.__aenter__()
        if type(self)._direct_session_receive:
            vars(self)["receive"] = self._session_receive
        if self.client_state is _DISCONNECTED:
            self._disconnect = {"type": "websocket.disconnect", "code": self.close_code or 1005}
        elif self._nowait is None:
            # The server's receive may not be cancel-safe: only the pump calls it.
            self._start_pump()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Leave the session: stop helper tasks, then close with the exit path's code.

        ======================================  ==========================================
        how the body ended                      what the client sees, what propagates
        ======================================  ==========================================
        returned (after accept)                 close 1000
        returned before accept                  denial (HTTP 403)
        :class:`WebSocketDisconnect`            nothing to send; suppressed
        :class:`WebSocketException`             close with its code and reason; suppressed
        any other exception (body or helper)    close 1011; the exception propagates
        cancelled from outside                  close ``shutdown_close_code`` (1012); the
                                                cancellation propagates
        ======================================  ==========================================

        Closing is shielded and time-boxed by ``close_timeout``, and waits for the client's
        closing handshake so the server's queue never fills up behind a finished handler.
        """
        nursery = cast(trio.Nursery, self._nursery)
        nursery.cancel_scope.cancel()
        helper_errors: BaseExceptionGroup[BaseException] | None = None
        try:
            await self._nursery_manager.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            _, helper_errors = group.split(
                lambda e: e is exc or isinstance(e, (WebSocketDisconnect, trio.Cancelled))
            )
        # Outside the nursery now: an enclosing scope that is still cancelled means the
        # cancellation came from outside; otherwise our nursery cancelled the body because
        # a helper task ended with an error or a disconnect.
        cancelled = isinstance(exc, trio.Cancelled)
        from_outside = cancelled and trio.current_effective_deadline() == -math.inf
        closing: WebSocketException | None = None
        if helper_errors is not None:
            closing_group, helper_errors = helper_errors.split(WebSocketException)
            if closing_group is not None:
                closing = cast(WebSocketException, _first_leaf(closing_group))
        if isinstance(exc, WebSocketException):
            closing = exc
        ends_normally = exc is None or cancelled or isinstance(exc, _NORMAL_ENDS)
        if from_outside:
            # A server that drains its sessions (trio_ws.serve) says which code to send.
            notice = self.scope.get("extensions", {}).get(SHUTDOWN_EXTENSION) or {}
            code = notice.get("close_code") or self._shutdown_code
            reason = notice.get("reason", "") if notice.get("close_code") else ""
        elif helper_errors is not None or not ends_normally:
            code, reason = 1011, ""
        elif closing is not None:
            code, reason = closing.code, closing.reason
        else:
            code, reason = 1000, ""
        await self._close_for_exit(code, reason, quiet_limit=_QUIET_LIMIT if from_outside else None)
        if helper_errors is not None:
            if ends_normally and not from_outside:
                raise helper_errors
            assert exc is not None
            raise BaseExceptionGroup("WebSocket session failed", [exc, *helper_errors.exceptions])
        if from_outside:
            return False
        return ends_normally

    async def _close_for_exit(  # noqa: ASYNC910
        self, code: int, reason: str, *, quiet_limit: float | None
    ) -> None:
        # Shielded on purpose: it must run when cancelled. __aexit__ checkpointed before it.
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + self._close_timeout
            if self._disconnect is None:
                message: Message | None = None
                if self.application_state is _CONNECTING:
                    # A denial: servers answer a close before accept with HTTP 403.
                    message = {"type": "websocket.close", "code": 1000, "reason": ""}
                elif self.application_state is _CONNECTED:
                    try:
                        validate_close(code, reason)
                    except ValueError:  # a WebSocketException with an unsendable code
                        code, reason = 1011, ""
                    message = {"type": "websocket.close", "code": code, "reason": reason}
                if message is not None:
                    self._note_close(message)
                    self.application_state = _DISCONNECTED
                    with contextlib.suppress(OSError):
                        await self._send(message)
                # Wait for the client's half of the closing handshake, so the server's queue
                # never fills up behind a finished handler (Hypercorn's would wedge). When
                # cancelled from outside, stop as soon as the server goes quiet: a server that
                # is shutting down has stopped reading, and nothing more will come.
                while self._accepted and self._disconnect is None:
                    with trio.move_on_after(
                        math.inf if quiet_limit is None else quiet_limit
                    ) as quiet:
                        incoming = await self._receive()
                    if quiet.cancelled_caught:
                        break
                    self._incoming(incoming)

    def _start_pump(self) -> None:
        if not self._pump_running and self._disconnect is None:
            self._pump_running = True
            cast(trio.Nursery, self._nursery).start_soon(self._pump, name="trio_ws pump")

    def _session(self, what: str) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError(f'{what} needs a session: use "async with websocket:"')
        return self._nursery

    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """Start ``fn(*args)`` in the session's nursery; it is cancelled when the session ends.

        Raises:
            RuntimeError: Not in a session.
        """
        self._session("start_soon").start_soon(fn, *args)

    async def start(self, fn: Callable[..., Awaitable[object]], *args: object) -> Any:
        """Start ``fn(*args)`` in the session's nursery and wait until it reports started.

        Works like :meth:`trio.Nursery.start`: ``fn`` must accept ``task_status``.

        Raises:
            RuntimeError: Not in a session.
        """
        return await self._session("start").start(fn, *args)

    @contextmanager
    def cancel_on_disconnect(self) -> Iterator[trio.CancelScope]:
        """A cancel scope that is cancelled when the client disconnects.

        The cancellation is absorbed when the ``with`` block exits, so the code after it runs
        normally; check ``scope.cancelled_caught`` to tell the two endings apart.

        Raises:
            RuntimeError: Not in a session.
        """
        self._session("cancel_on_disconnect")
        with trio.CancelScope() as scope:
            if self._disconnect is not None:
                scope.cancel()
                yield scope
                return
            if self._disconnect_scopes is None:
                self._disconnect_scopes = set()
            self._disconnect_scopes.add(scope)
            self._start_pump()
            try:
                yield scope
            finally:
                self._disconnect_scopes.discard(scope)

    async def wait_disconnected(self) -> None:
        """Wait until the client has disconnected.

        Raises:
            RuntimeError: Not in a session.
        """
        self._session("wait_disconnected")
        if self._disconnect is not None:
            await trio.lowlevel.checkpoint()
            return
        if self._disconnected is None:
            self._disconnected = trio.Event()
        self._start_pump()
        await self._disconnected.wait()

    def statistics(self) -> SessionStatistics:
        """Return a snapshot of the session's counters and queues."""
        nursery = self._nursery
        return SessionStatistics(
            messages_received=self._messages_in,
            bytes_received=self._bytes_in,
            messages_sent=self._messages_out,
            bytes_sent=self._bytes_out,
            queued_in=len(self._inbox or ()),
            max_queued_in=self._max_queued,
            sending=self._sending,
            receivers_waiting=len(self._waiters) if self._waiters is not None else 0,
            pump_running=self._pump_running,
            helper_tasks=len(nursery.child_tasks) if nursery is not None else 0,
            close_code=self.close_code,
            closed_by=self.closed_by,
        )


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
