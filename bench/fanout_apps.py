"""Fan-out servers for fanout.py: the same two endpoints on trio_ws and on Starlette.

``/sub`` subscribes to the channel ``bench``, sends ``ready`` once subscribed, then passes
every published message to its client. ``/pub`` publishes every text message it receives.

* ``trio_app()`` (Hypercorn's trio worker): ``FANOUT_MODE=hub`` uses ``trio_ws.open_broadcast``
  (in memory, or Redis when ``FANOUT_URL`` is set) with ``forward``; ``FANOUT_MODE=direct``
  has no hub: ``/pub`` itself calls ``send_text`` on every subscribed session, one after
  another (the cost of one ``send_text`` per delivery, the goal's reference).
* ``FANOUT_MODE=tasks`` (no hub either): each subscribed session has its own task that sends
  what ``/pub`` puts into the session's trio memory channel: one ``send_text`` per delivery
  from the session's own task, as a fan-out without a hub would do it.
* ``starlette_app()`` (uvicorn): encode/broadcaster's memory or Redis backend (``FANOUT_URL``,
  ``memory://`` by default), the asyncio reference.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

MODE = os.environ.get("FANOUT_MODE", "hub")
URL = os.environ.get("FANOUT_URL") or None
BACKLOG = 100_000  # large enough that no message is dropped in the benchmark


def trio_app(mode: str = MODE, url: str | None = URL) -> Any:
    import trio

    import trio_ws
    from trio_ws import Router, WebSocket, WebSocketRoute
    from trio_ws.broadcast import forward

    sessions: set[WebSocket] = set()
    inboxes: set[trio.MemorySendChannel[str]] = set()

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        async with trio_ws.open_broadcast(url) as hub:
            yield {"hub": hub}

    async def sub(ws: WebSocket) -> None:
        await ws.accept()
        if mode == "direct":
            sessions.add(ws)
            try:
                await ws.send_text("ready")
                await ws.wait_disconnected()
            finally:
                sessions.discard(ws)
            return
        if mode == "tasks":
            inbox, outbox = trio.open_memory_channel[str](BACKLOG)
            inboxes.add(inbox)
            try:
                await ws.send_text("ready")
                ws.start_soon(send_each, outbox, ws)
                await ws.wait_disconnected()
            finally:
                inboxes.discard(inbox)
            return
        async with ws.state.hub.subscribe("bench", max_backlog=BACKLOG) as subscription:
            await ws.send_text("ready")
            ws.start_soon(forward, subscription, ws)
            await ws.wait_disconnected()

    async def send_each(outbox: trio.MemoryReceiveChannel[str], ws: WebSocket) -> None:
        async for text in outbox:
            await ws.send_text(text)

    async def pub(ws: WebSocket) -> None:
        await ws.accept()
        hub = ws.state.hub
        async for text in ws.iter_text():
            if mode == "direct":
                for session in list(sessions):
                    await session.send_text(text)
            elif mode == "tasks":
                for inbox in inboxes:
                    inbox.send_nowait(text)
                await trio.lowlevel.checkpoint()
            else:
                await hub.publish("bench", text)

    return Router(
        [
            WebSocketRoute("/sub", sub),
            WebSocketRoute("/pub", pub, on_inbox_full="block"),
        ],
        lifespan=lifespan,
    )


def starlette_app() -> Any:
    from broadcaster import Broadcast
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    broadcast = Broadcast(URL or "memory://")

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with broadcast:
            # Work around two races in broadcaster 0.3.1's Redis backend (with redis-py 8.1;
            # the memory backend has neither) by subscribing twice at startup, before any
            # client:
            # * its listener task starts reading the pub/sub connection when a channel's
            #   first subscriber arrives, but redis-py counts the subscription only once the
            #   SUBSCRIBE was sent, so the listener finds none, stops, and waits for the next
            #   new channel. Subscribing "_warm" first, then "bench", makes the second
            #   start find the first subscription: the listener then keeps reading;
            # * Broadcast.subscribe() awaits the backend's SUBSCRIBE for a channel's first
            #   subscriber and only then stores {its queue} as the channel's subscribers;
            #   the first subscribers that arrive together each do so, and each replaces the
            #   others' queue, so all but one of them never get a message. With "bench"
            #   held from startup, every client's subscribe() only adds its queue.
            # The holder reads and discards what arrives (1 extra queue put per 1,000
            # deliveries, in bc-mem too).
            ready = asyncio.Event()

            async def hold() -> None:
                async with broadcast.subscribe("_warm"):
                    await asyncio.sleep(0.2)
                    async with broadcast.subscribe("bench") as subscriber:
                        ready.set()
                        async for _ in subscriber:  # type: ignore[union-attr]
                            pass

            holder = asyncio.create_task(hold())
            await ready.wait()
            await asyncio.sleep(0.2)
            yield
            holder.cancel()

    async def sub(ws: WebSocket) -> None:
        await ws.accept()
        async with broadcast.subscribe("bench") as subscriber:
            await ws.send_text("ready")
            async for event in subscriber:  # type: ignore[union-attr]
                await ws.send_text(event.message)

    async def pub(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            await broadcast.publish("bench", message["text"])

    return Starlette(
        routes=[WebSocketRoute("/sub", sub), WebSocketRoute("/pub", pub)], lifespan=lifespan
    )
