"""The app ``tests/test_cli.py`` serves with ``python -m trio_ws``: says which process serves
the connection (``"pid 1234"``), then echoes text."""

from __future__ import annotations

import os

import trio_ws


async def handler(ws: trio_ws.WebSocket) -> None:
    await ws.accept()
    await ws.send_text(f"pid {os.getpid()}")
    async for text in ws.iter_text():
        await ws.send_text(text)


app = trio_ws.websocket_app(handler)

not_an_app = 42
