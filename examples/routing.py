"""A small chat server: rooms over WebSockets, an HTTP route, and origin checks.

``ws://HOST/chat/{room}/{user}`` joins a room: every text message is sent to everyone in it
(the sender included), with joins and departures announced. ``GET /rooms/{room}`` tells how
many are in a room and the WebSocket URL to join it (built with ``url_for``).

Browsers may only connect from the listed origins (``allowed_origins``); clients that send no
``Origin`` header, such as command-line tools, are let in. Messages above 4 KiB close the
connection with 1009.

Run it (from the repository root)::

    python3 -m hypercorn -k trio --bind 127.0.0.1:8000 examples.routing:app

then, in two terminals::

    python3 -m websockets ws://127.0.0.1:8000/chat/lobby/alice
    python3 -m websockets ws://127.0.0.1:8000/chat/lobby/bob

and ``curl http://127.0.0.1:8000/rooms/lobby``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import trio

from trio_ws import JSONResponse, Request, Response, Route, Router, WebSocket, WebSocketRoute


class Rooms:
    """Who is in which room: one bounded channel per member."""

    def __init__(self) -> None:
        self._members: dict[str, set[trio.MemorySendChannel[str]]] = {}

    def count(self, room: str) -> int:
        """How many are in ``room``."""
        return len(self._members.get(room, ()))

    @asynccontextmanager
    async def join(self, room: str) -> AsyncIterator[trio.MemoryReceiveChannel[str]]:
        """Be in ``room`` for the block; yield the channel the room's messages arrive on.

        The reader owns the channel it is given (it closes it). On leaving, the room closes its
        own end, so the reader's ``async for`` ends once it has read what was already sent.
        """
        send, receive = trio.open_memory_channel[str](64)
        members = self._members.setdefault(room, set())
        members.add(send)
        try:
            yield receive
        finally:
            members.discard(send)
            send.close()
            if not members:
                del self._members[room]

    def publish(self, room: str, text: str) -> None:
        """Send ``text`` to everyone in ``room``; a member too slow to keep up misses it."""
        for member in self._members.get(room, ()):
            with suppress(trio.WouldBlock, trio.BrokenResourceError):
                member.send_nowait(text)


rooms = Rooms()


async def forward(inbox: trio.MemoryReceiveChannel[str], ws: WebSocket) -> None:
    """Pass the room's messages to this client (a helper task of the connection).

    Ends when the member leaves the room (the room closes its end of the channel), or with the
    connection.
    """
    async with inbox:
        async for text in inbox:
            await ws.send_text(text)


async def chat(ws: WebSocket) -> None:
    """One member of a room, for as long as the connection lasts."""
    room, user = ws.path_params["room"], ws.path_params["user"]
    await ws.accept()
    try:
        async with rooms.join(room) as inbox:
            ws.start_soon(forward, inbox, ws)  # ends with the connection
            rooms.publish(room, f"{user} joined")
            async for text in ws.iter_text():  # ends when the client leaves
                rooms.publish(room, f"{user}: {text}")
    finally:
        rooms.publish(room, f"{user} left")  # to those still in the room


async def room_info(request: Request) -> Response:
    """``GET /rooms/{room}``: the number of members and the URL to join."""
    room = request.path_params["room"]
    join = request.url_for("chat", room=room, user="YOUR-NAME")
    return JSONResponse({"room": room, "members": rooms.count(room), "join": str(join)})


app = Router(
    [
        WebSocketRoute(
            "/chat/{room}/{user}",
            chat,
            name="chat",
            allowed_origins=[
                "http://localhost:8000",
                "http://127.0.0.1:8000",
                "https://*.example.com",
            ],
            max_message_size=4096,
        ),
        Route("/rooms/{room}", room_info),
    ]
)
