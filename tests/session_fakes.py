"""An in-memory ASGI server for deterministic session tests.

``FakeServer`` plays the server's side of one WebSocket connection: the test pushes client
events into the app's queue and reads what the app sent. Its ``receive`` is either the bound
``receive`` of a trio memory channel (as under Hypercorn's trio worker, which lets a session
read directly) or an opaque coroutine function (which makes the session use its pump).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

Message = dict[str, Any]


def websocket_scope(
    path: str = "/ws",
    *,
    subprotocols: list[str] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000"), *(headers or [])],
        "subprotocols": subprotocols or [],
        "extensions": {"websocket.http.response": {}} if extensions is None else extensions,
        "state": {},
    }


class FakeServer:
    """The server side of one connection, driven by the test.

    Args:
        channel_receive: Hand the app a trio channel's bound ``receive`` (like Hypercorn)
            rather than an opaque coroutine function.
        queue_size: The app queue's capacity (Hypercorn's default is 10).
        **scope_options: Passed to :func:`websocket_scope`.
    """

    def __init__(
        self, *, channel_receive: bool = True, queue_size: int = 10, **scope_options: Any
    ) -> None:
        self.scope = websocket_scope(**scope_options)
        self._to_app, self._app_inbox = trio.open_memory_channel[Message](queue_size)
        self.sent: list[Message] = []
        self.app_closed = trio.Event()
        self.accepted = trio.Event()
        #: Called (awaited) inside ``send`` before the message is recorded: fault injection.
        self.send_hook: Callable[[Message], Awaitable[None]] | None = None
        #: When true, the server answers the app's close with a disconnect, like a client.
        self.echo_close = True
        if channel_receive:
            self.receive: Callable[[], Awaitable[Message]] = self._app_inbox.receive
        else:

            async def receive() -> Message:
                return await self._app_inbox.receive()

            self.receive = receive
        self._to_app.send_nowait({"type": "websocket.connect"})

    async def send(self, message: Message) -> None:
        await trio.lowlevel.checkpoint()
        if self.send_hook is not None:
            await self.send_hook(message)
        self.sent.append(message)
        if message["type"] == "websocket.accept":
            self.accepted.set()
        elif message["type"] == "websocket.close":
            self.app_closed.set()
            if self.echo_close and self.accepted.is_set():
                self._to_app.send_nowait({"type": "websocket.disconnect", "code": 1000})

    # -- the client's side
    async def client_text(self, text: str) -> None:
        await self._to_app.send({"type": "websocket.receive", "text": text})

    async def client_bytes(self, data: bytes) -> None:
        await self._to_app.send({"type": "websocket.receive", "bytes": data})

    async def client_disconnect(self, code: int = 1006, reason: str | None = None) -> None:
        message: Message = {"type": "websocket.disconnect", "code": code}
        if reason is not None:
            message["reason"] = reason
        await self._to_app.send(message)

    def data_sent(self) -> list[str | bytes]:
        return [m.get("text", m.get("bytes")) for m in self.sent if m["type"] == "websocket.send"]

    def close_sent(self) -> Message | None:
        closes = [m for m in self.sent if m["type"] == "websocket.close"]
        assert len(closes) <= 1, f"the app closed more than once: {closes}"
        return closes[0] if closes else None
