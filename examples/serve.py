"""Serve an echo app from inside a trio program with ``trio_ws.serve``.

Ctrl+C cancels the program's task; ``serve`` then drains: every open session is closed with
1001 ("server shutting down"), clients that stopped reading are aborted, and Hypercorn shuts
down (running the app's lifespan shutdown). Run it (from the repository root)::

    python3 examples/serve.py

and talk to it with any WebSocket client, for example ``python3 -m websockets ws://127.0.0.1:8000/``.
"""

from __future__ import annotations

import functools

import trio

import trio_ws


async def echo(ws: trio_ws.WebSocket) -> None:
    """Send every text message back as text, every binary message as bytes."""
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


async def main(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until cancelled; report the bound URLs through ``task_status``."""
    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(
            functools.partial(trio_ws.serve, app, host=host, port=port)
        )
        print("serving on", ", ".join(urls), "(Ctrl+C to stop)")
        task_status.started(urls)


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        print("stopped")
