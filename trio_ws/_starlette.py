"""A trio_ws session inside a Starlette or FastAPI endpoint: ``trio_ws.session(websocket)``.

A Starlette ``WebSocketRoute`` endpoint, or a FastAPI ``@app.websocket`` one (FastAPI's
``WebSocket`` is Starlette's), receives a ``starlette.websockets.WebSocket``. :func:`session`
builds a :class:`~trio_ws.WebSocket` on the same scope and the same ASGI ``receive`` and
``send``, in the state the endpoint left the connection (accepted or not, connect message read
or not), and enters it as a session. On the way out the Starlette object's states are brought up
to date, so code after the block sees a closed connection.

Starlette is never imported here: the endpoint's object is used through what it has.

What this relies on (checked with Starlette 1.6 to 1.10, which FastAPI 0.165 requires):

* ``websocket._receive`` and ``websocket._send`` (private): the server's callables. Starlette's
  public ``receive``/``send`` would run a second state machine and hide Hypercorn's channel
  from the session's fast path.
* ``websocket.client_state`` and ``websocket.application_state`` (public): enums whose member
  names are trio_ws's :class:`~trio_ws.WebSocketState` names.
* ``starlette.exceptions.WebSocketException`` and ``starlette.websockets.WebSocketDisconnect``,
  looked up in :data:`sys.modules` only: raised inside the block they end the session as
  trio_ws's own exceptions of the same names do.

And of trio_ws's :class:`~trio_ws.WebSocket`, besides its two state attributes: ``_accepted``,
which makes the session wait for the client's closing handshake when it closes a connection
that Starlette accepted.
"""

from __future__ import annotations

import enum
import sys
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Protocol

from ._exceptions import WebSocketDisconnect, WebSocketException
from ._state import WebSocketState
from ._types import Scope
from ._websocket import WebSocket

__all__ = ["StarletteWebSocket", "session"]


class StarletteWebSocket(Protocol):
    """What :func:`session` needs of a Starlette (or FastAPI) ``WebSocket``.

    ``starlette.websockets.WebSocket`` has all of it; so does any object with a WebSocket
    ``scope``, the ASGI callables as ``_receive`` and ``_send``, and the two state enums.
    """

    @property
    def scope(self) -> Scope:
        """The connection's ASGI scope."""
        ...

    @property
    def client_state(self) -> enum.Enum:
        """What the client has done (``CONNECTING``, ``CONNECTED``, ``DISCONNECTED``)."""
        ...

    @property
    def application_state(self) -> enum.Enum:
        """What the application has done (the same names, plus ``RESPONSE``)."""
        ...


