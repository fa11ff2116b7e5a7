"""Turn ``async def handler(ws)`` into an ASGI application that runs each connection in a session."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ._responses import PlainTextResponse
from ._types import ASGIApp, Receive, Scope, Send
from ._websocket import WebSocket
from ._worker import NEEDS_TRIO, in_trio, require_trio

__all__ = ["SessionApp", "websocket_app"]

Handler = Callable[[WebSocket], Awaitable[None]]

_NOT_FOUND = PlainTextResponse("Not Found", status_code=404)


async def _unused(*args: Any) -> Any:  # pragma: no cover - never called
    raise AssertionError("only used to check the options")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if not in_trio():  # the server does not start, and says why
                await send({"type": "lifespan.startup.failed", "message": NEEDS_TRIO})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class SessionApp:
    """The ASGI application :func:`websocket_app` returns.

    An object rather than a function, so that routers which take a function for an endpoint
    (``WebSocketRoute`` of trio_ws and of Starlette) serve it as an ASGI application.
    ``__name__`` and ``__doc__`` are the handler's, so routes name it after the handler.
    """

    def __init__(self, handler: Callable[..., Awaitable[object]], options: dict[str, Any]) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be an async callable, not {handler!r}")
        self.handler = handler
        self.options = options
        self.__name__: str = getattr(handler, "__name__", type(self).__name__)
        self.__qualname__: str = getattr(handler, "__qualname__", self.__name__)
        self.__doc__ = getattr(handler, "__doc__", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: a WebSocket session, lifespan, or 404 for HTTP.

        Raises:
            ValueError: An unsupported scope type.
        """
        scope_type = scope["type"]
        if scope_type == "websocket":
            require_trio()
            await self.serve_websocket(scope, receive, send)
        elif scope_type == "lifespan":
            await _lifespan(receive, send)
        elif scope_type == "http":
            await _NOT_FOUND(scope, receive, send)
        else:
            raise ValueError(f"unsupported ASGI scope type {scope_type!r}")

    async def serve_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the handler on one connection, in a :class:`WebSocket` session."""
        async with WebSocket(scope, receive, send, **self.options) as websocket:
            await self.handler(websocket)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__qualname__})"


def websocket_app(handler: Handler, **options: Any) -> ASGIApp:
    """Wrap a handler into an ASGI application.

    Each WebSocket connection gets a :class:`WebSocket` session (``async with``) in which
    ``handler`` runs, so every exit path closes with its documented code. Lifespan events are
    acknowledged, and plain HTTP requests get 404.

    The application is an object, not a function, so it can be given to a ``WebSocketRoute``
    (trio_ws's or Starlette's) or a ``Mount`` as an ASGI application (see :doc:`/starlette`).

    Args:
        handler: ``async def handler(ws: WebSocket) -> None``.
        **options: Keyword options for :class:`WebSocket` (``max_queued_messages``,
            ``on_inbox_full``, ``inbox_full_timeout``, ``max_message_size``,
            ``close_on_invalid_json``, ``close_timeout``, ``send_timeout``,
            ``shutdown_close_code``, ``shield_sends``).

    Returns:
        An ASGI 3 application.

    Raises:
        TypeError: ``handler`` is not callable, or an option has the wrong type.
        ValueError: An option is out of range.

    Example::

        async def echo(ws: trio_ws.WebSocket) -> None:
            await ws.accept()
            async for text in ws.iter_text():
                await ws.send_text(text)

        app = trio_ws.websocket_app(echo)
    """
    if not callable(handler):
        raise TypeError(f"handler must be an async callable taking a WebSocket, not {handler!r}")
    # Fail now, where the app is built, rather than at the first connection.
    WebSocket({"type": "websocket"}, _unused, _unused, **options)
    return SessionApp(handler, options)
