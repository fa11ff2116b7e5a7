"""trio_ws in a Starlette app: sessions inside endpoints, and a trio_ws Router mounted in it.

``ws://HOST/ticker`` is a Starlette endpoint that runs a trio_ws session: a helper task sends
``tick N`` every second while the endpoint echoes what the client sends, and both end with
the connection (the close code says how). ``ws://HOST/live/room/{name}`` is served by a trio_ws
``Router`` mounted in the Starlette app; ``GET /`` shows both URLs, built with ``url_for``.

Run it (from the repository root, with Starlette installed)::

    python3 -m hypercorn -k trio --bind 127.0.0.1:8000 examples.starlette_app:app

then ``python3 -m websockets ws://127.0.0.1:8000/ticker`` and ``curl http://127.0.0.1:8000/``.
"""

from __future__ import annotations

import itertools

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

import trio_ws

TICK_SECONDS = 1.0


async def ticker(websocket: WebSocket) -> None:
    """A Starlette endpoint. It accepts as Starlette code does, then runs a trio_ws session."""
    await websocket.accept()
    async with trio_ws.session(websocket) as ws:
        ws.start_soon(tick, ws)  # ends with the connection
        async for text in ws.iter_text():
            await ws.send_text(f"echo: {text}")


async def tick(ws: trio_ws.WebSocket) -> None:
    for n in itertools.count():
        await ws.send_text(f"tick {n}")
        await trio.sleep(TICK_SECONDS)


async def room(ws: trio_ws.WebSocket) -> None:
    """A trio_ws endpoint (already in a session), served by the mounted Router."""
    await ws.accept()
    name = ws.path_params["name"]
    async for text in ws.iter_text():
        await ws.send_text(f"{name}: {text}")


async def homepage(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "ticker": str(request.url_for("ticker")),
            "room": str(request.url_for("live:room", name="lobby")),
        }
    )


live = trio_ws.Router([trio_ws.WebSocketRoute("/room/{name}", room, name="room")])

app = Starlette(
    routes=[
        Route("/", homepage),
        WebSocketRoute("/ticker", ticker),
        Mount("/live", app=live, name="live"),
    ]
)
