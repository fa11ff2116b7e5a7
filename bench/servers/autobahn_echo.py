"""Echo every message back, for the Autobahn testsuite (``bench/autobahn.py``).

    python3 -m servers.autobahn_echo --port 9001 [--hypercorn]

Under ``trio_ws.serve`` (data plane on) by default; ``--hypercorn`` runs plain
``hypercorn.trio.serve`` for comparison. ``websocket_max_message_size`` is 20 MiB (case 9.*
sends up to 16 MiB), keepalive pings are off (they are not part of any case).
"""

from __future__ import annotations

import argparse
import functools
import signal

import hypercorn.trio
import trio
from hypercorn.config import Config

import trio_ws


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        try:
            await send(
                {"type": "websocket.send", "bytes": message["bytes"], "text": message["text"]}
            )
        except OSError:  # the client closed meanwhile (ASGI: send on a closed connection raises)
            return


async def main(port: int, plain: bool) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.websocket_max_message_size = 20 * 1024 * 1024
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            if plain:
                stop = trio.Event()
                nursery.start_soon(
                    functools.partial(hypercorn.trio.serve, app, config, shutdown_trigger=stop.wait)
                )
            else:
                await nursery.start(
                    functools.partial(trio_ws.serve, app, config=config, ping_interval=None)
                )
            async for _ in signals:
                if plain:
                    stop.set()
                else:
                    nursery.cancel_scope.cancel()
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--hypercorn", action="store_true")
    args = parser.parse_args()
    trio.run(main, args.port, args.hypercorn)
