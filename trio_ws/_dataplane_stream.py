"""The data plane on a trio ``Stream``: TLS (``trio.SSLStream``) connections.

:class:`StreamDataPlane` is :class:`~trio_ws._dataplane.DataPlane` with the other side of its
transport seam: the protocol, the semantics and the app's ``send`` are DataPlane's, only the
I/O differs, because a ``trio.SSLStream`` can be neither written without blocking nor written
from two tasks at once:

* **Reading**: the reader task (Hypercorn's connection task, taken over) loops on
  ``receive_some``; as on a socket, no cancel scope per read.
* **Writing**: a frame is queued whole into the same bounded outbound buffer (high/low water
  marks, so the app's ``send`` still returns after one checkpoint, waits above the high-water
  mark and aborts when that wait is cancelled) and one writer task, the only one that writes,
  flushes it with ``send_all``. The helper task keeps the keepalive and close timers, so they
  fire while the writer is stuck on a client that stopped reading.
* **Closing**: closing or aborting closes the socket under the stream (``SO_LINGER`` 0 for an
  abort), which wakes the reader and the writer at once, whatever the TLS layer waits for; no
  ``close_notify`` is waited for (Hypercorn's TLS listener is ``https_compatible`` and sends
  none either). The stream itself is then closed forcefully, so Hypercorn's own ``aclose``
  afterwards has nothing left to do. Half-closing is not possible under TLS: where the socket
  data plane shuts down its write side after a protocol error and reads on until the client
  closes, this one closes once the close frame is written.
* **A close frame with an abort** (keepalive timeout 1011, an internal error) cannot be written
  at once: when nothing else is queued it is queued, the app is told at once, and the
  connection closes once it is written (the close timer bounds that); otherwise it is dropped.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import trio

from ._dataplane import DataPlane
from ._dataplane_read import _DISCARD, _MAX_RECV, HIGH_WATER, LOW_WATER

__all__ = ["StreamDataPlane"]

logger = logging.getLogger("trio_ws")

#: The most bytes the writer hands to one ``send_all`` (TLS encrypts them into one buffer).
_CHUNK = 256 * 1024


class StreamDataPlane(DataPlane):
    """A data plane connection on a trio ``Stream`` (module docstring); ``_raw`` is the stream
    and ``_sock`` the trio socket under it."""

    __slots__ = ("_writer_parked", "_writer_running", "_writer_task")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer_task: trio.lowlevel.Task | None = None
        self._writer_parked = False
        self._writer_running = False

    # ------------------------------------------------------------------ reading

    async def run(self, data: bytes) -> None:
        """Serve the connection from its first chunk of bytes until it ends (the reader task).

        The same steps as ``Reader.run`` with ``receive_some`` for the socket's wait and
        ``recv`` (kept apart so that the socket's loop has no extra call per read).
        """
        if self._reading:  # pragma: no cover - Hypercorn reads from one task only
            raise RuntimeError("the data plane already has a reader")
        self._reading = True
        stream = self._raw
        chunk: bytes | bytearray = data
        try:
            while True:
                if not chunk:
                    self._eof()
                    break
                await self._receive(bytes(chunk))
                if self._outcome is not None and not (self._announced or self._app_gone):
                    await self._announce()  # as on a socket: the app hears of it at once
                if len(self._outbox) > HIGH_WATER and not self._closed:
                    await self._wait_reader_drained()  # as on a socket
                if self._closed:
                    break
                try:
                    chunk = await stream.receive_some(_MAX_RECV)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    if not self._closed:
                        self._peer_gone()
                    break
        finally:
            self._reading = False
        await self.finish()

    async def finish(self) -> None:  # noqa: ASYNC910 - internal; callers checkpoint
        """Wait for a queued last close frame to be written, close the stream, then tell the
        app (DataPlane's ``finish``)."""
        while not self._closed:  # only after an abort that queued its close frame
            await self._drained_lot().park()
        # The socket is closed; this marks the stream closed without a byte more.
        await trio.aclose_forcefully(self._raw)
        await super().finish()

    # ------------------------------------------------------------------ writing

    def _write(self, data: bytes | bytearray, data_frame: bool = False) -> None:
        """Queue one whole frame for the writer task (which coalesces what is queued while it
        writes, so no frame is held back for write coalescing: ``data_frame`` is unused)."""
        if self._closed:
            return
        outbox = self._outbox
        idle = not outbox
        outbox += data
        if idle:
            self._wake_writer()

    def _wake_writer(self) -> None:
        if self._writer_parked:
            self._writer_parked = False
            assert self._writer_task is not None
            trio.lowlevel.reschedule(self._writer_task)
        elif not self._writer_running and not self._closed:
            self._writer_running = True
            self._spawn(self._writer)

    def _abort_writer_park(self, _: Any) -> trio.lowlevel.Abort:
        self._writer_parked = False
        return trio.lowlevel.Abort.SUCCEEDED

    async def _writer(self) -> None:  # noqa: ASYNC910 - internal; callers checkpoint
        """The one task that writes: the outbox, a chunk at a time, with ``send_all``."""
        self._writer_task = trio.lowlevel.current_task()
        stream = self._raw
        outbox = self._outbox
        try:
            while not self._closed:
                if not outbox:
                    self._writer_parked = True
                    await trio.lowlevel.wait_task_rescheduled(self._abort_writer_park)
                    continue
                # A copy: the app appends to the outbox while send_all runs.
                chunk = bytes(outbox) if len(outbox) <= _CHUNK else bytes(outbox[:_CHUNK])
                try:
                    await stream.send_all(chunk)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    if not self._closed:
                        self._peer_gone()
                    break
                self._written(len(chunk))
        except Exception:  # never let Hypercorn's task group see it
            logger.exception(
                "trio_ws.serve: the data plane's writer task failed; connection aborted"
            )
            DataPlane.abort(self, 1011, "internal error")
        finally:
            self._writer_task = None
            self._writer_parked = False
            self._writer_running = False

    def _written(self, size: int) -> None:
        """The writer wrote ``size`` bytes from the outbox's start: drop them, wake who waits
        for the outbox to drain, and close if that was waiting for an empty outbox."""
        if self._closed:
            return  # the outbox was cleared
        outbox = self._outbox
        del outbox[:size]
        if len(outbox) <= LOW_WATER and self._drained is not None:
            self._drained.unpark_all()
        if not outbox and self._then is not None:
            action, self._then = self._then, None
            self._after_flush(action)

    async def _flush(self) -> None:  # noqa: ASYNC910 - internal; callers checkpoint
        """The helper task, with bytes queued: wait (cancellably, so the timers fire) until
        the writer has drained them."""
        await self._drained_lot().park()

    def _drained_lot(self) -> trio.lowlevel.ParkingLot:
        """Where tasks wait for the writer's progress (unparked as the outbox drains)."""
        if self._drained is None:
            self._drained = trio.lowlevel.ParkingLot()
        return self._drained

    def _after_flush(self, action: str) -> None:
        """Close once the outbox is empty ("close", and "shutdown": TLS cannot half-close)."""
        if self._closed:
            return
        if self._outbox:
            self._then = action  # the writer runs while the outbox holds bytes
        else:
            self._close_socket(abort=False)

    def _close_socket(self, *, abort: bool) -> None:
        super()._close_socket(abort=abort)
        self._wake_writer()  # it sees the close and ends

    def abort(self, code: int = 1006, reason: str = "connection aborted by the server") -> None:
        """End the connection now; a close frame (code other than 1006) is sent first only
        if nothing else is queued (module docstring)."""
        if self._closed:
            return
        if code == 1006 or self._sent_close or self._outbox:
            super().abort(code, reason)
            return
        self._close_frame(code, reason)
        self._decide(code, reason, by_server=True)
        self._state = _DISCARD
        self._pong_due = self._ping_at = math.inf  # the keepalive is over
        self._after_flush("close")
        self._arm_close_timer()
        logger.info("trio_ws.serve: closing a WebSocket connection (%d, %s)", code, reason)
