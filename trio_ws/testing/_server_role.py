"""The server's part of an in-process connection: what Hypercorn's trio worker would do.

:class:`ServerRole` holds one connection's state and answers the application's ``send`` as
Hypercorn 0.18 does:

* ``websocket.close`` before accept is a denial with HTTP 403; so are the
  ``websocket.http.response.*`` messages of the denial-response extension (with their status).
  After a denial the application receives ``websocket.disconnect`` (1000).
* ``websocket.close`` after accept is answered, once the client has echoed the close frame, with
  ``websocket.disconnect`` 1000 (a normal closure, whatever code the application sent).
* An application that returns after accept without closing leaves the client a close with 1011;
  one that returns before accepting or denying, an HTTP 500 denial.
* Once the connection is closed, the application's sends are dropped silently.

Unlike Hypercorn, and like :func:`trio_ws.serve`, it gives the application the client's exact
close code and reason (Hypercorn reports 1006 for every client close). And it raises in the
*application* when it sends something a server would reject (a subprotocol the client did not
offer, a message of the wrong type).

Every message it hands the application is shaped as Hypercorn shapes it (see
:mod:`trio_ws.testing._messages`). The application's ``receive`` is the bound ``receive`` of a
memory channel holding :data:`APP_QUEUE_SIZE` messages, as in Hypercorn, so a trio_ws session
takes the same direct-read path it takes in production. The test's side of the connection is
:class:`~trio_ws.testing.WebSocketTestClient`, a subclass.
"""

from __future__ import annotations

import math
from typing import Literal

import trio

from .._types import ASGIApp, Message, Scope
from ._errors import WebSocketDenied
from ._messages import disconnect
from ._scope import DENIAL_EXTENSION, encode

__all__ = ["APP_QUEUE_SIZE", "ServerRole"]

#: Messages the application's queue holds before a client send waits (Hypercorn's default).
APP_QUEUE_SIZE = 10
_Phase = Literal["handshake", "response", "connected", "closed", "denied"]


class ServerRole:
    """One connection's state, and the server's answers to the application's messages."""

    def __init__(self, scope: Scope) -> None:
        self.scope: Scope = scope
        self.accepted_subprotocol: str | None = None
        self.accept_headers: list[tuple[bytes, bytes]] = []
        self._to_app, self._app_inbox = trio.open_memory_channel[Message](APP_QUEUE_SIZE)
        self._to_client, self._from_app = trio.open_memory_channel[Message](math.inf)
        self._nursery: trio.Nursery | None = None
        self._phase: _Phase = "handshake"
        self._denial: WebSocketDenied | None = None
        self._response_start: Message | None = None
        self._response_body = bytearray()
        self._answered = trio.Event()  # accepted, denied, or the app returned
        self._app_done = trio.Event()
        self._app_error: Exception | None = None
        self._app_close: tuple[int, str] | None = None  # set once the app's side has ended
        self._client_close: tuple[int, str] | None = None

    async def _run_app(self, app: ASGIApp) -> None:  # noqa: ASYNC910 (a task: nobody awaits it)
        try:
            await app(self.scope, self._app_inbox.receive, self._app_send)
        except Exception as exc:  # reported to the test by the client's next call
            self._app_error = exc
        finally:
            if self._phase == "connected":
                self._phase = "closed"
                if self._client_close is None:
                    # Hypercorn closes with 1011 after an app that returns without closing.
                    self._app_close = (1011, "")
                    if self._app_error is None:
                        self._to_client.send_nowait(
                            {"type": "websocket.close", "code": 1011, "reason": ""}
                        )
            self._to_client.close()
            self._app_inbox.close()
            self._app_done.set()
            self._answered.set()

    async def _app_send(self, message: Message) -> None:
        """The ``send`` callable the application gets."""
        await trio.lowlevel.checkpoint()
        kind = message["type"]
        phase = self._phase
        if phase in ("closed", "denied") or self._client_close is not None:
            return  # Hypercorn drops whatever the app sends once the connection is closed
        if phase == "connected":
            if kind == "websocket.send":
                text, data = message.get("text"), message.get("bytes")
                if (text is None) == (data is None):
                    raise TypeError(
                        "a websocket.send message needs exactly one of 'text' and 'bytes', "
                        f"got {message!r}"
                    )
                if text is not None and not isinstance(text, str):
                    raise TypeError(f"'text' must be a str, not {type(text).__name__}")
                self._to_client.send_nowait(message)
            elif kind == "websocket.close":
                code, reason = int(message.get("code", 1000)), message.get("reason") or ""
                self._phase = "closed"
                self._app_close = (code, reason)
                self._to_client.send_nowait(message)
                # The client answers the close frame with the same code, as clients do.
                self._to_app_nowait(disconnect(1000))
            else:
                raise RuntimeError(f"unexpected ASGI message {kind!r} after websocket.accept")
        elif phase == "handshake":
            if kind == "websocket.accept":
                subprotocol = message.get("subprotocol")
                if subprotocol is not None and subprotocol not in self.scope["subprotocols"]:
                    raise ValueError(
                        f"the app accepted subprotocol {subprotocol!r}, which the client did "
                        f"not offer ({self.scope['subprotocols']!r})"
                    )
                self.accepted_subprotocol = subprotocol
                self.accept_headers = [
                    (encode(name), encode(value)) for name, value in message.get("headers") or ()
                ]
                self._phase = "connected"
                self._answered.set()
            elif kind == "websocket.close":
                headers = [(b"content-length", b"0"), (b"connection", b"close")]
                self._deny(
                    WebSocketDenied(
                        403,
                        headers,
                        code=int(message.get("code", 1000)),
                        reason=message.get("reason"),
                    )
                )
            elif kind == "websocket.http.response.start":
                if DENIAL_EXTENSION not in self.scope["extensions"]:
                    raise RuntimeError(
                        f"{kind!r} needs the {DENIAL_EXTENSION!r} extension, which this "
                        "client's scope does not offer"
                    )
                self._response_start = message
                self._phase = "response"
            else:
                raise RuntimeError(f"unexpected ASGI message {kind!r} before websocket.accept")
        elif kind == "websocket.http.response.body":  # phase == "response"
            self._response_body += message.get("body", b"")
            if not message.get("more_body", False):
                start = self._response_start
                assert start is not None
                headers = [(encode(n), encode(v)) for n, v in start.get("headers") or ()]
                self._deny(
                    WebSocketDenied(int(start["status"]), headers, bytes(self._response_body))
                )
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} during a denial response")

    def _deny(self, denial: WebSocketDenied) -> None:
        self._phase = "denied"
        self._denial = denial
        self._answered.set()
        # The server closes the connection after the response; the app hears of it.
        self._to_app_nowait(disconnect(1000))

    def _to_app_nowait(self, message: Message) -> None:
        """Queue ``message`` for the app; if its queue is full, from a task that waits."""
        try:
            self._to_app.send_nowait(message)
        except trio.WouldBlock:
            assert self._nursery is not None
            self._nursery.start_soon(self._to_app_later, message)
        except trio.BrokenResourceError:
            pass  # the app has returned

    async def _to_app_later(self, message: Message) -> None:
        try:
            await self._to_app.send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await trio.lowlevel.checkpoint()
