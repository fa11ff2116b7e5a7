"""trio-websocket's own server (no ASGI, no Hypercorn) with the same /echo and /push endpoints.

python3 -m servers.trio_websocket_main --port 8101
"""

from __future__ import annotations

import argparse
import signal

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

from .common import push_params


async def handler(request: WebSocketRequest) -> None:
    path, _, query = request.path.partition("?")
    if path not in ("/echo", "/push"):
        await request.reject(404)
        return
    ws = await request.accept()
    try:
        if path == "/echo":
            while True:
                await ws.send_message(await ws.get_message())
        else:
            n, payload = push_params({"query_string": query.encode()})
            await ws.get_message()  # "go"
            for _ in range(n):
                await ws.send_message(payload)
            while True:
                await ws.get_message()
    except ConnectionClosed:
        pass


async def main(port: int) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: serve_websocket(
                    handler, "127.0.0.1", port, ssl_context=None, task_status=task_status
                )
            )
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    trio.run(main, parser.parse_args().port)
