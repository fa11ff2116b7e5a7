"""session-hc: ``trio_ws.websocket_app`` running a session (``async with websocket``) per connection.

The handler reads with ``ws.receive()`` and echoes text with ``send_text`` and bytes with
``send_bytes``, the same message shapes as the other variants. ``websocket_app`` itself answers
lifespan and plain HTTP.
"""

from __future__ import annotations

import trio_ws

from .common import push_params


async def handler(websocket: trio_ws.WebSocket) -> None:
    path = websocket.scope["path"]
    if path not in ("/echo", "/push"):
        return  # returning before accept: the session denies the connection
    await websocket.accept()
    if path == "/echo":
        while True:
            message = await websocket.receive()
            if message["type"] != "websocket.receive":
                return  # websocket.disconnect: nothing left to send
            text = message.get("text")
            if text is not None:
                await websocket.send_text(text)
            else:
                await websocket.send_bytes(message["bytes"])
    else:
        n, payload = push_params(websocket.scope)
        message = await websocket.receive()  # "go"
        if message["type"] != "websocket.receive":
            return
        for _ in range(n):
            await websocket.send_text(payload)
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass


app = trio_ws.websocket_app(handler)
