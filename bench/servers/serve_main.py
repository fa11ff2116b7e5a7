"""Run an echo app under ``trio_ws.serve`` as one process (the bench worker is this process).

    python3 -m servers.serve_main --port 8101 --app session [--no-data-plane] [--no-coalescing]

``--app session`` is ``servers.session_echo`` (a trio_ws session per connection), ``--app raw``
is ``servers.raw_echo`` (raw ASGI). Keepalive pings stay at serve's defaults (20 s, far longer
than any run). SIGINT stops it (serve drains, then returns).
"""

from __future__ import annotations

import argparse
import functools
import signal

import trio

import trio_ws

from . import raw_echo, session_echo


async def main(port: int, app_name: str, data_plane: bool) -> None:
    app = session_echo.app if app_name == "session" else raw_echo.app
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                functools.partial(trio_ws.serve, app, port=port, data_plane=data_plane)
            )
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app", choices=["session", "raw"], default="session")
    parser.add_argument("--no-data-plane", action="store_true")
    parser.add_argument(
        "--no-coalescing", action="store_true", help="data plane write coalescing off"
    )
    args = parser.parse_args()
    if args.no_coalescing:
        from trio_ws import _dataplane_cork

        _dataplane_cork.ENABLED = False
    trio.run(main, args.port, args.app, not args.no_data_plane)
