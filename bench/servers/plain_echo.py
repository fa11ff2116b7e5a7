"""plain-hc: ``trio_ws.WebSocket`` used plainly (Starlette-style, no session) inside an ASGI function."""

from __future__ import annotations

from trio_ws import WebSocket

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
    websocket = WebSocket(scope, receive=receive, send=send)
    if path not in ("/echo", "/push"):
        await websocket.close()  # before accept: a denial
        return
    await websocket.accept()
    if path == "/echo":
        while True:
            message = await websocket.receive()
            if message["type"] != "websocket.receive":
                return  # websocket.disconnect
            text = message.get("text")
            if text is not None:
                await websocket.send_text(text)
            else:
                await websocket.send_bytes(message["bytes"])
    else:
        n, payload = push_params(scope)
        message = await websocket.receive()  # "go"
        if message["type"] != "websocket.receive":
            return
        for _ in range(n):
            await websocket.send_text(payload)
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
