"""Testing ``examples/echo.py`` with ``trio_ws.testing``: a runnable example of the test helpers.

Run it with pytest and pytest-trio in ``trio_mode`` (this repository's configuration), from
the repository root, after installing trio_ws with its test dependencies::

    python3 -m pip install -e ".[test]"
    python3 -m pytest examples/test_echo_app.py

The in-process client needs no sockets and no threads; the last test serves the same app on
real Hypercorn and talks to it with trio-websocket.
"""

from __future__ import annotations

import pytest
import trio
import trio_websocket

import trio_ws
from examples.echo import app
from trio_ws.testing import WebSocketDenied, open_connection, open_server


async def test_text_and_bytes_come_back() -> None:
    async with open_connection(app, "/") as client:
        await client.send_text("hello")
        assert await client.receive_text() == "hello"
        await client.send_bytes(b"\x00\x01")
        assert await client.receive_bytes() == b"\x00\x01"


async def test_leaving_ends_the_handler_quietly() -> None:
    async with open_connection(app, "/") as client:
        await client.send_text("bye")
        assert await client.receive_text() == "bye"
        await client.close(4000, "done")  # the app sees the disconnect and returns


async def test_a_denial_is_an_exception_with_status_and_body() -> None:
    async def members_only(ws: trio_ws.WebSocket) -> None:
        if ws.headers.get("authorization") != "Bearer letmein":
            await ws.deny(401, b"unauthorized")
            return
        await ws.accept()

    with pytest.raises(WebSocketDenied) as denied:
        async with open_connection(trio_ws.websocket_app(members_only), "/"):
            pass  # pragma: no cover - never reached
    assert (denied.value.status, denied.value.body) == (401, b"unauthorized")


async def test_on_real_hypercorn() -> None:
    async with open_server(app) as server:
        with trio.fail_after(10):
            stream = await trio.open_tcp_stream(server.host, server.port)
            async with trio.open_nursery() as nursery:
                authority = server.ws_url.removeprefix("ws://")
                ws = await trio_websocket.wrap_client_stream(nursery, stream, authority, "/")
                await ws.send_message("over TCP")
                assert await ws.get_message() == "over TCP"
                await ws.aclose()
