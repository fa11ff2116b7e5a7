#!/usr/bin/env python
"""The fan-out app of fanout_apps.py as one server process, for fanout_counts.py and fanout.py.

    python fanout_server.py --port 8101 --server hypercorn|serve --mode direct|hub [--url redis://...]

``hypercorn`` runs ``hypercorn.trio.serve`` (Hypercorn's trio worker, in this process);
``serve`` runs ``trio_ws.serve`` (its data plane carries the WebSocket connections). With
``FANOUT_PROFILE=<file>`` in the environment, SIGUSR1 starts cProfile and SIGUSR2 stops it and
writes the statistics to that file (so only the measured window is profiled). With
``FANOUT_NO_SINK=1`` turns the publisher's direct write into sessions off, and
``FANOUT_WAVES=k`` sets the hub's private limit of wake-up waves (measuring only);
``FANOUT_GC_THRESHOLD=t0,t1,t2`` sets the garbage collector's thresholds. With
``FANOUT_GC=1`` as well, the window counts the cyclic garbage collector's collections and their
CPU time instead, written to that file as JSON. SIGINT or
SIGTERM stops the server.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import json
import os
import signal
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fanout_apps import trio_app


class _GCWindow:
    """Used like a cProfile.Profile for the window: the cyclic garbage collector's collections
    per generation and their process CPU time."""

    def __init__(self) -> None:
        self.on = False
        self.started = 0.0
        self.collections = [0, 0, 0]
        self.cpu = [0.0, 0.0, 0.0]
        self.collected = 0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if not self.on:
            return
        if phase == "start":
            self.started = time.process_time()
        else:
            generation = info["generation"]
            self.collections[generation] += 1
            self.cpu[generation] += time.process_time() - self.started
            self.collected += info["collected"]

    def enable(self) -> None:
        self.on = True

    def disable(self) -> None:
        self.on = False

    def dump_stats(self, path: str) -> None:
        report = {
            "collections": self.collections,
            "gc_cpu_s": self.cpu,
            "collected": self.collected,
            "objects": len(gc.get_objects()),
            "threshold": gc.get_threshold(),
        }
        Path(path).write_text(json.dumps(report))


async def main(port: int, server: str, mode: str, url: str | None) -> None:
    import hypercorn.trio
    from hypercorn.config import Config

    import trio_ws

    app = trio_app(mode, url)
    if os.environ.get("FANOUT_WAVES"):  # the hub's private limit of wake-up waves
        import trio_ws.broadcast._hub

        trio_ws.broadcast._hub._WAVES = int(os.environ["FANOUT_WAVES"])
    if os.environ.get("FANOUT_NO_SINK"):  # forward without the publisher's direct write
        import trio_ws.broadcast._forward

        trio_ws.broadcast._forward._sends_plainly = lambda websocket: False
    if os.environ.get("FANOUT_GC_THRESHOLD"):  # e.g. "20000,10,10"
        gc.set_threshold(*map(int, os.environ["FANOUT_GC_THRESHOLD"].split(",")))
    profile_path = os.environ.get("FANOUT_PROFILE")
    profile = _GCWindow() if os.environ.get("FANOUT_GC") else None
    if profile is None and profile_path:
        profile = cProfile.Profile()
    stop = trio.Event()
    wanted = [signal.SIGINT, signal.SIGTERM]
    if profile is not None:
        wanted += [signal.SIGUSR1, signal.SIGUSR2]
    with trio.open_signal_receiver(*wanted) as signals:
        async with trio.open_nursery() as nursery:
            if server == "serve":
                await nursery.start(
                    functools.partial(trio_ws.serve, app, host="127.0.0.1", port=port)
                )
            else:
                config = Config()
                config.bind = [f"127.0.0.1:{port}"]
                config.accesslog = None
                nursery.start_soon(
                    functools.partial(hypercorn.trio.serve, app, config, shutdown_trigger=stop.wait)
                )
            async for signum in signals:
                if signum == signal.SIGUSR1 and profile is not None:
                    profile.enable()
                elif signum == signal.SIGUSR2 and profile is not None:
                    profile.disable()
                    assert profile_path is not None
                    profile.dump_stats(profile_path)
                    Path(profile_path + ".done").touch()  # noqa: ASYNC240 (outside the window)
                elif signum in (signal.SIGINT, signal.SIGTERM):
                    stop.set()
                    if server == "serve":
                        nursery.cancel_scope.cancel()
                    break


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=["hypercorn", "serve"], default="hypercorn")
    parser.add_argument("--mode", choices=["direct", "tasks", "hub"], default="hub")
    parser.add_argument("--url", default=os.environ.get("FANOUT_URL") or None)
    args = parser.parse_args()
    trio.run(main, args.port, args.server, args.mode, args.url)
