#!/usr/bin/env python
"""WebSocket load client: the ``websockets`` sans-I/O ``ClientProtocol`` on a bare asyncio Protocol.

No per-message futures, tasks or queues: ping-pong is driven from ``data_received`` callbacks
(the reply to message i sends message i+1 on that connection). uvloop is used when importable
(``--no-uvloop`` to turn it off). The client never offers permessage-deflate.

Modes (every loop is bounded by a count and by ``--time-limit``):

* ``pingpong``: ``-c`` connections to /echo, each does ``--warmup`` unrecorded echoes, then
  (after all finished warming up) ``-m`` recorded echoes of ``--size`` bytes (text, or binary
  with ``--binary``). Reports msgs/s over the measured window and per-message RTT p50/p99.
* ``push``: ``--rounds`` fresh connections to /push?n=&size=; each sends "go" and times until the
  n-th message arrives. Reports the median round's msgs/s.
* ``idle``: 20 warm-up connections opened and closed, then ``-k`` connections to /echo opened
  ``--open-concurrency`` at a time; settle; one ``--size`` echo over every connection; settle;
  close all. With ``--server-pid`` reports server RSS at each step and RSS per connection =
  (RSS after the echo - RSS before opening) / k.

With ``--server-pid`` the server process's CPU time (user+system, from /proc via psutil) is read
at the edges of the measured window, giving server CPU us/msg and CPU %. The client's own
process CPU time over the same window is always reported.

Output: one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

try:
    import psutil
except ImportError:  # pragma: no cover
    psutil = None

OP_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class Deadline(Exception):
    pass


class Conn(asyncio.Protocol):
    """One WebSocket connection: sans-I/O protocol + asyncio transport, callbacks only."""

    def __init__(self, uri, loop: asyncio.AbstractEventLoop, deflate: bool = False) -> None:
        extensions = [ClientPerMessageDeflateFactory()] if deflate else None
        self.ws = ClientProtocol(uri, max_size=None, extensions=extensions)
        self.transport: asyncio.Transport | None = None
        self.opened = loop.create_future()
        self.closed = loop.create_future()
        self.on_message = None  # callable(Frame)

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if type(event) is Frame:
                if event.fin and event.opcode in OP_DATA and self.on_message is not None:
                    self.on_message(event)
            elif isinstance(event, Response) and not self.opened.done():
                if ws.handshake_exc is not None:
                    self.opened.set_exception(ws.handshake_exc)
                else:
                    self.opened.set_result(None)
        self.flush()

    def eof_received(self):
        self.ws.receive_eof()
        self.flush()
        return False  # let the transport close

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"connection lost before handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    # helpers
    def flush(self) -> None:
        transport = self.transport
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()

    def send(self, payload: bytes, binary: bool) -> None:
        if binary:
            self.ws.send_binary(payload)
        else:
            self.ws.send_text(payload)
        for data in self.ws.data_to_send():
            self.transport.write(data)

    async def close(self, timeout: float) -> None:
        if self.transport is None:
            return
        if self.ws.state is State.OPEN:
            self.ws.send_close(1000)
            self.flush()
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), max(timeout, 0.001))
        except (asyncio.TimeoutError, Exception):
            self.transport.abort()


class Meter:
    """Wall clock, client CPU and (optionally) server CPU at the edges of a window."""

    def __init__(self, server_pid: int | None, server_core: int | None = None) -> None:
        self.server = psutil.Process(server_pid) if (server_pid and psutil) else None
        self.core = server_core

    def server_cpu(self) -> float | None:
        if self.server is None:
            return None
        t = self.server.cpu_times()
        return t.user + t.system

    def server_rss(self) -> int | None:
        return self.server.memory_info().rss if self.server is not None else None

    def snap(self) -> tuple[float, float, float | None, tuple[float, float] | None]:
        return time.perf_counter(), time.process_time(), self.server_cpu(), core_times(self.core)


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def core_times(core: int | None) -> tuple[float, float] | None:
    """(busy seconds, steal seconds) of one CPU from /proc/stat, or None."""
    if core is None:
        return None
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith(f"cpu{core} "):
                    v = [int(x) for x in line.split()[1:]]
                    idle = v[3] + (v[4] if len(v) > 4 else 0)
                    steal = v[7] if len(v) > 7 else 0
                    busy = sum(v[:8]) - idle - steal  # guest time is already in user
                    return busy / _TICK, steal / _TICK
    except OSError:
        pass
    return None


def window_stats(start, end, msgs: int) -> dict:
    wall = end[0] - start[0]
    out = {
        "msgs": msgs,
        "elapsed_s": wall,
        "msgs_per_s": msgs / wall if wall > 0 else None,
        "client_cpu_s": end[1] - start[1],
        "client_cpu_pct": 100 * (end[1] - start[1]) / wall if wall > 0 else None,
        "client_cpu_us_per_msg": 1e6 * (end[1] - start[1]) / msgs if msgs else None,
    }
    if start[2] is not None:
        server = end[2] - start[2]
        out["server_cpu_s"] = server
        out["server_cpu_pct"] = 100 * server / wall if wall > 0 else None
        out["server_cpu_us_per_msg"] = 1e6 * server / msgs if msgs else None
        if start[3] is not None and end[3] is not None and wall > 0:
            # noise indicator: CPU time on the server's core used by anything but the server
            others = (end[3][0] - start[3][0]) - server
            out["server_core_others_pct"] = max(0.0, 100 * others / wall)
            out["server_core_steal_pct"] = 100 * (end[3][1] - start[3][1]) / wall
    return out


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


class Runner:
    def __init__(self, args) -> None:
        self.args = args
        self.loop = asyncio.get_running_loop()
        self.deadline = time.monotonic() + args.time_limit
        split = urlsplit(args.url)
        self.host = split.hostname
        self.port = split.port or 80
        self.base = args.url.rstrip("/")
        self.meter = Meter(args.server_pid, args.server_core if args.server_core >= 0 else None)
        self.conns: list[Conn] = []

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Deadline("time limit reached")
        return left

    async def wait(self, aw):
        try:
            return await asyncio.wait_for(aw, self.remaining())
        except asyncio.TimeoutError:
            raise Deadline("time limit reached") from None

    async def connect(self, path: str) -> Conn:
        uri = parse_uri(self.base + path)
        conn: Conn | None = None

        def factory() -> Conn:
            nonlocal conn
            conn = Conn(uri, self.loop, self.args.deflate)
            return conn

        await self.wait(self.loop.create_connection(factory, self.host, self.port))
        self.conns.append(conn)
        await self.wait(asyncio.shield(conn.opened))
        return conn

    async def close_all(self, conns: list[Conn]) -> None:
        timeout = max(0.5, min(5.0, self.deadline - time.monotonic()))
        for i in range(0, len(conns), 100):
            await asyncio.gather(*(c.close(timeout) for c in conns[i : i + 100]))

    def abort_all(self) -> None:
        for conn in self.conns:
            if conn.transport is not None and not conn.closed.done():
                conn.transport.abort()

    # ------------------------------------------------------------------ pingpong
    async def pingpong(self) -> dict:
        a = self.args
        payload = b"x" * a.size
        conns = [await self.connect("/echo") for _ in range(a.concurrency)]
        latencies: list[float] = []
        errors = 0
        perf = time.perf_counter
        append = latencies.append

        def run_phase(count: int, record: bool) -> list[asyncio.Future]:
            nonlocal errors
            futures = []
            for conn in conns:
                done = self.loop.create_future()
                futures.append(done)
                state = {"left": count, "t0": 0.0}

                def on_message(frame, conn=conn, state=state, done=done):
                    nonlocal errors
                    now = perf()
                    if len(frame.data) != a.size:
                        errors += 1
                    if record:
                        append(now - state["t0"])
                    state["left"] -= 1
                    if state["left"] > 0:
                        state["t0"] = perf()
                        conn.send(payload, a.binary)
                    else:
                        conn.on_message = None
                        if not done.done():
                            done.set_result(None)

                if count <= 0:
                    done.set_result(None)
                    continue
                conn.on_message = on_message
                state["t0"] = perf()
                conn.send(payload, a.binary)
            return futures

        await self.wait(asyncio.gather(*run_phase(a.warmup, False)))
        start = self.meter.snap()
        futures = run_phase(a.messages, True)
        error = None
        try:
            await self.wait(asyncio.gather(*futures))
        except Deadline as exc:
            error = str(exc)
        end = self.meter.snap()
        msgs = len(latencies)
        latencies.sort()
        out = window_stats(start, end, msgs)
        out.update(
            p50_us=1e6 * percentile(latencies, 0.50) if latencies else None,
            p99_us=1e6 * percentile(latencies, 0.99) if latencies else None,
            expected_msgs=a.concurrency * a.messages,
            payload_errors=errors,
        )
        if error:
            out["error"] = error
        await self.close_all(conns)
        return out

    # ------------------------------------------------------------------ push
    async def push(self) -> dict:
        a = self.args
        rounds = []
        for _ in range(a.rounds):
            conn = await self.connect(f"/push?n={a.n}&size={a.size}")
            done = self.loop.create_future()
            state = {"count": 0, "t_end": None, "bad": 0}

            def on_message(frame, state=state, done=done):
                state["count"] += 1
                if len(frame.data) != a.size:
                    state["bad"] += 1
                if state["count"] >= a.n and not done.done():
                    state["t_end"] = time.perf_counter()
                    done.set_result(None)

            conn.on_message = on_message
            start = self.meter.snap()
            conn.send(b"go", False)
            error = None
            try:
                await self.wait(asyncio.shield(done))
            except Deadline as exc:
                error = str(exc)
            end = self.meter.snap()
            if state["t_end"] is not None:
                end = (state["t_end"], *end[1:])
            r = window_stats(start, end, state["count"])
            r["payload_errors"] = state["bad"]
            if error:
                r["error"] = error
            rounds.append(r)
            conn.on_message = None
            await self.close_all([conn])
            if error:
                break
        ok = [r for r in rounds if "error" not in r]
        out: dict = {"rounds": rounds, "expected_msgs": a.n}
        pick = ok or rounds
        out["msgs"] = sum(r["msgs"] for r in rounds)
        out["msgs_per_s"] = statistics.median(r["msgs_per_s"] or 0 for r in pick)
        for key in (
            "client_cpu_us_per_msg",
            "server_cpu_us_per_msg",
            "client_cpu_pct",
            "server_cpu_pct",
            "server_core_others_pct",
            "server_core_steal_pct",
        ):
            values = [r[key] for r in pick if r.get(key) is not None]
            out[key] = statistics.median(values) if values else None
        out["client_cpu_s"] = sum(r["client_cpu_s"] for r in rounds)
        out["payload_errors"] = sum(r["payload_errors"] for r in rounds)
        if len(ok) != len(rounds) or len(rounds) != a.rounds:
            out["error"] = "time limit reached"
        return out

    # ------------------------------------------------------------------ idle
    async def idle(self) -> dict:
        a = self.args
        settle = a.settle
        rss: dict[str, int | None] = {}
        warm = [await self.connect("/echo") for _ in range(20)]
        await self.close_all(warm)
        await asyncio.sleep(min(settle, self.remaining()))
        rss["before"] = self.meter.server_rss()

        conns: list[Conn] = []
        semaphore = asyncio.Semaphore(a.open_concurrency)

        async def open_one():
            async with semaphore:
                conns.append(await self.connect("/echo"))

        t0 = time.perf_counter()
        cpu0 = self.meter.server_cpu()
        for i in range(0, a.k, 500):  # bounded batches of tasks, each limited by the semaphore
            await self.wait(asyncio.gather(*(open_one() for _ in range(min(500, a.k - i)))))
        open_s = time.perf_counter() - t0
        cpu1 = self.meter.server_cpu()
        await asyncio.sleep(min(settle, self.remaining()))
        rss["open"] = self.meter.server_rss()

        payload = b"x" * a.size
        futures = []
        for conn in conns:
            done = self.loop.create_future()
            futures.append(done)

            def on_message(frame, conn=conn, done=done):
                conn.on_message = None
                if not done.done():
                    done.set_result(None)

            conn.on_message = on_message
            conn.send(payload, False)
        await self.wait(asyncio.gather(*futures))
        await asyncio.sleep(min(settle, self.remaining()))
        rss["after_echo"] = self.meter.server_rss()
        await self.close_all(conns)
        await asyncio.sleep(min(settle, self.remaining()))
        rss["after_close"] = self.meter.server_rss()
        out: dict = {
            "connections": len(conns),
            "open_s": open_s,
            "open_per_s": len(conns) / open_s if open_s > 0 else None,
            "rss_bytes": rss,
        }
        if cpu0 is not None:
            out["server_cpu_us_per_open"] = 1e6 * (cpu1 - cpu0) / max(1, len(conns))
        if rss["before"] is not None:
            out["rss_per_conn_bytes"] = (rss["after_echo"] - rss["before"]) / max(1, len(conns))
            out["rss_per_conn_open_only_bytes"] = (rss["open"] - rss["before"]) / max(1, len(conns))
        return out


async def amain(args) -> dict:
    runner = Runner(args)
    result: dict = {}
    try:
        result = await getattr(runner, args.mode)()
    except Deadline as exc:
        result = {"error": str(exc)}
    except Exception as exc:  # report instead of dying without JSON
        result = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        runner.abort_all()
    return result


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--mode", choices=["pingpong", "push", "idle"], required=True)
    p.add_argument("--url", default="ws://127.0.0.1:8001", help="server base URL (paths are added)")
    p.add_argument("-c", "--concurrency", type=int, default=1)
    p.add_argument(
        "-m", "--messages", type=int, default=1000, help="measured echoes per connection"
    )
    p.add_argument("--warmup", type=int, default=100, help="unrecorded echoes per connection")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--binary", action="store_true")
    p.add_argument("-n", type=int, default=20000, help="push: messages per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("-k", type=int, default=1000, help="idle: connections")
    p.add_argument("--open-concurrency", type=int, default=50)
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--time-limit", type=float, default=20.0, help="seconds; the run stops by then")
    p.add_argument("--server-pid", type=int, default=None)
    p.add_argument(
        "--server-core",
        type=int,
        default=0,
        help="CPU the server is pinned to, for the others-on-that-core noise figure (-1: off)",
    )
    p.add_argument("--no-uvloop", action="store_true")
    p.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    loop_name = "asyncio"
    if not args.no_uvloop:
        try:
            import uvloop

            loop_name = "uvloop"
        except ImportError:
            uvloop = None
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    result = uvloop.run(amain(args)) if loop_name == "uvloop" else asyncio.run(amain(args))
    header = {
        "mode": args.mode,
        "loop": loop_name,
        "url": args.url,
        "params": {
            k: getattr(args, k)
            for k in (
                "concurrency",
                "messages",
                "warmup",
                "size",
                "binary",
                "n",
                "rounds",
                "k",
                "open_concurrency",
                "settle",
                "time_limit",
            )
        },
        "client_pid": os.getpid(),
        "client_total_cpu_s": time.process_time() - cpu0,
        "client_total_wall_s": time.perf_counter() - t0,
    }
    header.update(result)
    json.dump(header, sys.stdout)
    sys.stdout.write("\n")
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
