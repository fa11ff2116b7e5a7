"""``examples/serve.py``: started in-process on a free port, it echoes, and cancelling stops it."""

from __future__ import annotations

import functools

import trio
from trio_websocket import wrap_client_stream

from examples.serve import main

TIMEOUT = 5.0


async def test_example_serve_echoes_and_stops_when_cancelled() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            urls: list[str] = await nursery.start(functools.partial(main, port=0))
            authority = urls[0].removeprefix("http://")
            host, _, port = authority.rpartition(":")
            stream = await trio.open_tcp_stream(host, int(port))
            try:
                async with trio.open_nursery() as client_nursery:
                    ws = await wrap_client_stream(client_nursery, stream, authority, "/")
                    await ws.send_message("hello, serve")
                    assert await ws.get_message() == "hello, serve"
                    await ws.send_message(b"\x00\xff")
                    assert await ws.get_message() == b"\x00\xff"
                    await ws.aclose()
            finally:
                await trio.aclose_forcefully(stream)
            nursery.cancel_scope.cancel()
