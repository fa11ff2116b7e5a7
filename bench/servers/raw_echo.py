"""(a) raw-hc: a raw ASGI app, no framework. The baseline.

/echo echoes text as text and bytes as bytes until the client disconnects.
/push?n=&size= waits for one message ("go"), sends n text messages of size bytes as fast as
``send`` returns, then waits for the client to close.
"""

from __future__ import annotations

from .common import lifespan, not_found, push_params


async def app(scope, receive, send) -> None:
    scope_type = scope["type"]
    if scope_type == "lifespan":
        await lifespan(receive, send)
        return
    if scope_type != "websocket":
        await not_found(send)
        return
    path = scope["path"]
    message = await receive()  # websocket.connect
    if path not in ("/echo", "/push"):
        await send({"type": "websocket.close", "code": 1000, "reason": ""})
        return
    await send({"type": "websocket.accept", "subprotocol": None, "headers": []})
    if path == "/echo":
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return  # websocket.disconnect
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
    else:
        n, payload = push_params(scope)
        message = await receive()  # "go"
        if message["type"] != "websocket.receive":
            return
        for _ in range(n):
            await send({"type": "websocket.send", "text": payload})
        while (await receive())["type"] != "websocket.disconnect":
            pass
