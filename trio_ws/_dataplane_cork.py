"""Write coalescing for the data plane: back-to-back small frames leave in one ``send``.

Every ASGI ``send`` is a checkpoint, so an app that streams (a push loop, a ticker) sends one
frame per turn of trio's run loop, and without coalescing every frame costs one ``send``
syscall (plus the loop's ``epoll_wait``). A connection that already wrote in this turn of the
loop or the one before is *streaming*: its next data frames are held ("corked") in its
outbound buffer and leave together when either

* the run loop is about to sleep (nothing else is runnable: no added latency when idle),
* ``CORK_DELAY`` seconds passed since the first held frame (the added latency under load;
  checked between turns of the loop, so a turn longer than that holds frames to its end),
* the held bytes reach ``CORK_BYTES`` (far below the outbound buffer's high-water mark, so
  holding never makes a ``send`` wait), or
* a control frame (close, ping, pong) is written: it leaves at once, behind the held frames.

The first frame after a quiet turn is sent at once, so a request-response exchange
(ping-pong) is never delayed. Holding happens only in the outbound buffer, whole frames at a
time, so cancellation and aborts behave exactly as without it.

The flush runs in a trio :class:`~trio.abc.Instrument` (``before_io_wait``), one per run,
installed with the first data plane connection.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

import trio

__all__ = ["CORK_BYTES", "CORK_DELAY", "ENABLED", "Corkable", "Corker", "corker", "wake_run_loop"]

logger = logging.getLogger("trio_ws")

#: Held bytes that make a streaming connection send at once.
CORK_BYTES = 16 * 1024
#: The longest a frame is held, in seconds, while the run loop has other work.
CORK_DELAY = 0.001
#: Off: every frame is sent at once (connections taken over while it is off).
ENABLED = True


class Corkable(Protocol):
    """What the corker needs from a data plane connection."""

    def uncork(self, *, waking: bool) -> None:
        """Send what is held; ``waking``: the loop is about to sleep, so wake it if needed."""

    @property
    def corked_at(self) -> float:
        """When the first held frame was written (``trio.current_time()``)."""


class Corker(trio.abc.Instrument):
    """Counts turns of the run loop and flushes held frames before it waits for I/O."""

    __slots__ = ("pending", "turn")

    def __init__(self) -> None:
        #: Turns of the run loop so far (one per ``before_io_wait``).
        self.turn = 0
        #: Connections holding frames, in the order they started holding.
        self.pending: list[Corkable] = []

    def before_io_wait(self, timeout: float) -> None:
        self.turn += 1
        pending = self.pending
        if not pending:
            return
        if timeout > 0:  # going to sleep: everything leaves now
            self.pending = []
            for conn in pending:
                _uncork(conn, waking=True)
            return
        cutoff = trio.current_time() - CORK_DELAY
        keep = []
        for conn in pending:
            corked_at = conn.corked_at
            if corked_at == math.inf:
                continue  # already sent
            if corked_at > cutoff:
                keep.append(conn)
            else:
                _uncork(conn, waking=False)
        self.pending = keep


def _uncork(conn: Corkable, *, waking: bool) -> None:
    try:
        conn.uncork(waking=waking)
    except Exception:  # pragma: no cover - trio would drop the instrument, and every
        # connection's held frames with it
        logger.exception("trio_ws.serve: sending held WebSocket frames failed")


_CORKER: trio.lowlevel.RunVar[Corker] = trio.lowlevel.RunVar("trio_ws.corker")


def corker() -> Corker | None:
    """This run's corker, installed on first use; None when coalescing is off."""
    if not ENABLED:
        return None
    try:
        return _CORKER.get()
    except LookupError:
        instrument = Corker()
        trio.lowlevel.add_instrument(instrument)
        _CORKER.set(instrument)
        return instrument


def wake_run_loop() -> None:
    """Make the run loop's coming I/O wait return at once (a task was just made runnable)."""
    trio.lowlevel.current_trio_token().run_sync_soon(_nothing)


def _nothing() -> None:
    pass
