"""Test helpers for trio_ws applications (and any ASGI WebSocket application).

* :func:`connect`: an in-process, thread-free client that speaks ASGI to the application over
  trio memory channels, as Hypercorn's trio worker does; deterministic, and works with
  pytest-trio's ``autojump_clock``.
* :func:`lifespan`: run an application's lifespan startup and shutdown.
* :func:`serve_app`: serve the application on real Hypercorn, on a free port, for real clients.
* ``trio_ws.testing.pytest_plugin``: the ``hypercorn_server`` fixture (imported only when the
  plugin is enabled, so this package needs no pytest).

Every wait is bounded (``wait_limit=5.0`` by default) and fails with a ``trio.TooSlowError``
that says what was awaited, so a broken application fails its test instead of hanging it.
"""

from __future__ import annotations

from ._client import (
    WebSocketDenied as WebSocketDenied,
    WebSocketTestClient as WebSocketTestClient,
    connect as connect,
)
from ._lifespan import LifespanFailure as LifespanFailure, lifespan as lifespan
from ._server import serve_app as serve_app

__all__ = [
    "LifespanFailure",
    "WebSocketDenied",
    "WebSocketTestClient",
    "connect",
    "lifespan",
    "serve_app",
]

# Show the public path in reprs, tracebacks and docs (trio does the same).
for _obj in (LifespanFailure, WebSocketDenied, WebSocketTestClient, connect, lifespan, serve_app):
    _obj.__module__ = __name__
del _obj
