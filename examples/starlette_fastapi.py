"""trio_ws in a FastAPI app: a session inside an ``@app.websocket`` endpoint.

``ws://HOST/chat?name=NAME`` greets by name (a query parameter FastAPI validates), then
answers every JSON message ``{"text": ...}`` with ``{"from": NAME, "text": ...}``. The
session caps messages at 4 KiB (1009 above that) and closes with 1007 on a message that is not
JSON. ``ws://HOST/live/echo`` is a ``trio_ws.websocket_app`` mounted in the FastAPI app.

Run it (from the repository root, with FastAPI installed)::

    python3 -m hypercorn -k trio --bind 127.0.0.1:8000 examples.starlette_fastapi:app

then ``python3 -m websockets "ws://127.0.0.1:8000/chat?name=ann"`` and type
``{"text": "hello"}``.
"""

from __future__ import annotations

from fastapi import FastAPI, WebSocket

import trio_ws

app = FastAPI()


@app.websocket("/chat")
async def chat(websocket: WebSocket, name: str) -> None:
    async with trio_ws.session(websocket, max_message_size=4096, close_on_invalid_json=True) as ws:
        await ws.accept()
        await ws.send_json({"hello": name})
        async for message in ws.iter_json():
            await ws.send_json({"from": name, "text": message.get("text")})


async def echo(ws: trio_ws.WebSocket) -> None:
    await ws.accept()
    async for text in ws.iter_text():
        await ws.send_text(text)


app.mount("/live", trio_ws.Router([trio_ws.WebSocketRoute("/echo", echo)]))
