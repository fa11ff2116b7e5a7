"""The data plane: ``trio_ws.serve``'s own read loop and write path for an accepted WebSocket.

Hypercorn parses the HTTP/1.1 upgrade request, calls the app and sends the 101 response; from
then on a :class:`DataPlane` owns the connection's plain TCP socket (the hook in
``_internals.py`` hands it over, see there for the Hypercorn side). The I/O is the transport
seam: the read loop (``run``), ``_write``, ``_flush``, ``_after_flush`` and ``_close_socket``;
here on the socket itself (non-blocking ``send``/``recv``, the fast path), and overridden by
``_dataplane_stream.StreamDataPlane`` for TLS (a ``trio.SSLStream``). wsproto's
``FrameProtocol`` does the protocol (framing, unmasking, UTF-8 validation, close codes,
permessage-deflate); this module does the I/O and the semantics:

* **Reading** runs in Hypercorn's own connection task, taken over on its first read after the
  handover: wait until the socket is readable, one ``recv``, parse, put each message into the
  app's trio memory channel (Hypercorn's, so the app's ``receive`` is unchanged). No cancel
  scope per read. Only this task puts into the channel, so the disconnect message is always
  the last one.
* **Writing** is synchronous: a frame is built (and compressed) only when it is queued, and it
  is queued whole. With nothing queued, one non-blocking ``send``; what the socket does not
  take goes into an outbound buffer that a helper task flushes when the socket is writable.
  The app's ``send`` returns after one checkpoint unless the buffer is above the high-water
  mark, then it waits until the buffer is below the low-water mark; cancelling that wait
  aborts the connection (as trio does for a cancelled ``send_all``).
* **Closing.** The client's close code and reason reach the app (1005 for a close frame with
  no code, 1006 for a dropped connection). When the server ends the connection (protocol
  error 1002, invalid UTF-8 1007, message too big 1009, keepalive timeout 1011, abort 1006)
  the client gets a close frame with that code where the socket still allows, and the app
  gets ``{"type": "websocket.disconnect", "code": ..., "reason": ...,
  "trio_ws.closed_by": "server"}``.
* **Keepalive.** Every ``ping_interval`` seconds a ping; no pong within ``ping_timeout``
  closes with 1011 (unless the app is not reading its messages, so pongs cannot be read).
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from ._dataplane_cork import CORK_BYTES, Corker, corker, wake_run_loop
from ._dataplane_read import (
    _CLOSING,
    _DISCARD,
    _FAST_PATH,
    _OPEN,
    CLOSED_BY_KEY,
    HIGH_WATER,
    LOW_WATER,
    Reader,
)
from ._types import Message

__all__ = ["CLOSED_BY_KEY", "DATAPLANE_EXTENSION", "ConnectionClosed", "DataPlane"]

logger = logging.getLogger("trio_ws")

#: ``scope["extensions"]`` key set on connections that the data plane serves. Its meaning: the
#: server's ``send`` is cancel-safe (a cancelled send either did not touch the stream or
#: aborted the connection), so a session need not shield its sends.
DATAPLANE_EXTENSION = "trio_ws.dataplane"

#: How long the server waits for the client's side of a closing handshake before it aborts.
CLOSE_TIMEOUT = 10.0
_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_LINGER_ZERO = struct.pack("ii", 1, 0)


class ConnectionClosed(ConnectionError):
    """A ``websocket.send`` on a connection that is closed (ASGI: send raises ``OSError``).

    ``disconnect`` is the ``websocket.disconnect`` message the app will receive, when it is
    already decided: the app's channel may be full, so the message may not be in it yet.
    """

    def __init__(
        self, message: str = "the WebSocket connection is closed", disconnect: Message | None = None
    ) -> None:
        super().__init__(message)
        self.disconnect = disconnect


#: What :meth:`Handover.take_over` returns.
TakeOver = tuple[
    Any,
    Any,
    Any,
    Callable[[Callable[[], Awaitable[None]]], None],
    Callable[[Any], bool],
]


class Handover(Protocol):
    """What the data plane needs from the server that did the handshake (``_internals``)."""

    #: The server's own ASGI ``send`` (used until the takeover).
    forward: Callable[[Message], Awaitable[None]]

    def can_take_over(self) -> bool:
        """Whether the connection is still one the data plane can take (checked at accept)."""

    def swap_in(self, plane: DataPlane) -> Any:
        """Route the server's reads to ``plane.handle``; return what was there."""

    def swap_out(self, previous: Any) -> None:
        """Undo :meth:`swap_in`."""

    def take_over(self) -> TakeOver | None:
        """After the accept was sent: stop the server's WebSocket code and return the trio
        socket, the transport (its stdlib socket; for :class:`~trio_ws._dataplane_stream.
        StreamDataPlane` the trio ``Stream`` over that socket), the negotiated
        ``FrameProtocol``, a task spawner and a test of whether that ``FrameProtocol`` is
        between messages with nothing buffered; or None if the accept did not open the
        connection."""


