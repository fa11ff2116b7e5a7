"""The data plane's reading side: the read loop, frames to ASGI messages, the disconnect.

A mixin of :class:`trio_ws._dataplane.DataPlane` (see that module for the design). Only the
reader task (Hypercorn's connection task, taken over) runs these methods, and only it puts into
the app's channel, so the disconnect message is always the last one. Complete, unfragmented,
masked text and binary frames are parsed here without wsproto (while wsproto's decoder holds
nothing); everything else goes through wsproto's ``FrameProtocol``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio
from wsproto.frame_protocol import Opcode, ParseFailed

from ._types import Message

__all__ = ["CLOSED_BY_KEY", "HIGH_WATER", "LOW_WATER", "Reader"]

#: The ``websocket.disconnect`` key that says the server ended the connection.
CLOSED_BY_KEY = "trio_ws.closed_by"
#: Outbound buffer: a send waits when more than HIGH_WATER bytes are queued, until at most
#: LOW_WATER are.
HIGH_WATER = 64 * 1024
LOW_WATER = 16 * 1024
_MAX_RECV = 65536
#: Parse complete unfragmented frames without wsproto (tests turn it off to compare).
_FAST_PATH = True
_TEXT = Opcode.TEXT
_BINARY = Opcode.BINARY
_PING = Opcode.PING
_PONG = Opcode.PONG
_CLOSE = Opcode.CLOSE
# Reader states: what incoming frames mean.
_OPEN = 0  # normal
_CLOSING = 1  # we sent a close frame: data is dropped, the client's close ends it
_DISCARD = 2  # we failed the connection: bytes are read and dropped until EOF


class Reader:
    """The reading half of a data plane connection (a mixin; the state lives in DataPlane)."""

    __slots__ = (
        "_announced",
        "_app_gone",
        "_client_codes",
        "_close_at",
        "_closed",
        "_corked_since",
        "_corker",
        "_drained",
        "_draining",
        "_early_close",
        "_fallback",
        "_fast",
        "_fast_ok",
        "_hook",
        "_idle",
        "_inbox",
        "_max_size",
        "_outbox",
        "_outcome",
        "_parts",
        "_ping_at",
        "_ping_interval",
        "_ping_timeout",
        "_pong_due",
        "_proto",
        "_putting",
        "_raw",
        "_reading",
        "_ready",
        "_sent_close",
        "_service_parked",
        "_service_running",
        "_service_scope",
        "_service_task",
        "_size",
        "_sock",
        "_spawn",
        "_state",
        "_text",
        "_then",
        "_wrote_turn",
        "compressed",
    )

    if TYPE_CHECKING:
        _sock: Any
        _raw: Any
        _proto: Any
        _inbox: trio.MemorySendChannel[Any]
        _max_size: int
        _client_codes: bool
        _outbox: bytearray
        _state: int
        _sent_close: bool
        _closed: bool
        _outcome: dict[str, Any] | None
        _announced: bool
        _putting: bool
        _app_gone: bool
        _reading: bool
        _parts: list[Any]
        _text: bool
        _size: int
        _fast: bool
        _fast_ok: bool
        _pong_due: float
        _drained: trio.lowlevel.ParkingLot | None
        _idle: Callable[[Any], bool]

        def _write(self, data: bytes | bytearray) -> None: ...
        def _close_frame(self, code: int | None, reason: str | None) -> None: ...
        def _after_flush(self, action: str) -> None: ...
        def _arm_close_timer(self) -> None: ...
        def _peer_gone(self) -> None: ...
        def _fail(self, code: int, reason: str) -> None: ...

    async def run(self, data: bytes) -> None:
        """Serve the connection from its first chunk of bytes until it ends (the reader task)."""
        if self._reading:  # pragma: no cover - Hypercorn reads from one task only
            raise RuntimeError("the data plane already has a reader")
        self._reading = True
        raw = self._raw
        sock = self._sock
        chunk: bytes | None = data
        try:
            while True:
                if chunk is not None:
                    if not chunk:
                        self._eof()
                        break
                    await self._receive(chunk)
                    if self._outcome is not None and not (self._announced or self._app_gone):
                        # Decided, but the app's channel was full: tell the app as soon as it
                        # has room, not when the client finally closes (after an error the
                        # reader goes on discarding what the client sends until then).
                        await self._announce()
                    if len(self._outbox) > HIGH_WATER and not self._closed:
                        # Pongs and close replies to a client that does not read: stop
                        # reading until they drain (the close timer or abort ends it).
                        await self._wait_reader_drained()
                if self._closed:
                    break
                try:
                    await trio.lowlevel.wait_readable(sock)
                except (trio.ClosedResourceError, OSError, ValueError):
                    if not self._closed:
                        self._peer_gone()
                    break
                try:
                    chunk = raw.recv(_MAX_RECV)
                except BlockingIOError:
                    chunk = None
                except OSError:
                    self._peer_gone()
                    break
        finally:
            self._reading = False
        await self.finish()

    async def _wait_reader_drained(self) -> None:  # noqa: ASYNC910 - internal; callers checkpoint
        lot = self._drained
        if lot is None:
            lot = self._drained = trio.lowlevel.ParkingLot()
        while len(self._outbox) > LOW_WATER and not self._closed:
            await lot.park()

    def _eof(self) -> None:
        if self._state == _CLOSING and self._outcome is None:
            # The app closed first: a normal closure, as Hypercorn reports it.
            self._decide(1000, None, by_server=False)
        self._peer_gone()

    async def _receive(self, data: bytes) -> None:  # noqa: ASYNC910 - internal; callers checkpoint
        if self._state == _DISCARD:
            return  # noqa: ASYNC910
        if self._fast:
            used = await self._fast_frames(data)
            if used == len(data) or self._outcome is not None:
                return
            # Something the fast path does not take: wsproto parses from here on, until its
            # decoder is idle again.
            self._fast = False
            data = data[used:]
        proto = self._proto
        proto.receive_bytes(data)
        try:
            for frame in proto.received_frames():
                opcode = frame.opcode
                if opcode is _TEXT or opcode is _BINARY:
                    if self._state != _OPEN:
                        continue
                    payload = frame.payload
                    message: Message | None
                    if frame.message_finished and not self._parts:
                        size = len(payload)
                        if opcode is _TEXT and not payload.isascii():
                            size = len(payload.encode())
                        if size > self._max_size:
                            self._fail(1009, "message too big")
                            return  # noqa: ASYNC910
                        if opcode is _TEXT:
                            message = {"type": "websocket.receive", "bytes": None, "text": payload}
                        else:
                            message = {"type": "websocket.receive", "bytes": payload, "text": None}
                    else:
                        message = self._assemble(opcode, payload, frame.message_finished)
                        if message is None:
                            if self._state != _OPEN:
                                return  # noqa: ASYNC910
                            continue
                    await self._put(message)
                    if self._closed:
                        return
                elif opcode is _PING:
                    if not self._sent_close:
                        self._write(proto.pong(frame.payload))
                elif opcode is _PONG:
                    self._pong_due = math.inf
                elif opcode is _CLOSE:
                    code, reason = frame.payload
                    self._client_closed(int(code), reason)
                    return  # noqa: ASYNC910
        except ParseFailed as exc:
            code = int(exc.code)
            # 1009 here: a compressed message inflated past the limit (``CappedDeflate``).
            self._fail(code, "message too big" if code == 1009 else str(exc))
            return  # noqa: ASYNC910
        if self._fast_ok and self._state == _OPEN and self._idle(proto):
            self._fast = True

    async def _fast_frames(self, data: bytes) -> int:
        """Deliver the complete, unfragmented, masked text and binary frames at the start of
        ``data`` (no extension); return how many bytes were used. Anything else (a control
        frame, a fragment, a partial frame, invalid UTF-8, an oversize or oddly encoded
        length) is left for wsproto, so the two parse the same bytes the same way
        (``tests/test_dataplane_frames.py`` checks that against wsproto alone).
        """
        pos = 0
        end = len(data)
        max_size = self._max_size
        while end - pos >= 6:
            first = data[pos]
            second = data[pos + 1]
            if second < 0x80 or (first != 0x81 and first != 0x82):
                return pos  # noqa: ASYNC910
            length = second & 0x7F
            if length < 126:
                head = pos + 2
            elif length == 126:
                if end - pos < 8:
                    return pos  # noqa: ASYNC910
                length = (data[pos + 2] << 8) | data[pos + 3]
                if length < 126:
                    return pos  # noqa: ASYNC910
                head = pos + 4
            else:
                if end - pos < 14:
                    return pos  # noqa: ASYNC910
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                if length < 65536:
                    return pos  # noqa: ASYNC910
                head = pos + 10
            start = head + 4
            stop = start + length
            if stop > end or length > max_size:
                return pos  # noqa: ASYNC910
            if length:
                mask = data[head:start] * ((length >> 2) + 1)
                payload = (
                    int.from_bytes(data[start:stop], "little")
                    ^ int.from_bytes(mask[:length], "little")
                ).to_bytes(length, "little")
            else:
                payload = b""
            message: Message
            if first == 0x81:
                try:
                    text = payload.decode()
                except UnicodeDecodeError:
                    return pos  # noqa: ASYNC910
                message = {"type": "websocket.receive", "bytes": None, "text": text}
            else:
                message = {"type": "websocket.receive", "bytes": payload, "text": None}
            pos = stop
            await self._put(message)
            if self._outcome is not None:
                return end
        return pos  # noqa: ASYNC910

    def _assemble(self, opcode: Opcode, payload: Any, finished: bool) -> Message | None:
        """Add one piece of a fragmented (or partly received) message; the message when done."""
        if not self._parts:
            self._text = opcode is _TEXT
            self._size = 0
        if self._text:
            size = len(payload) if payload.isascii() else len(payload.encode())
        else:
            size = len(payload)
        self._size += size
        if self._size > self._max_size:
            self._parts.clear()
            self._fail(1009, "message too big")
            return None
        self._parts.append(payload)
        if not finished:
            return None
        parts = self._parts
        self._parts = []
        if self._text:
            return {"type": "websocket.receive", "bytes": None, "text": "".join(parts)}
        return {"type": "websocket.receive", "bytes": b"".join(parts), "text": None}

    def _client_closed(self, code: int, reason: str) -> None:
        app_closed_first = self._sent_close
        if self._state == _OPEN and not self._sent_close:
            # RFC 6455 section 5.5.1: answer with a close frame echoing the code.
            self._close_frame(code, reason)
        self._state = _DISCARD
        if app_closed_first:
            # The client answered the app's close: a normal closure, as Hypercorn reports it.
            self._decide(1000, None, by_server=False)
        elif self._client_codes:
            self._decide(code, reason, by_server=False)
        else:  # Hypercorn's behaviour, on request
            self._decide(1006, None, by_server=False)
        # Section 7.1.1: the server closes the TCP connection first.
        self._after_flush("close")
        self._arm_close_timer()

    def _decide(self, code: int, reason: str | None, *, by_server: bool) -> None:
        """Fix the disconnect message the app will get (the first decision wins).

        ``reason`` None leaves the key out, as Hypercorn does for a dropped connection and a
        normal closure after the app's close.
        """
        if self._outcome is not None:
            return
        outcome: dict[str, Any] = {"type": "websocket.disconnect", "code": code}
        if reason is not None:
            outcome["reason"] = reason
        if by_server:
            outcome[CLOSED_BY_KEY] = "server"
        self._outcome = outcome
        if not self._putting and not self._announced and not self._app_gone:
            # Tell the app now if its channel has room; otherwise the reader will.
            try:
                self._inbox.send_nowait(outcome)
            except trio.WouldBlock:
                return
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._app_gone = True
            self._announced = True

    async def _put(self, message: Message) -> None:  # noqa: ASYNC910 - internal; callers checkpoint
        if self._outcome is not None or self._app_gone:
            return  # noqa: ASYNC910
        try:
            self._inbox.send_nowait(message)
        except trio.WouldBlock:
            self._putting = True
            try:
                await self._inbox.send(message)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._app_gone = True
            finally:
                self._putting = False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._app_gone = True

    async def finish(self) -> None:  # noqa: ASYNC910 - internal; callers checkpoint
        """The reader's last step: the disconnect message, once (blocking if the app is slow)."""
        if self._outcome is None:
            self._decide(1006, None, by_server=False)
        if self._announced or self._app_gone:
            return  # noqa: ASYNC910
        await self._announce()

    async def _announce(self) -> None:  # noqa: ASYNC910 - internal; callers checkpoint
        """Put the decided disconnect message into the app's channel, waiting for room."""
        self._announced = True
        assert self._outcome is not None
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._inbox.send(self._outcome)
