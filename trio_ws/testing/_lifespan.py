"""Run an application's ASGI lifespan (startup, then shutdown) in the test's trio run."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import trio

from .._types import ASGIApp, Message, Scope
from ._deprecated import warn_deprecated
from ._scope import lifespan_scope
from ._waits import bounded

__all__ = ["LifespanFailure", "lifespan", "open_lifespan"]


class LifespanFailure(RuntimeError):
    """The application reported ``lifespan.startup.failed`` or ``lifespan.shutdown.failed``.

    Raised by :func:`open_lifespan`, with the application's message (``""`` if it gave none).
    """


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
    except Exception as exc:  # reported by open_lifespan()
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
    with bounded(wait_limit, f"the app did not complete lifespan {step}"):
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
async def open_lifespan(
    app: ASGIApp, *, state: dict[str, Any] | None = None, wait_limit: float = 5.0
) -> AsyncIterator[dict[str, Any]]:
    """Run an application's lifespan: startup on entry, shutdown on exit.

    Args:
        app: Any ASGI 3 application.
        state: The lifespan state dictionary the application may fill in (a new one if not
            given); pass it on to :func:`open_connection` as ``state=``.
        wait_limit: Seconds startup, shutdown and the application's return may each take.

    Yields:
        The lifespan state.

    Raises:
        LifespanFailure: The application reported that startup or shutdown failed, or
            returned in the middle of one.
        Exception: Whatever the application raised.
        trio.TooSlowError: A step took longer than ``wait_limit`` seconds.

    Example::

        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def lifespan(app):
            yield {"greeting": "hello"}

        async def greet(ws: trio_ws.WebSocket) -> None:
            await ws.accept()
            await ws.send_text(ws.state.greeting)

        async def test_greeting():
            app = trio_ws.Router([trio_ws.WebSocketRoute("/", greet)], lifespan=lifespan)
            async with trio_ws.testing.open_lifespan(app) as state:
                async with trio_ws.testing.open_connection(app, "/", state=state) as client:
                    assert await client.receive_text() == "hello"
    """
    state = {} if state is None else state
    to_app, inbox = trio.open_memory_channel[Message](2)
    outbox, from_app = trio.open_memory_channel[Message](math.inf)
    errors: list[Exception] = []
    failure: BaseException | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_run_lifespan_app, app, lifespan_scope(state), inbox, outbox, errors)
        try:
            await _lifespan_step(to_app, from_app, errors, "startup", wait_limit)
            yield state
            await _lifespan_step(to_app, from_app, errors, "shutdown", wait_limit)
            with bounded(wait_limit, "the app did not return after lifespan shutdown"):
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


def lifespan(
    app: ASGIApp, *, state: dict[str, Any] | None = None, wait_limit: float = 5.0
) -> AbstractAsyncContextManager[dict[str, Any]]:
    """Deprecated alias of :func:`open_lifespan`, with the same arguments.

    .. deprecated:: 0.1.0
       Use :func:`open_lifespan`. Removed in the next release.

    Warns:
        DeprecationWarning: Always.
    """
    warn_deprecated("lifespan", "open_lifespan")
    return open_lifespan(app, state=state, wait_limit=wait_limit)
