"""pytest fixtures for testing trio_ws applications on real Hypercorn.

Installing trio_ws installs this plugin: pytest loads it through the ``pytest11`` entry point
named ``trio_ws.testing.pytest_plugin``, so the fixtures need no enabling. (Disable it with
``-p no:trio_ws.testing.pytest_plugin``. Running from a source checkout that is not installed,
enable it in the root ``conftest.py`` with ``pytest_plugins = ["trio_ws.testing.pytest_plugin"]``;
the line does no harm once the package is installed, because the entry point has the module's
name.)

``hypercorn_server`` is a factory, because the application varies from test to test::

    import trio_websocket

    async def echo(ws: trio_ws.WebSocket) -> None:
        await ws.accept()
        await ws.send_text(await ws.receive_text())

    async def test_echo(hypercorn_server):
        async with hypercorn_server(trio_ws.websocket_app(echo)) as server:
            async with trio_websocket.open_websocket_url(server.ws_url + "/echo") as ws:
                await ws.send_message("hi")
                assert await ws.get_message() == "hi"

``hypercorn_config`` makes the default configuration; override it in a ``conftest.py`` to
change it for a directory of tests. The fixtures are synchronous, so they work under
pytest-trio's ``trio_mode`` and with ``@pytest.mark.trio`` alike: the server itself runs inside
the test's own ``async with``, in the test's trio run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import pytest
from hypercorn.config import Config

from .._types import ASGIApp
from ._server import LiveServer, open_server

__all__ = ["HypercornServer", "hypercorn_config", "hypercorn_server"]


class HypercornServer(Protocol):
    """The type of the ``hypercorn_server`` fixture: :func:`~trio_ws.testing.open_server` with
    the ``hypercorn_config`` fixture's configuration as its default.
    """

    def __call__(
        self,
        app: ASGIApp,
        *,
        config: Config | None = None,
        host: str = "127.0.0.1",
        shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
        wait_limit: float = 5.0,
    ) -> AbstractAsyncContextManager[LiveServer]:
        """Serve ``app`` for the length of an ``async with`` block; yield its
        :class:`~trio_ws.testing.LiveServer`."""
        ...


@pytest.fixture
def hypercorn_config() -> Config:
    """A fresh Hypercorn configuration for each test, with a 1 s ``graceful_timeout``.

    Hypercorn's default of 3 s would make every test that leaves a connection open at shutdown
    3 s slower. Override this fixture to change the default configuration.
    """
    config = Config()
    config.graceful_timeout = 1.0
    return config


@pytest.fixture
def hypercorn_server(hypercorn_config: Config) -> HypercornServer:
    """A factory: ``async with hypercorn_server(app) as server:`` serves ``app`` on Hypercorn.

    Takes the arguments of :func:`~trio_ws.testing.open_server` and yields its
    :class:`~trio_ws.testing.LiveServer`; ``config`` defaults to the ``hypercorn_config``
    fixture.
    """

    @asynccontextmanager
    async def serve(
        app: ASGIApp,
        *,
        config: Config | None = None,
        host: str = "127.0.0.1",
        shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
        wait_limit: float = 5.0,
    ) -> AsyncIterator[LiveServer]:
        async with open_server(
            app,
            config=hypercorn_config if config is None else config,
            host=host,
            shutdown_trigger=shutdown_trigger,
            wait_limit=wait_limit,
        ) as server:
            yield server

    return serve
