"""A price ticker: the server pushes the latest price; a slow client skips stale ones.

``ws://HOST/ticker/{symbol}`` streams ``{"symbol": ..., "price": ..., "seq": ...}`` as JSON.
One task (started in the lifespan) publishes a new price for each symbol every 50 ms; each
connection subscribes with ``max_backlog=1, on_overflow="drop_oldest"``, so a client that
reads slowly always gets the newest price, never a growing queue. The handler only pushes: it
runs under ``ws.cancel_on_disconnect()``, which ends the loop when the client leaves.

Run it::

    python3 -m hypercorn -k trio --bind 127.0.0.1:8000 examples.ticker:app
    python3 -m websockets ws://127.0.0.1:8000/ticker/TRIO
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

import trio_ws
from trio_ws import Router, WebSocket, WebSocketRoute
from trio_ws.broadcast import Hub

SYMBOLS = ("TRIO", "ASGI", "WSPR")
PERIOD = 0.05


async def publish_prices(hub: Hub) -> None:
    """Publish a random walk for every symbol, every ``PERIOD`` seconds."""
    prices = dict.fromkeys(SYMBOLS, 100.0)
    seq = 0
    while True:
        seq += 1
        for symbol in SYMBOLS:
            prices[symbol] = max(0.01, prices[symbol] * random.uniform(0.99, 1.01))
            message = {"symbol": symbol, "price": round(prices[symbol], 2), "seq": seq}
            await hub.publish(f"ticker:{symbol}", json.dumps(message))
        await trio.sleep(PERIOD)


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[dict[str, Hub]]:
    """The hub and the price feed live as long as the server."""
    async with trio_ws.open_broadcast(os.environ.get("TRIO_WS_BROADCAST_URL") or None) as hub:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(publish_prices, hub)
            yield {"hub": hub}
            nursery.cancel_scope.cancel()


async def ticker(ws: WebSocket) -> None:
    """Push the symbol's newest price until the client leaves."""
    hub: Hub = ws.state.hub
    symbol = ws.path_params["symbol"].upper()
    if symbol not in SYMBOLS:
        await ws.close(1008, f"unknown symbol {symbol[:40]}")  # before accept: HTTP 403
        return
    await ws.accept()
    with ws.cancel_on_disconnect():
        async with hub.subscribe(
            f"ticker:{symbol}", max_backlog=1, on_overflow="drop_oldest"
        ) as sub:
            async for price in sub:
                await ws.send_text(str(price))


app = Router([WebSocketRoute("/ticker/{symbol}", ticker)], lifespan=lifespan)