def _never(proto: Any) -> bool:
    return False


def _no_spawn(fn: Callable[[], Awaitable[None]]) -> None:  # pragma: no cover - before takeover
    raise RuntimeError("the data plane has not taken the connection over")


async def _closed_send(message: Message) -> None:
    await trio.lowlevel.checkpoint()
    raise ConnectionClosed()


def _header(first: int, length: int) -> bytes:
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return _pack_short(first, 126, length)
    return _pack_long(first, 127, length)


class DataPlane(Reader):
    """One accepted WebSocket connection served on its socket (module docstring)."""

    __slots__ = ()  # all in Reader's

    def __init__(
        self,
        hook: Handover,
        inbox: trio.MemorySendChannel[Any],
        *,
        max_message_size: int,
        ping_interval: float | None,
        ping_timeout: float | None,
        client_close_codes: bool = True,
    ) -> None:
        self._hook: Handover | None = hook
        self._client_codes = client_close_codes
        self._inbox = inbox
        self._max_size = max_message_size
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        # Set at the takeover (``_start``).
        self._sock: Any = None
        self._raw: Any = None
        self._proto: Any = None
        self._spawn: Callable[[Callable[[], Awaitable[None]]], None] = _no_spawn
        #: True when permessage-deflate was negotiated (frames then go through wsproto).
        self.compressed = False
        #: Hypercorn's protocol object, when the takeover did not happen: events go back to it.
        self._fallback: Any = None
        self._ready: trio.Event | None = None
        self._early_close = False
        self._outbox = bytearray()
        self._state = _OPEN
        self._sent_close = False
        self._closed = False
        self._outcome: dict[str, Any] | None = None
        self._announced = False
        self._putting = False
        self._app_gone = False
        self._reading = False
        self._parts: list[Any] = []
        #: Whether frames may take the fast path at all (no extension), and right now.
        self._fast_ok = False
        self._fast = False
        self._idle: Callable[[Any], bool] = _never
        self._text = False
        self._size = 0
        self._drained: trio.lowlevel.ParkingLot | None = None
        self._service_task: trio.lowlevel.Task | None = None
        self._service_parked = False
        self._service_running = False
        self._service_scope: trio.CancelScope | None = None
        self._then: str | None = None  # after the outbox empties: "close" or "shutdown"
        self._close_at = math.inf
        self._pong_due = math.inf
        self._ping_at = math.inf
        self._corker: Corker | None = None
        #: When the first frame held by write coalescing was queued; inf when none is held.
        self._corked_since = math.inf
        self._wrote_turn = -2
        self._draining = False

    @property
    def closed(self) -> bool:
        """True once the socket is closed."""
        return self._closed

    @property
    def active(self) -> bool:
        """True once the data plane serves the connection (after a successful takeover)."""
        return self._proto is not None

    @property
    def open(self) -> bool:
        """True while the app may still send data (taken over, no close sent, not closed)."""
        return self._proto is not None and not (self._sent_close or self._closed)

    # ------------------------------------------------------------------ the handover

    async def _handshake_send(self, message: Message) -> None:
        """A send before the takeover: Hypercorn's, with the takeover around the accept."""
        hook = self._hook
        if hook is None or message["type"] != "websocket.accept" or not hook.can_take_over():
            await (hook.forward if hook is not None else _closed_send)(message)
            return
        # Take Hypercorn's protocol slot before the 101 response is written, so that no
        # frame the client sends after it can reach Hypercorn's WebSocket code.
        self._ready = ready = trio.Event()
        self._fallback = hook.swap_in(self)
        try:
            await hook.forward(message)
            parts = hook.take_over()
        except BaseException:
            self._give_back()
            raise
        finally:
            self._ready = None
            ready.set()
        if parts is None:
            self._give_back()
            return
        self._fallback = None
        self._hook = None
        self._sock, self._raw, self._proto, self._spawn, self._idle = parts
        self.compressed = bool(self._proto.extensions)
        self._corker = corker()
        self._fast = self._fast_ok = _FAST_PATH and not self.compressed
        if self._early_close:
            self._peer_gone()
        elif self._ping_interval is not None:
            self._ping_at = trio.current_time() + self._ping_interval
            self._kick()

    def _give_back(self) -> None:
        """No takeover: Hypercorn keeps the connection, and gets back what we saw of it."""
        hook = self._hook
        if hook is not None and self._fallback is not None:
            hook.swap_out(self._fallback)
        self._proto = None

    async def handle(self, event: Any) -> None:
        """Hypercorn's protocol interface, called by its connection task with each read.

        ``RawData`` starts our read loop (the task stays in it until the connection ends);
        ``Closed`` means the transport is gone.
        """
        data = getattr(event, "data", None)
        ready = self._ready
        if ready is not None:  # the accept is being sent right now
            if data is None:
                self._early_close = True  # Hypercorn's write of the 101 failed
                return  # noqa: ASYNC910
            await ready.wait()
        if self._proto is None:
            fallback = self._fallback
            if fallback is not None:
                await fallback.handle(event)
            return  # noqa: ASYNC910
        if data is None:
            if not self._closed:
                self._peer_gone()
            await self.finish()
        elif not self._reading and not self._closed:
            try:
                await self.run(data)
            except Exception:
                # Hypercorn runs this in its connection task, where an exception would end
                # the whole server: end this connection instead.
                self._internal_error("the data plane's reader failed")
                await self.finish()
        else:
            await trio.lowlevel.checkpoint()

    # ------------------------------------------------------------------ the app's send

    async def send(self, message: Message) -> None:
        """The app's ASGI ``send`` after the handshake: exactly one checkpoint on every path.

        Raises:
            ConnectionClosed: A ``websocket.send`` after the connection closed.
            RuntimeError: A message type that is not allowed after the handshake.
            TypeError: A ``websocket.send`` with neither ``bytes`` nor a ``str`` ``text``.
        """
        if self._proto is None:
            await self._handshake_send(message)
            return
        await trio.lowlevel.checkpoint_if_cancelled()
        kind = message["type"]
        broke = False
        if kind == "websocket.send":
            if self._sent_close or self._closed:
                await trio.lowlevel.cancel_shielded_checkpoint()
                raise ConnectionClosed(disconnect=self._outcome)
            data = message.get("bytes")
            if data is None:
                data = message.get("text")
                if not isinstance(data, str):
                    await trio.lowlevel.cancel_shielded_checkpoint()
                    raise TypeError(f"{data!r} should be a str")
            self._write(self._frame(data), True)
            broke = self._closed
        elif kind == "websocket.close":
            if not (self._sent_close or self._closed):
                self._close_frame(int(message.get("code", 1000)), message.get("reason"))
                self._state = _CLOSING
                self._arm_close_timer()
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            raise RuntimeError(f"unexpected ASGI message {kind!r} after the WebSocket handshake")
        if len(self._outbox) > HIGH_WATER and not self._closed:
            await self._wait_drained()
            # The frame was queued; if the connection broke meanwhile it may not have gone out.
            broke = kind == "websocket.send" and self.closed
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
        if broke:
            raise ConnectionClosed(disconnect=self._outcome)

    def _frame(self, data: str | bytes | bytearray | memoryview) -> bytes | bytearray:
        """One whole data frame: text for ``str``, binary otherwise (compressed if negotiated)."""
        if isinstance(data, str):
            if self.compressed:
                return self._proto.send_data(data, True)  # type: ignore[no-any-return]
            payload = data.encode()
            return _header(0x81, len(payload)) + payload
        if self.compressed:
            return self._proto.send_data(bytes(data), True)  # type: ignore[no-any-return]
        return _header(0x82, len(data)) + data

    def send_data_now(self, data: str | bytes) -> bool:
        """Queue one data message without waiting, when ``send`` would not wait for it either.

        For a task that hands messages to many connections in a row (broadcast's fan-out):
        the frame is built and written (or queued whole) exactly as ``send`` does, but only
        while the connection is open and the outbound buffer is at most the high-water mark;
        otherwise nothing happens and the caller uses ``send``. Never a checkpoint.

        Returns:
            True if the frame was queued (``str`` as text, ``bytes`` as binary).
        """
        if (
            self._proto is None
            or self._sent_close
            or self._closed
            or len(self._outbox) > HIGH_WATER
        ):
            return False
        self._write(self._frame(data), True)
        return True

    async def _wait_drained(self) -> None:
        lot = self._drained
        if lot is None:
            lot = self._drained = trio.lowlevel.ParkingLot()
        try:
            await lot.park()
            while len(self._outbox) > LOW_WATER and not self._closed:
                await lot.park()
        except trio.Cancelled:
            if not self._draining:
                self.abort(1006, "a send was cancelled while the client was not reading")
            # While serve drains, its cancellation ends the app, not the connection: the
            # frame stays queued, whole, ahead of the drain close (``drain``).
            raise

    def drain(self, deadline: float) -> None:
        """``serve`` is shutting down: the app is about to be cancelled and closes with the
        drain code. A send cancelled while it waits on a slow client then keeps its frame
        queued instead of aborting, and the connection is aborted at ``deadline`` (the end of
        the drain window) if it has not closed by then.
        """
        self._draining = True
        if self._closed or self._proto is None:
            return
        self._close_at = min(self._close_at, deadline)
        if self._service_scope is not None:
            self._service_scope.deadline = self._deadline()
        elif not self._service_running:
            self._kick()

    def app_finished(self) -> None:
        """The app returned: close with 1011 if it did not close (as Hypercorn does)."""
        if self._proto is None:
            return
        self._app_gone = True
        if not (self._sent_close or self._closed):
            self._close_frame(1011, None)
            self._state = _CLOSING
            self._arm_close_timer()

    # ------------------------------------------------------------------ writing

    def _write(self, data: bytes | bytearray, data_frame: bool = False) -> None:
        """Queue one whole frame: sent now if the socket takes it, else flushed later.

        A data frame of a streaming connection is held for write coalescing
        (``_dataplane_cork``); any other frame sends what is held along with it.
        """
        if self._closed:
            return
        outbox = self._outbox
        if outbox:
            outbox += data
            if self._corked_since != math.inf and (not data_frame or len(outbox) >= CORK_BYTES):
                self.uncork(waking=False)
            return
        corker = self._corker
        if (
            data_frame
            and corker is not None
            and self._wrote_turn >= corker.turn - 1
            and len(data) < CORK_BYTES
        ):
            # Streaming: hold the frame for the next write or the corker.
            outbox += data
            self._corked_since = trio.current_time()
            corker.pending.append(self)
            return
        self._send_now(data)

    def _send_now(self, data: bytes | bytearray) -> None:
        if self._corker is not None:
            self._wrote_turn = self._corker.turn
        try:
            sent = self._raw.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._peer_gone()
            return
        if sent < len(data):
            self._outbox += memoryview(data)[sent:]
            self._kick()

    @property
    def corked_at(self) -> float:
        """When the first held frame was queued (``_dataplane_cork.Corkable``)."""
        return self._corked_since

    def uncork(self, *, waking: bool) -> None:
        """Send the frames held for coalescing (``_dataplane_cork.Corkable``)."""
        if self._corked_since == math.inf:
            return
        self._corked_since = math.inf
        outbox = self._outbox
        if self._closed or not outbox:
            return
        if self._corker is not None:
            self._wrote_turn = self._corker.turn
        try:
            sent = self._raw.send(outbox)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._peer_gone()  # makes the reader and the app's receive runnable
            if waking:
                wake_run_loop()
            return
        del outbox[:sent]
        if outbox:
            self._kick()
            if waking:
                wake_run_loop()

    def _close_frame(self, code: int | None, reason: str | None) -> None:
        self._sent_close = True
        if self._closed:
            return
        if code == 1005:
            code = None
        try:
            frame = self._proto.close(code, reason)
        except (TypeError, ValueError, struct.error):
            frame = self._proto.close(1000, None)
        self._write(frame)

    def _after_flush(self, action: str) -> None:
        """Shut down the write side ("shutdown") or close ("close") once the outbox is empty."""
        if self._closed:
            return
        if self._outbox:
            self._then = action
            self._kick()
        elif action == "close":
            self._close_socket(abort=False)
        else:
            with contextlib.suppress(OSError):
                self._raw.shutdown(socket.SHUT_WR)

    def _close_socket(self, *, abort: bool) -> None:
        if self._closed:
            return
        self._closed = True
        if abort:
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        # trio's close wakes every task waiting on the socket with ClosedResourceError:
        # our reader and flusher, or Hypercorn's reader before the takeover.
        self._sock.close()
        self._outbox.clear()
        if self._drained is not None:
            self._drained.unpark_all()
        self._kick()

    def abort(self, code: int = 1006, reason: str = "connection aborted by the server") -> None:
        """End the connection now (RST); the app is told ``code`` with closed_by "server"."""
        if self._closed:
            return
        if code != 1006 and not self._sent_close:
            self._close_frame(code, reason)  # goes out if the socket takes it at once
        self._decide(code, reason, by_server=True)
        self._close_socket(abort=True)
        logger.info("trio_ws.serve: aborted a WebSocket connection (%d, %s)", code, reason)

    def _internal_error(self, what: str) -> None:
        logger.exception("trio_ws.serve: %s; connection aborted", what)
        self._reading = False
        self.abort(1011, "internal error")

    def _peer_gone(self) -> None:
        self._decide(1006, None, by_server=False)
        self._close_socket(abort=False)

    def _fail(self, code: int, reason: str) -> None:
        """The client broke the protocol: close frame with ``code``, then drop its bytes."""
        logger.debug("trio_ws.serve: closing a WebSocket connection (%d, %s)", code, reason)
        self._decide(code, reason, by_server=True)
        if not self._sent_close:
            self._close_frame(code, reason)
        self._state = _DISCARD
        self._after_flush("shutdown")
        self._arm_close_timer()

    # ------------------------------------------------------------------ the helper task

    def _kick(self) -> None:
        """Wake the helper task, or start it (it starts on first need)."""
        if self._service_parked:
            self._service_parked = False
            assert self._service_task is not None
            trio.lowlevel.reschedule(self._service_task)
        elif not self._service_running and not self._closed:
            self._service_running = True
            self._spawn(self._service)

    def _abort_park(self, _: Any) -> trio.lowlevel.Abort:
        self._service_parked = False
        return trio.lowlevel.Abort.SUCCEEDED

    def _deadline(self) -> float:
        return min(self._close_at, self._pong_due, self._ping_at)

    def _arm_close_timer(self) -> None:
        if self._close_at == math.inf:
            self._close_at = trio.current_time() + CLOSE_TIMEOUT
            if self._service_scope is not None:
                self._service_scope.deadline = self._deadline()
            elif not self._service_running:
                self._kick()

    async def _service(self) -> None:  # noqa: ASYNC910 - internal; callers checkpoint
        """Flush the outbox when the socket is writable; fire the keepalive and close timers."""
        self._service_task = trio.lowlevel.current_task()
        try:
            while not self._closed:
                with trio.CancelScope(deadline=self._deadline()) as scope:
                    self._service_scope = scope
                    while not self._closed:
                        if self._outbox:
                            await self._flush()
                        else:
                            self._service_parked = True
                            await trio.lowlevel.wait_task_rescheduled(self._abort_park)
                self._service_scope = None
                if scope.cancelled_caught:
                    self._timer()
        except Exception:  # as for the reader: never let Hypercorn's task group see it
            self._internal_error("the data plane's helper task failed")
        finally:
            self._service_scope = None
            self._service_task = None
            self._service_running = False

    async def _flush(self) -> None:
        try:
            await trio.lowlevel.wait_writable(self._sock)
        except (trio.ClosedResourceError, OSError):
            return  # noqa: ASYNC910
        if self._closed:
            return
        outbox = self._outbox
        try:
            sent = self._raw.send(outbox)
        except BlockingIOError:
            return
        except OSError:
            self._peer_gone()
            return
        del outbox[:sent]
        if len(outbox) <= LOW_WATER and self._drained is not None:
            self._drained.unpark_all()
        if not outbox and self._then is not None:
            action, self._then = self._then, None
            self._after_flush(action)

    def _timer(self) -> None:
        now = trio.current_time()
        if now >= self._close_at:
            # The client did not finish the closing handshake in time (or the drain's).
            self.abort(
                1006, "stalled at shutdown" if self._draining else "closing handshake timed out"
            )
            return
        if now >= self._pong_due:
            if self._putting:  # the app is not reading, so we cannot read the pong
                self._pong_due = now + (self._ping_timeout or 0.0)
            else:
                self.abort(1011, "keepalive ping timeout")
                return
        if now >= self._ping_at and self._ping_interval is not None:
            self._ping_at = now + self._ping_interval
            if self._state == _OPEN and not self._sent_close:
                self._write(self._proto.ping(b""))
                if self._ping_timeout is not None and self._pong_due == math.inf:
                    self._pong_due = now + self._ping_timeout
