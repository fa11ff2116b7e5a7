"""A trio-websocket handler with its own nursery, next to an HTTP route on the same port.

``clock`` is a handler in trio-websocket's style: after ``accept`` it runs two tasks in a
nursery, one sending ``tick N`` every second, one answering each message in capitals; when the
client leaves, ``ConnectionClosed`` ends the reader, which cancels the ticker. Under Hypercorn
it is one route of a trio_ws ``Router``; ``GET /health`` answers on the same port.

Run it (from the repository root)::

    python3 -m hypercorn -k trio --bind 127.0.0.1:8000 examples.trio_websocket_nursery:app

then ``python3 -m websockets ws://127.0.0.1:8000/clock`` and ``curl http://127.0.0.1:8000/health``.
"""

from __future__ import annotations

import itertools

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

import trio_ws

TICK_SECONDS = 1.0


async def clock(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker, ws)
        nursery.start_soon(shout, ws, nursery.cancel_scope)


async def ticker(ws: WebSocketConnection) -> None:
    for n in itertools.count():
        try:
            await ws.send_message(f"tick {n}")
        except ConnectionClosed:
            return
        await trio.sleep(TICK_SECONDS)


async def shout(ws: WebSocketConnection, cancel_scope: trio.CancelScope) -> None:
    while True:
        try:
            message = await ws.get_message()
            await ws.send_message(message.upper())
        except ConnectionClosed:
            cancel_scope.cancel()
            return


async def health(request: trio_ws.Request) -> trio_ws.Response:
    return trio_ws.PlainTextResponse("ok")


app = trio_ws.Router(
    [
        trio_ws.Route("/health", health),
        trio_ws.WebSocketRoute("/clock", trio_ws.trio_websocket_app(clock)),
    ]
)
