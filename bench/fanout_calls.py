#!/usr/bin/env python
"""Python calls per delivered message on the server side: hub fan-out against direct sends.

Deterministic (cProfile counts calls, not time). The app of fanout_apps.py runs in process
over ASGI callables with no server behind them: each connection's ``receive`` is a trio
memory channel and ``send`` a counter, so every call counted is trio_ws's, the hub's or
trio's on behalf of the application. ``direct``: the ``/pub`` handler calls ``send_text`` on
each session in turn; ``hub``: it publishes on an in-memory hub and each session's
``forward`` task sends. Hypercorn's own work per send (the same in both) is not included, so
the ratio is an upper bound of the hub's overhead over ``send_text``. Then three runs of
each without the profiler report process CPU time per delivery.

    python3 fanout_calls.py [-n 100] [-m 50]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import trio
import trio.testing

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fanout_apps import trio_app

import trio_ws

PROFILE = True
CPU: dict[str, float] = {}


def scope(path: str, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "scheme": "ws",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "subprotocols": [],
        "state": state,
        "extensions": {},
    }


async def measure(mode: str, n: int, m: int) -> tuple[int, int]:
    sent = [0]
    target = [0]
    reached = trio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent[0] += 1
        if sent[0] == target[0]:
            reached.set()
        await trio.lowlevel.checkpoint()

    async with trio_ws.open_broadcast() as hub, trio.open_nursery() as nursery:
        app = trio_app(mode, None)
        state = {"hub": hub}
        inputs = []
        for path in ["/sub"] * n + ["/pub"]:
            tx, rx = trio.open_memory_channel[dict[str, Any]](m + 10)
            tx.send_nowait({"type": "websocket.connect"})
            inputs.append(tx)
            nursery.start_soon(app, scope(path, state), rx.receive, send)
        target[0] = 2 * n + 1  # accept and "ready" per subscriber, the publisher's accept
        await reached.wait()
        await trio.testing.wait_all_tasks_blocked()
        reached = trio.Event()
        target[0] = sent[0] + n * m
        profile = cProfile.Profile()
        started = time.process_time()
        if PROFILE:
            profile.enable()
        for i in range(m):
            inputs[-1].send_nowait({"type": "websocket.receive", "text": f"message {i}"})
        await reached.wait()
        profile.disable()
        CPU[mode] = (time.process_time() - started) / (n * m)
        nursery.cancel_scope.cancel()
    if not PROFILE:
        return 0, n * m
    stats = pstats.Stats(profile)
    return stats.total_calls, n * m  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=100, help="subscribers")
    parser.add_argument("-m", type=int, default=50, help="messages")
    args = parser.parse_args()
    results = {}
    for mode in ("direct", "hub"):
        calls, deliveries = trio.run(measure, mode, args.n, args.m)
        results[mode] = calls / deliveries
        print(f"{mode:6}  {calls:9,} calls / {deliveries:,} deliveries = {calls / deliveries:.1f}")
    print(f"hub / direct: {results['hub'] / results['direct']:.2f}")
    global PROFILE
    PROFILE = False
    for _ in range(3):
        for mode in ("direct", "hub"):
            trio.run(measure, mode, args.n, args.m)
        print(
            f"CPU per delivery without the profiler: direct {CPU['direct'] * 1e6:.1f} us, hub {CPU['hub'] * 1e6:.1f} us"
        )


if __name__ == "__main__":
    main()
