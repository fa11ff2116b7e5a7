"""Serve an application on real Hypercorn (trio worker) for the length of a test.

:func:`open_server` binds an ephemeral port on the loopback interface, yields a
:class:`LiveServer` (its ``http://`` URL, as ``hypercorn.trio.serve`` and :func:`trio_ws.serve`
report it, and the matching ``ws://`` URL), and shuts Hypercorn down gracefully on exit, with
every wait bounded. Use it for what the in-process client (:func:`trio_ws.testing.open_connection`)
cannot show: real sockets, real clients (trio-websocket, ``websockets``, a browser), and
Hypercorn's own behaviour.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import hypercorn.trio
import trio
from hypercorn.config import Config

from .._types import ASGIApp
from ._deprecated import warn_deprecated
from ._waits import bounded

__all__ = ["LiveServer", "open_server", "serve_app"]


@dataclass(frozen=True)
class LiveServer:
    """Where :func:`open_server` serves the application.

    Attributes:
        url: The base URL as Hypercorn reports the bound address, ``"http://127.0.0.1:PORT"``
            (``https://`` with TLS), the same form :func:`trio_ws.serve` reports; for HTTP
            clients and for WebSocket clients that take ``http://`` URLs (httpx-ws).
        ws_url: The same base URL with the WebSocket scheme, ``"ws://127.0.0.1:PORT"``
            (``wss://`` with TLS), for trio-websocket, ``websockets`` and browsers.
        host: The bound address (``"127.0.0.1"``, or ``"::1"`` without brackets).
        port: The bound port.

    Neither URL ends with a slash: append the path, ``server.ws_url + "/echo"``.
    """

    url: str
    ws_url: str
    host: str
    port: int

    @classmethod
    def _from_bound(cls, bound: str) -> LiveServer:
        scheme, _, rest = bound.partition("://")
        parts = urlsplit(bound)
        assert parts.hostname is not None and parts.port is not None
        ws_url = ("wss" if scheme == "https" else "ws") + "://" + rest
        return cls(url=bound, ws_url=ws_url, host=parts.hostname, port=parts.port)


def _bind(host: str) -> str:
    return f"[{host}]:0" if ":" in host else f"{host}:0"


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


async def _trigger_when(trigger: Callable[[], Awaitable[object]], shutdown: trio.Event) -> None:
    await trigger()
    shutdown.set()


@asynccontextmanager
async def open_server(
    app: ASGIApp,
    *,
    config: Config | None = None,
    host: str = "127.0.0.1",
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    wait_limit: float = 5.0,
) -> AsyncIterator[LiveServer]:
    """Serve ``app`` with ``hypercorn.trio.serve`` on ``host``, on a free port.

    Hypercorn's graceful shutdown starts when the block ends, or earlier when
    ``shutdown_trigger`` returns (to test what clients see while a server shuts down). It waits
    up to the config's ``graceful_timeout`` for open connections to end, then cancels their
    applications. Close your clients first to keep tests fast, or pass a config with a short
    ``graceful_timeout``. Errors raised by the application are logged by Hypercorn, not raised
    here.

    On cancellation (the test's own ``trio.fail_after``, say) Hypercorn is cancelled at once,
    without its graceful shutdown, and the cancellation propagates.

    Args:
        app: Any ASGI 3 application.
        config: A Hypercorn configuration; it is copied, and the copy's ``bind`` replaced.
            ``None``: Hypercorn's defaults.
        host: The address to bind (``"::1"`` for IPv6).
        shutdown_trigger: An optional ``async`` callable, as for :func:`trio_ws.serve` and
            ``hypercorn.trio.serve``: shutdown starts when it returns (``event.wait``).
        wait_limit: Seconds startup may take, and shutdown beyond ``graceful_timeout``.

    Yields:
        The :class:`LiveServer`: ``url`` (``"http://127.0.0.1:PORT"``, as :func:`trio_ws.serve`
        reports) and ``ws_url`` (``"ws://127.0.0.1:PORT"``).

    Raises:
        trio.TooSlowError: Hypercorn did not start, or did not stop, in time.

    Example::

        import trio_websocket

        async def hello(ws: trio_ws.WebSocket) -> None:
            await ws.accept()
            await ws.send_text("hello")

        async def test_hello():
            async with trio_ws.testing.open_server(trio_ws.websocket_app(hello)) as server:
                async with trio_websocket.open_websocket_url(server.ws_url + "/") as ws:
                    assert await ws.get_message() == "hello"
    """
    config = Config() if config is None else copy.copy(config)
    config.bind = [_bind(host)]
    shutdown = trio.Event()
    finished = trio.Event()
    failure: BaseException | None = None
    # As in open_connection(): errors leave the nursery by hand, so the test sees its own
    # exception rather than an exception group around it.
    async with trio.open_nursery() as nursery:
        try:
            with bounded(wait_limit, "Hypercorn did not start"):
                bound: list[str] = await nursery.start(
                    functools.partial(_serve, app, config, shutdown, finished)
                )
            if shutdown_trigger is not None:
                nursery.start_soon(_trigger_when, shutdown_trigger, shutdown)
            try:
                yield LiveServer._from_bound(bound[0])
            finally:
                shutdown.set()
            with bounded(config.graceful_timeout + wait_limit, "Hypercorn did not shut down"):
                await finished.wait()
            nursery.cancel_scope.cancel()  # a shutdown_trigger still waiting
        except BaseException as exc:  # re-raised below, after the nursery
            failure = exc
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure


@asynccontextmanager
async def _serve_app_ws(
    app: ASGIApp, *, config: Config | None, host: str, wait_limit: float
) -> AsyncIterator[str]:
    async with open_server(app, config=config, host=host, wait_limit=wait_limit) as server:
        yield server.ws_url


def serve_app(
    app: ASGIApp,
    *,
    config: Config | None = None,
    host: str = "127.0.0.1",
    wait_limit: float = 5.0,
) -> AbstractAsyncContextManager[str]:
    """Deprecated alias of :func:`open_server` that yields ``server.ws_url``, a string.

    .. deprecated:: 0.1.0
       Use :func:`open_server`, which yields a :class:`LiveServer` (``.ws_url`` is what this
       yielded). Removed in the next release.

    Warns:
        DeprecationWarning: Always.
    """
    warn_deprecated("serve_app", "open_server(app) as server, then server.ws_url")
    return _serve_app_ws(app, config=config, host=host, wait_limit=wait_limit)
