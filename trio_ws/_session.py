"""The session machinery behind ``async with websocket:``, and the state both modes share.

:class:`SessionCore` is the lowest base of :class:`~trio_ws.WebSocket`. It holds the connection's
state (what the client and the application have done, the close code and who closed), and
everything a session adds on top of plain use. The rules it keeps:

* **One reader.** Only one task at a time calls the server's ``receive``. When that is a trio
  memory channel's ``receive`` (Hypercorn's trio worker, ``trio_ws.serve``'s data plane,
  :mod:`trio_ws.testing`), a task inside ``receive_*`` reads the channel itself: no task hop on
  the hot path, and trio's channels lose nothing when cancelled. Otherwise, and while somebody
  waits for the disconnect, a *pump* task reads for the session into a bounded inbox.
* **Read ahead only to find the disconnect.** Before each send the session looks at the end
  of the server's channel buffer without taking anything: a disconnect there is noted at once
  (state, code, waiters, ``cancel_on_disconnect`` scopes) while the data
  before it stays for receivers, in order. Only when the server's own reader is blocked on a
  full channel (the disconnect may be behind it) does the session move messages into its inbox.
* **An application that receives is never closed for overflow.** When the inbox is full, the
  session stops reading ahead and the client is slowed by TCP backpressure. Only when no task
  takes a message from a full inbox for ``inbox_full_timeout`` seconds while the client keeps
  sending does the session close with 1008 (``on_inbox_full="close"``, the default).
* **Every public async method is a checkpoint** on every path. A server ``send`` that returns
  without yielding (Hypercorn's, once it has processed the client's close) is followed by a
  checkpoint, so a send loop can never starve the server's reader.
* **The lifetime** (entering, the exit table, helper tasks, statistics) is in
  :mod:`trio_ws._session_scope`, the next class up.

The Starlette-compatible API and plain mode live in :mod:`trio_ws._websocket`. Once a session
is entered, ``receive`` and ``send`` are bound on the instance to :meth:`~SessionCore._session_receive`
and :meth:`~SessionCore._session_send` (a subclass that overrides them keeps its own, which
reaches the session through ``super()``).

trio private names used here (pinned by ``tests/test_session_private.py``):
``Task._schedule_points`` (trio's own counter behind :func:`trio.testing.assert_checkpoints`),
and a memory channel's ``_state.data`` / ``_state.send_tasks`` (its buffer and blocked senders).
Where they are missing the session falls back to a checkpoint after every send and to reading
ahead with ``receive_nowait``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, cast

import trio

from ._checks import check_bool, check_int, check_seconds
from ._exceptions import WebSocketDisconnect
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
    pass

__all__ = [
    "DATAPLANE_EXTENSION",
    "SHUTDOWN_EXTENSION",
    "ClosedBy",
    "SessionCore",
    "SessionStatistics",
]

logger = logging.getLogger("trio_ws")

_CONNECTING = WebSocketState.CONNECTING
_CONNECTED = WebSocketState.CONNECTED
_DISCONNECTED = WebSocketState.DISCONNECTED

ClosedBy = Literal["client", "application", "server"]

#: The scope extension through which a server asks the sessions it cancels to close with its
#: own code: ``scope["extensions"][SHUTDOWN_EXTENSION] = {"close_code": 1001, "reason": ...}``.
SHUTDOWN_EXTENSION = "trio_ws.shutdown"
#: The scope extension ``trio_ws.serve`` sets on connections its own data plane carries. There
#: the server's ``send`` is cancel-safe (a cancelled send leaves the stream untouched or aborts
#: the connection; a compressor never goes out of step), so the session does not shield sends.
DATAPLANE_EXTENSION = "trio_ws.dataplane"
#: The key with which a server marks a ``websocket.disconnect`` it caused itself (a protocol
#: error, an oversize message, a missed pong): its value is ``"server"``.
CLOSED_BY_KEY = "trio_ws.closed_by"
_OVERFLOW_REASON = "too many unread messages"
# While the inbox is full and somebody waits for the disconnect: how often, in seconds, the pump
# looks at the end of the server's channel for it.
_LOOK_INTERVAL = 0.25
_SEND_TIMEOUT_REASON = "send timed out"


@dataclass(frozen=True)
class SessionStatistics:
    """A snapshot of a session's counters, from :meth:`WebSocket.statistics`.

    Attributes:
        messages_received: Data messages taken from the server.
        bytes_received: Their payload size (text counted in UTF-8).
        messages_sent: Data messages handed to the server.
        bytes_sent: Their payload size (text counted in UTF-8).
        queued_in: Messages read ahead from the server and waiting in the inbox.
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
    closed_by: Literal["client", "application", "server"] | None


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _offers_compression(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"sec-websocket-extensions" and b"permessage-deflate" in value.lower():
            return True
    return False


def _check_lost_subprotocol(scope: Scope, subprotocol: str) -> None:
    """Explain a subprotocol the client offered in a header the server left out of the scope.

    RFC 6455 section 11.3.4: repeated ``Sec-WebSocket-Protocol`` headers form one list.
    Hypercorn's trio worker keeps only the last header in ``scope["subprotocols"]`` and refuses
    an accept of any other (`trio_ws.serve` combines them); say so instead of "not offered".

    Raises:
        ValueError: The client did offer ``subprotocol``, but the server cannot select it.
    """
    for name, value in scope.get("headers") or ():
        if name.lower() == b"sec-websocket-protocol" and subprotocol in (
            part.strip() for part in value.decode("latin-1").split(",")
        ):
            raise ValueError(
                f"the client offered subprotocol {subprotocol!r} in one of several "
                "Sec-WebSocket-Protocol headers, but this server kept only the last one in "
                f"scope['subprotocols'] ({list(scope.get('subprotocols') or ())}) and would "
                "refuse it (Hypercorn's trio worker does; trio_ws.serve combines the headers "
                "as RFC 6455 section 11.3.4 says)"
            )


def _is_channel_receive(receive: Receive) -> bool:
    return getattr(receive, "__func__", None) is trio.MemoryReceiveChannel.receive and isinstance(
        getattr(receive, "__self__", None), trio.MemoryReceiveChannel
    )


def _peekable_state(receive: Receive) -> Any:
    """The trio channel's shared state, whose buffer can be looked at without taking from it."""
    state = getattr(getattr(receive, "__self__", None), "_state", None)
    if isinstance(getattr(state, "data", None), deque) and hasattr(state, "send_tasks"):
        return state
    return None


# Where trio lacks the counter (a future release), every send ends with a checkpoint.
_COUNTS_SCHEDULE_POINTS = hasattr(trio.lowlevel.Task, "_schedule_points")


class SessionCore(HTTPConnection[StateT]):
    """The connection state both modes share, and the session machinery.

    Not used directly: :class:`~trio_ws.WebSocket` is the class to construct; its
    docstring lists the constructor arguments.
    """

    #: The methods a session replaces with its own (``receive``, ``send``), saving a coroutine
    #: frame per message: entering a session moves the instance to a subclass that has the
    #: session's versions under these names (see ``SessionScope.__aenter__``). A subclass
    #: that overrides one keeps its own, which reaches the session through ``super()``.
    _session_bindings: ClassVar[tuple[str, ...]] = ()

    # The public state, declared here so that WebSocket's assignments have one declared type.
    client_state: WebSocketState
    application_state: WebSocketState
    close_code: int | None
    close_reason: str
    closed_by: ClosedBy | None

    # HTTPConnection's own attributes (the scope and its cached views) stay in __dict__.
    __slots__ = (
        "_accepted",
        "_bytes_in",
        "_bytes_out",
        "_close_on_invalid_json",
        "_close_timeout",
        "_disconnect",
        "_disconnect_scopes",
        "_disconnected",
        "_full_since",
        "_inbox",
        "_inbox_timeout",
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
        "_receive_checkpoints",
        "_send",
        "_send_timeout",
        "_sending",
        "_server_pending",
        "_server_queue",
        "_shield",
        "_shield_option",
        "_shutdown_code",
        "_waiters",
        "_write_now",
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
        inbox_full_timeout: float = 10.0,
        max_message_size: int | None = None,
        close_on_invalid_json: bool = False,
        close_timeout: float = 2.0,
        send_timeout: float | None = None,
        shutdown_close_code: int = 1012,
        shield_sends: bool | None = None,
        json_codec: JSONCodec | None = None,
    ) -> None:
        if not isinstance(scope, dict) or scope.get("type") != "websocket":
            shown = scope.get("type") if isinstance(scope, dict) else type(scope).__name__
            raise ValueError(f"WebSocket needs a scope of type 'websocket', not {shown!r}")
        if not callable(receive) or not callable(send):
            raise TypeError("WebSocket needs the ASGI receive and send callables")
        super().__init__(scope)
        check_int("max_queued_messages", max_queued_messages, minimum=1)
        if on_inbox_full not in ("close", "block"):
            raise ValueError(f'on_inbox_full must be "close" or "block", not {on_inbox_full!r}')
        check_seconds("inbox_full_timeout", inbox_full_timeout, allow_zero=False)
        check_int("max_message_size", max_message_size, minimum=0, optional=True)
        check_bool("close_on_invalid_json", close_on_invalid_json)
        check_seconds("close_timeout", close_timeout)
        check_seconds("send_timeout", send_timeout, optional=True, allow_zero=False)
        check_int("shutdown_close_code", shutdown_close_code, minimum=0)
        validate_close(shutdown_close_code, None)
        check_bool("shield_sends", shield_sends, optional=True)
        self._receive = receive
        self._send = send
        self.client_state: WebSocketState = _CONNECTING
        self.application_state: WebSocketState = _CONNECTING
        self.close_code: int | None = None
        self.close_reason: str = ""
        self.closed_by: ClosedBy | None = None
        self._max_queued = max_queued_messages
        self._inbox_timeout: float = math.inf if on_inbox_full == "block" else inbox_full_timeout
        self._max_size: float = math.inf if max_message_size is None else max_message_size
        self._close_on_invalid_json = close_on_invalid_json
        if json_codec is None:
            json_codec = scope.get(JSON_CODEC_SCOPE_KEY) or JSONCodec.standard()
        elif not isinstance(json_codec, JSONCodec):
            raise TypeError(f"json_codec must be a trio_ws.JSONCodec, not {json_codec!r}")
        self._json: JSONCodec = json_codec
        self._close_timeout = close_timeout
        self._send_timeout = send_timeout
        self._shutdown_code = shutdown_close_code
        self._shield_option = shield_sends
        # A trio channel's receive is a full checkpoint on every path; other servers' receive
        # gets one added in plain mode (see WebSocket.receive).
        self._receive_checkpoints = _is_channel_receive(receive)
        # Session state; _nursery is None until the session is entered, and the inbox is
        # created when a message first has to wait in it (an idle session stays small).
        self._inbox: deque[Message] | None = None
        self._full_since: float | None = None
        self._nursery: trio.Nursery | None = None
        self._nursery_manager: Any = None
        self._nowait: Callable[[], Message] | None = None
        self._server_queue: Any = None  # the trio channel's state, to peek at its buffer
        self._server_pending = False
        self._shield = True
        self._reading = False
        self._waiters: trio.lowlevel.ParkingLot | None = None
        self._disconnect: Message | None = None
        self._disconnected: trio.Event | None = None
        self._disconnect_scopes: set[trio.CancelScope] | None = None
        self._pump_running = False
        self._accepted = False
        self._sending = 0
        # The server's synchronous send (trio_ws.serve's data plane), set when a session begins.
        self._write_now: Callable[[str | bytes], bool] | None = None
        self._messages_in = self._bytes_in = self._messages_out = self._bytes_out = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overridden = {name for name in cls._session_bindings if name in vars(cls)}
        if overridden:
            cls._session_bindings = tuple(n for n in cls._session_bindings if n not in overridden)

    # ------------------------------------------------------------------ session receive

    async def _session_receive(self) -> Message:
        """The session's ``receive``: the inbox first, then the server, then the disconnect."""
        while True:
            inbox = self._inbox
            if inbox:
                await trio.lowlevel.checkpoint_if_cancelled()
                message = inbox.popleft()
                self._full_since = None
                self._wake()  # the pump or a sender may wait for room
                await trio.lowlevel.cancel_shielded_checkpoint()
                return message
            if self._disconnect is not None and not self._server_pending:
                await trio.lowlevel.checkpoint()
                return self._disconnect
            if not self._reading and self._nowait is not None:
                # Read the server's channel ourselves: trio channels lose nothing when
                # cancelled, and their receive is a full checkpoint.
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
                if self._disconnect is None:
                    return message  # websocket.connect
                if self._server_pending:
                    continue  # an oversize message after the client left: skip it
                return self._disconnect
            await self._wait_for_change()

    def _record_disconnect(self, message: Message) -> None:
        if self.closed_by is None:
            self.closed_by = "server" if message.get(CLOSED_BY_KEY) == "server" else "client"
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
            self._server_pending = False
            self._on_disconnect(message)
            return False
        return True  # websocket.connect

    def _on_disconnect(self, message: Message) -> None:
        if self._disconnect is not None:
            return  # the client's reply after the session closed: the app already knows
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
        """Park until a message is queued or taken, the reader role is free, or the client left."""
        if self._waiters is None:
            self._waiters = trio.lowlevel.ParkingLot()
        await self._waiters.park()

    def _inbox_expired(self) -> bool:
        """Whether the inbox has been full, with nobody taking from it, for the timeout."""
        full_since = self._full_since
        return full_since is not None and trio.current_time() - full_since >= self._inbox_timeout

    async def _pump(self) -> None:
        inbox = self._get_inbox()
        await trio.lowlevel.checkpoint()
        task = trio.lowlevel.current_task()
        try:
            while self._disconnect is None:
                if self._reading:
                    await self._wait_for_change()
                    continue
                if len(inbox) >= self._max_queued and not self._inbox_expired():
                    # Backpressure: wait for a receiver to take one, at most until the
                    # inbox-full timeout; then read once more to see what is waiting. Meanwhile
                    # look at the end of the server's channel now and then for the disconnect.
                    if self._disconnect_queued():
                        break
                    deadline = cast(float, self._full_since) + self._inbox_timeout
                    if self._server_queue is not None:
                        deadline = min(deadline, trio.current_time() + _LOOK_INTERVAL)
                    with trio.move_on_at(deadline):
                        await self._wait_for_change()
                    continue
                points = task._schedule_points if _COUNTS_SCHEDULE_POINTS else -1
                self._reading = True
                try:
                    message = await self._receive()
                finally:
                    self._reading = False
                if self._incoming(message):
                    self._queue(message)
                self._wake()
                if not _COUNTS_SCHEDULE_POINTS or task._schedule_points == points:
                    await trio.lowlevel.cancel_shielded_checkpoint()  # a server that never yields
        finally:
            self._pump_running = False

    def _queue(self, message: Message) -> None:
        """Put a data message read ahead in the inbox, or close 1008 if it overflowed."""
        inbox = self._get_inbox()
        if len(inbox) >= self._max_queued:
            # Only reached once the inbox-full timeout has passed: the client kept sending
            # while nobody received.
            self._end_conversation(1008, _OVERFLOW_REASON)
            return
        inbox.append(message)
        if len(inbox) >= self._max_queued and self._full_since is None:
            self._full_since = trio.current_time()
        self._wake()

    def _end_conversation(self, code: int, reason: str) -> None:
        """Close on the application's behalf (overflow, oversize message, bad JSON, timeout).

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

    def _disconnect_queued(self) -> bool:
        """Note a disconnect waiting at the end of the server's channel; say whether there was."""
        queue = self._server_queue
        if queue is None:
            return False
        data = queue.data
        if data and data[-1]["type"] == "websocket.disconnect":
            self._server_pending = True
            self._on_disconnect(data[-1])
            return True
        return False

    def _look_ahead(self) -> None:
        """Before a send: note a disconnect the server has queued, without taking any data.

        The disconnect is always the last message a server queues, so a look at the end of
        the channel's buffer finds it behind any amount of unread data. Only when the server's
        own reader waits for room (the disconnect may still be in the socket behind it), and
        no task is reading, are messages moved into the inbox, up to its limit.
        """
        queue = self._server_queue
        if queue is not None and (self._disconnect_queued() or not queue.send_tasks):
            return
        if self._reading or self._pump_running or self._nowait is None:
            return
        receive_nowait = self._nowait
        inbox = self._get_inbox()
        while self._disconnect is None:
            if len(inbox) >= self._max_queued and not self._inbox_expired():
                return
            try:
                message = receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            if self._incoming(message):
                self._queue(message)

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
        """The session's ``send``: the send gate, then the server's ``send``, then a checkpoint
        if the server did not yield."""
        if message["type"] != "websocket.send":
            await self._session_send_control(message)
            return
        text = message.get("text")
        if text is None:
            data = message.get("bytes")
            if data.__class__ is not bytes and not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(
                    "a websocket.send message needs 'text' (str) or 'bytes' (bytes), "
                    f"not {type(data).__name__}"
                )
            size = len(data)
        elif text.__class__ is str:
            size = len(text) if text.isascii() else len(text.encode())
        else:
            raise TypeError(f"websocket.send 'text' must be a str, not {type(text).__name__}")
        queue = self._server_queue
        if self._disconnect is None and (queue is None or queue.data or queue.send_tasks):
            self._look_ahead()
        if self._disconnect is not None and self.application_state is _CONNECTED:
            await trio.lowlevel.checkpoint()
            raise WebSocketDisconnect(self.close_code or 1006, self.close_reason)
        if self.application_state is not _CONNECTED:
            # Let the state machine raise Starlette's error.
            application_transition(self.application_state, message)
        task = trio.lowlevel.current_task()
        points = task._schedule_points if _COUNTS_SCHEDULE_POINTS else -1
        self._sending += 1
        try:
            if self._send_timeout is not None:
                await self._send_with_deadline(message)
            elif self._shield:
                await trio.lowlevel.checkpoint_if_cancelled()
                with trio.CancelScope(shield=True):
                    await self._send(message)
            else:
                await self._send(message)
        except OSError as exc:
            raise self._refused(exc) from None
        finally:
            self._sending -= 1
        self._messages_out += 1
        self._bytes_out += size
        if not _COUNTS_SCHEDULE_POINTS or task._schedule_points == points:
            # The server took the message without yielding (Hypercorn does once it has
            # processed the client's close): checkpoint here, so that a send loop lets the
            # server's reader run. A cancellation delivered here leaves the message with the
            # server.
            await trio.lowlevel.checkpoint()

    def _send_now(self, data: str | bytes) -> bool:
        """Send a data message without waiting, if the server's send path can take it so.

        Only under ``trio_ws.serve``'s data plane, while the application may send, no other
        send is under way and no disconnect is known or queued: then this is what
        :meth:`_session_send` would do, minus the checkpoint. Otherwise it does nothing and
        returns False (the caller sends as usual). For broadcast's fan-out, which hands one
        message to many sessions from the publishing task.
        """
        write = self._write_now
        if write is None or self._sending or self.application_state is not _CONNECTED:
            return False
        queue = self._server_queue
        if self._disconnect is not None or queue is None or queue.send_tasks:
            return False
        if queue.data and self._disconnect_queued():
            return False
        if not write(data):
            return False
        self._messages_out += 1
        self._bytes_out += _utf8_size(data) if isinstance(data, str) else len(data)
        return True

    def _refused(self, exc: OSError) -> WebSocketDisconnect:
        """What a send the server refused with ``OSError`` raises.

        A server refuses sends once the connection is over (trio_ws.serve's data plane does,
        as the ASGI spec asks); the disconnect it queued meanwhile says how it ended. When
        none is queued yet (the channel is full), the refusal's ``disconnect`` attribute (the
        data plane's) does, else 1006.
        """
        if self._disconnect is None:
            self._disconnect_queued()
        if self._disconnect is not None:
            # Decided: by the client, the server, or the session itself (a send timeout, an
            # overflow) in another task, whose abort is why this send was refused.
            return WebSocketDisconnect(self.close_code or 1006, self.close_reason)
        told = getattr(exc, "disconnect", None)
        if isinstance(told, dict) and told.get("type") == "websocket.disconnect":
            # The same message the server queues next: close_code, close_reason and closed_by
            # say now what they will say once it is read.
            self._record_disconnect(told)
            return WebSocketDisconnect(int(told.get("code") or 1006), told.get("reason") or "")
        return WebSocketDisconnect(1006)

    async def _send_with_deadline(self, message: Message) -> None:
        with trio.move_on_after(cast(float, self._send_timeout)) as scope:
            if self._shield:
                with trio.CancelScope(shield=True):
                    await self._send(message)
            else:
                await self._send(message)
        if scope.cancelled_caught:
            # Under trio_ws.serve's data plane the cancelled write aborted the connection;
            # elsewhere the close below goes out if the connection still takes it.
            self._end_conversation(1011, _SEND_TIMEOUT_REASON)
            raise WebSocketDisconnect(1011, _SEND_TIMEOUT_REASON)

    async def _session_send_control(self, message: Message) -> None:
        """Accept, close and denial messages: validated first, sent shielded."""
        message_type = message["type"]
        state = self.application_state
        if message_type == "websocket.close":
            if state is _DISCONNECTED or (state is _CONNECTED and self._disconnect is not None):
                await trio.lowlevel.checkpoint()
                return  # closing twice, or after the client left, is a no-op in a session
            validate_close(message.get("code", 1000), message.get("reason"))
        elif message_type == "websocket.accept":
            subprotocol = message.get("subprotocol")
            offered = self.scope.get("subprotocols") or ()
            if subprotocol is not None and subprotocol not in offered:
                _check_lost_subprotocol(self.scope, subprotocol)
            validate_accept(offered, subprotocol, message.get("headers") or ())
        await trio.lowlevel.checkpoint_if_cancelled()
        self.application_state = self._transition(state, message)
        task = trio.lowlevel.current_task()
        points = task._schedule_points if _COUNTS_SCHEDULE_POINTS else -1
        try:
            with trio.CancelScope(shield=True):
                await self._send(message)
        except OSError as exc:
            raise self._refused(exc) from None
        if not _COUNTS_SCHEDULE_POINTS or task._schedule_points == points:
            await trio.lowlevel.cancel_shielded_checkpoint()
