"""Plain Hypercorn (``hypercorn.trio.serve``, no trio_ws.serve) as one process, for counts.py.

python3 -m servers.hypercorn_main --port 8101 --app raw|session
"""

from __future__ import annotations

import argparse
import signal

import hypercorn.trio
import trio
from hypercorn.config import Config

from . import raw_echo, session_echo


async def main(port: int, app_name: str) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    app = session_echo.app if app_name == "session" else raw_echo.app
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: hypercorn.trio.serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
            )
            async for _ in signals:
                stop.set()
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app", choices=["session", "raw"], default="raw")
    args = parser.parse_args()
    trio.run(main, args.port, args.app)
