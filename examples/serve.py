"""Serve an echo app from inside a trio program with ``trio_ws.serve``.

Ctrl+C (SIGINT) or SIGTERM cancels the server's nursery; ``serve`` then drains: every open
session is closed with 1001 ("server shutting down"), clients that stopped reading are aborted,
and Hypercorn shuts down (running the app's lifespan shutdown). The program then prints
``stopped`` and exits with status 0. Run it (from the repository root)::

    python3 examples/serve.py          # port 8000; pass another port as the first argument

and talk to it with any WebSocket client, for example ``python3 -m websockets ws://127.0.0.1:8000/``.
"""

from __future__ import annotations

import functools
import logging
import signal
import sys

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
        print("serving on", ", ".join(urls), "(Ctrl+C to stop)", flush=True)
        task_status.started(urls)


async def run_until_signalled(port: int = 8000) -> None:
    """Serve until SIGINT (Ctrl+C) or SIGTERM, then drain and return.

    Catching the signal (instead of letting trio raise ``KeyboardInterrupt`` inside the
    nursery, which then escapes ``trio.run`` wrapped in an exception group) lets the shutdown
    run as a plain cancellation.
    """
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(main, port=port))
            async for signum in signals:
                print(f"{signal.Signals(signum).name}: shutting down", flush=True)
                nursery.cancel_scope.cancel()
                break
    print("stopped", flush=True)


if __name__ == "__main__":
    # trio_ws logs what an operator needs (bound URLs, drain progress, rejected handshakes).
    log = logging.StreamHandler()
    log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger("trio_ws").addHandler(log)
    logging.getLogger("trio_ws").setLevel(logging.INFO)
    trio.run(run_until_signalled, int(sys.argv[1]) if len(sys.argv) > 1 else 8000)
