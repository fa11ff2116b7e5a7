"""A plain ASGI app written exactly as Starlette code is, on `trio_ws.WebSocket`.

Plain mode: no session and no helper tasks. The class behaves like
``starlette.websockets.WebSocket``, so a Starlette program moves over by changing its import.
Text comes back as text and bytes as bytes, as in ``examples/echo.py``.

Run it (from the repository root)::

    python3 -m pip install -e .
    python3 -m hypercorn -k trio --bind 127.0.0.1:8000 examples.starlette_style:app
"""

from __future__ import annotations

from trio_ws import WebSocket
from trio_ws.types import Receive, Scope, Send


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "websocket":
        raise RuntimeError(f"this app serves WebSockets only, not {scope['type']!r}")

    websocket = WebSocket(scope, receive=receive, send=send)
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            break
        if message.get("text") is not None:
            await websocket.send_text(message["text"])
        else:
            await websocket.send_bytes(message["bytes"])


async def lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop: acknowledge both, as Starlette's router does."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
