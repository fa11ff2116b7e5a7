"""Bounded waits: every wait in :mod:`trio_ws.testing` fails with a message, never hangs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import trio

__all__ = ["bounded"]


@contextmanager
def bounded(limit: float, what: str) -> Iterator[None]:
    """Bound a wait; past ``limit`` raise ``trio.TooSlowError`` saying what was awaited."""
    with trio.move_on_after(limit) as scope:
        yield
    if scope.cancelled_caught:
        raise trio.TooSlowError(f"{what} within {limit:g} s")
