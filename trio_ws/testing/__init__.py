"""Test helpers for trio_ws applications (and any ASGI WebSocket application).

* :func:`open_connection`: an in-process, thread-free client that speaks ASGI to the
  application over trio memory channels, as Hypercorn's trio worker does; deterministic, and
  works with pytest-trio's ``autojump_clock``.
* :func:`open_lifespan`: run an application's lifespan startup and shutdown.
* :func:`open_server`: serve the application on real Hypercorn, on a free port, for real clients.
* ``trio_ws.testing.pytest_plugin``: the ``hypercorn_server`` fixture, loaded by pytest through
  the package's ``pytest11`` entry point (imported only by pytest, so this package needs none).

The names follow trio's: an async context manager that acquires something and releases it on
exit is ``open_*`` (``trio.open_nursery``, ``trio.open_tcp_stream``). ``connect``,
``lifespan`` and ``serve_app`` are deprecated aliases, kept for one release.

Every wait is bounded (``wait_limit=5.0`` by default) and fails with a ``trio.TooSlowError``
that says what was awaited, so a broken application fails its test instead of hanging it.
"""

from __future__ import annotations

from ._client import (
    WebSocketDenied as WebSocketDenied,
    WebSocketTestClient as WebSocketTestClient,
    connect as connect,
    open_connection as open_connection,
)
from ._lifespan import (
    LifespanFailure as LifespanFailure,
    lifespan as lifespan,
    open_lifespan as open_lifespan,
)
from ._server import LiveServer as LiveServer, open_server as open_server, serve_app as serve_app

__all__ = [
    "LifespanFailure",
    "LiveServer",
    "WebSocketDenied",
    "WebSocketTestClient",
    "connect",
    "lifespan",
    "open_connection",
    "open_lifespan",
    "open_server",
    "serve_app",
]

# Show the public path in reprs, tracebacks and docs (trio does the same).
for _obj in (
    LifespanFailure,
    LiveServer,
    WebSocketDenied,
    WebSocketTestClient,
    connect,
    lifespan,
    open_connection,
    open_lifespan,
    open_server,
    serve_app,
):
    _obj.__module__ = __name__
del _obj
