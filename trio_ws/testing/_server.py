"""Serve an application on real Hypercorn (trio worker) for the length of a test.

:func:`serve_app` binds an ephemeral port on the loopback interface, yields the ``ws://`` base
URL, and shuts Hypercorn down gracefully on exit, with every wait bounded. Use it for what the
in-process client (:func:`trio_ws.testing.connect`) cannot show: real sockets, real clients
(trio-websocket, ``websockets``, a browser), and Hypercorn's own behaviour.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import hypercorn.trio
import trio
from hypercorn.config import Config

from .._types import ASGIApp
from ._waits import bounded

__all__ = ["serve_app"]


def _bind(host: str) -> str:
    return f"[{host}]:0" if ":" in host else f"{host}:0"


def _ws_url(bound: str) -> str:
    scheme, _, rest = bound.partition("://")
    return ("wss" if scheme == "https" else "ws") + "://" + rest


async def _serve(
    app: ASGIApp,
    config: Config,
    shutdown: trio.Event,
    finished: trio.Event,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    try:
        await hypercorn.trio.serve(
            cast(Any, app),  # hypercorn's Framework type knows nothing of trio_ws's ASGIApp
            config,
            shutdown_trigger=shutdown.wait,
            task_status=task_status,
            mode="asgi",
        )
    finally:
        finished.set()


@asynccontextmanager
async def serve_app(
    app: ASGIApp,
    *,
    config: Config | None = None,
    host: str = "127.0.0.1",
    wait_limit: float = 5.0,
) -> AsyncIterator[str]:
    """Serve ``app`` with ``hypercorn.trio.serve`` on ``host``, on a free port.

    On exit, Hypercorn's graceful shutdown is triggered: it waits up to the config's
    ``graceful_timeout`` for open connections to end, then cancels their applications. Close
    your clients first to keep tests fast, or pass a config with a short ``graceful_timeout``.
    Errors raised by the application are logged by Hypercorn, not raised here.

    Args:
        app: Any ASGI 3 application.
        config: A Hypercorn configuration; it is copied, and the copy's ``bind`` replaced.
            ``None``: Hypercorn's defaults.
        host: The address to bind (``"::1"`` for IPv6).
        wait_limit: Seconds startup may take, and shutdown beyond ``graceful_timeout``.

    Yields:
        The base URL, ``"ws://127.0.0.1:PORT"`` (without a trailing slash).

    Raises:
        trio.TooSlowError: Hypercorn did not start, or did not stop, in time.

    Example::

        async with trio_ws.testing.serve_app(app) as base_url:
            async with trio_websocket.open_websocket_url(base_url + "/echo") as ws:
                ...
    """
    config = Config() if config is None else copy.copy(config)
    config.bind = [_bind(host)]
    shutdown = trio.Event()
    finished = trio.Event()
    failure: BaseException | None = None
    # As in connect(): errors leave the nursery by hand, so the test sees its own exception
    # rather than an exception group around it.
    async with trio.open_nursery() as nursery:
        try:
            with bounded(wait_limit, "Hypercorn did not start"):
                bound: list[str] = await nursery.start(
                    functools.partial(_serve, app, config, shutdown, finished)
                )
            try:
                yield _ws_url(bound[0])
            finally:
                shutdown.set()
            with bounded(config.graceful_timeout + wait_limit, "Hypercorn did not shut down"):
                await finished.wait()
        except BaseException as exc:  # re-raised below, after the nursery
            failure = exc
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