def session(
    websocket: StarletteWebSocket | WebSocket[Any], **options: Any
) -> AbstractAsyncContextManager[WebSocket[Any]]:
    """Run a trio_ws session over the connection of a Starlette or FastAPI endpoint.

    Use it as ``async with trio_ws.session(websocket) as ws:``. Inside the block ``ws`` is a
    :class:`~trio_ws.WebSocket` session on the same connection, with every session guarantee
    (see :doc:`/cancellation`): any number of receiving tasks, cancel-safe receive and send, a
    send after the client left raises, helper tasks end with the connection, and leaving the
    block closes with the exit path's code. Whether or not the endpoint accepted before, the
    session starts where it stands: calling ``ws.accept()`` again is an error if it did.

    Use only ``ws`` inside the block. After it, the Starlette object reports the connection
    closed (its ``client_state`` and ``application_state`` are updated).

    Starlette's ``WebSocketException`` and ``WebSocketDisconnect`` raised in the block work
    like trio_ws's: the first closes with its code and reason, the second ends the
    session quietly. Both are suppressed. Any other exception closes with 1011 and propagates
    (Starlette then passes it to the server, which logs it).

    Args:
        websocket: The endpoint's ``starlette.websockets.WebSocket`` (or FastAPI's, the same
            class). A trio_ws :class:`~trio_ws.WebSocket` is returned as it is, to be entered
            itself.
        **options: Keyword options for :class:`~trio_ws.WebSocket` (``max_message_size``,
            ``close_timeout``, ``on_inbox_full`` ...).

    Returns:
        An async context manager whose ``__aenter__`` enters and returns the session.

    Raises:
        TypeError: ``websocket`` is not a Starlette-style WebSocket, or options were given
            with a trio_ws WebSocket (which has its own).
        ValueError: A bad option value, or the scope is not a WebSocket scope.

    Example::

        import fastapi

        app = fastapi.FastAPI()

        async def push_updates(ws: trio_ws.WebSocket) -> None:  # cancelled with the session
            while True:
                await ws.send_text("tick")
                await trio.sleep(1)

        @app.websocket("/chat")
        async def chat(websocket: fastapi.WebSocket) -> None:
            async with trio_ws.session(websocket) as ws:
                await ws.accept()
                ws.start_soon(push_updates, ws)
                async for text in ws.iter_text():
                    await ws.send_text(text)
    """
    if isinstance(websocket, WebSocket):
        if options:
            raise TypeError(
                f"options {sorted(options)} apply to a new session; a trio_ws WebSocket "
                "already has its own: pass them to its constructor"
            )
        return websocket
    receive = getattr(websocket, "_receive", None)
    send = getattr(websocket, "_send", None)
    if not (callable(receive) and callable(send) and hasattr(websocket, "application_state")):
        raise TypeError(
            "session() takes a Starlette or FastAPI WebSocket (or a trio_ws WebSocket), "
            f"not {websocket!r}"
        )
    ws: WebSocket[Any] = WebSocket(websocket.scope, receive, send, **options)
    ws.client_state = WebSocketState[websocket.client_state.name]
    ws.application_state = WebSocketState[websocket.application_state.name]
    if ws.application_state is WebSocketState.CONNECTED:
        ws._accepted = True  # the closing handshake is to be awaited (see the module doc)
    return _StarletteSession(websocket, ws)


class _StarletteSession(AbstractAsyncContextManager[WebSocket[Any]]):
    """Enter the trio_ws session; on exit, bring the Starlette object's states up to date."""

    __slots__ = ("_outer", "_ws")

    def __init__(self, outer: StarletteWebSocket, ws: WebSocket[Any]) -> None:
        self._outer = outer
        self._ws = ws

    async def __aenter__(self) -> WebSocket[Any]:
        return await self._ws.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        translated = _translate(exc)
        try:
            if translated is not exc:
                assert translated is not None
                return await self._ws.__aexit__(type(translated), translated, tb)
            return await self._ws.__aexit__(exc_type, exc, tb)
        finally:
            _copy_states(self._ws, self._outer)


def _translate(exc: BaseException | None) -> BaseException | None:
    """Starlette's WebSocketException and WebSocketDisconnect as trio_ws's own."""
    if exc is None:
        return None
    closing = getattr(sys.modules.get("starlette.exceptions"), "WebSocketException", None)
    if isinstance(closing, type) and isinstance(exc, closing):
        return WebSocketException(getattr(exc, "code", 1011), getattr(exc, "reason", None))
    left = getattr(sys.modules.get("starlette.websockets"), "WebSocketDisconnect", None)
    if isinstance(left, type) and isinstance(exc, left):
        return WebSocketDisconnect(getattr(exc, "code", 1000), getattr(exc, "reason", None))
    return exc


def _copy_states(ws: WebSocket[Any], outer: StarletteWebSocket) -> None:
    client = ws.client_state
    if ws.closed_by == "client":
        # The client's disconnect was seen (some session paths note it without moving the
        # client state): Starlette's object must not offer a receive that would never return.
        client = WebSocketState.DISCONNECTED
    for name, state in (("client_state", client), ("application_state", ws.application_state)):
        theirs = type(getattr(outer, name))
        try:
            setattr(outer, name, theirs[state.name])
        except (KeyError, AttributeError, TypeError):  # an enum without that member
            continue
