"""Echo server: every text message comes back as text, every binary message as bytes.

Session mode: `trio_ws.websocket_app` opens the connection's session around the handler, so
returning closes with 1000 and a client that leaves simply ends the loop.

Run it (from the repository root)::

    python3 -m pip install -e .
    python3 -m hypercorn -k trio --bind 127.0.0.1:8000 examples.echo:app

then talk to it with any WebSocket client, for example::

    python3 -m websockets ws://127.0.0.1:8000/
"""

from __future__ import annotations

import trio_ws


async def echo(ws: trio_ws.WebSocket) -> None:
    await ws.accept()
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None:
            await ws.send_text(text)
        else:
            await ws.send_bytes(message["bytes"])


app = trio_ws.websocket_app(echo)
