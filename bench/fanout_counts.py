#!/usr/bin/env python
"""Deterministic counts per delivered message of the real fan-out server: where the CPU goes.

Each variant runs ``fanout_server.py`` (the app of fanout_apps.py, one process) and this
script's client connects ``-n`` real WebSocket subscribers and a publisher, warms up, then
measures one window in which ``-m`` messages are published (``--pattern burst``: all at once,
as fanout.py's throughput phase; ``rounds``: one at a time, each once every subscriber has the
previous one) and reach every subscriber. Only that window is counted, with one tool:

* ``cprofile``: Python calls in the server (SIGUSR1/SIGUSR2 around the window); with
  ``--top`` the functions whose calls per delivery differ most between the first variant and
  each other one.
* ``gc``: the cyclic garbage collector's collections per generation and their CPU time.
* ``callgrind``: user-space instructions (``callgrind_control -i on/off`` around the window).
* ``strace``: system calls by name (``strace -c -f`` attached for the window).
* ``cpu``: user + system CPU seconds of the server over the window (psutil; not
  deterministic, for ratios within one run).

    python fanout_counts.py --tool cprofile --variants hc-direct,hc-hub,serve-direct,serve-hub
    python fanout_counts.py --tool strace -n 1000 -m 50

Variants are ``<server>-<mode>``: server ``hc`` (Hypercorn's trio worker) or ``serve``
(``trio_ws.serve``), mode ``direct`` (the publishing handler calls ``send_text`` on every
session) or ``hub`` (``open_broadcast()`` in memory and ``forward`` in each session).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[Any], limit: float) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("server did not start")


# ============================================================================== client


async def run_client(
    port: int, n: int, m: int, pattern: str, warmup: int, start: Any, stop: Any
) -> float:
    """Connect, warm up, call ``start()``, publish ``m`` messages, wait, ``stop()``.

    Returns the window's wall-clock seconds."""
    from client import Conn
    from websockets.uri import parse_uri

    loop = asyncio.get_running_loop()
    counts: dict[int, int] = {}
    done: dict[int, asyncio.Future[None]] = {}
    seq = 0

    def on_message(frame: Any) -> None:
        number = int(frame.data.split(b" ", 1)[0])
        count = counts[number] = counts.get(number, 0) + 1
        if count == n:
            future = done.pop(number, None)
            if future is not None:
                future.set_result(None)

    async def open_conn(path: str, first: Any = None) -> Conn:
        uri = parse_uri(f"ws://127.0.0.1:{port}{path}")

        def factory() -> Conn:
            conn = Conn(uri, loop)
            conn.on_message = first
            return conn

        _, conn = await loop.create_connection(factory, "127.0.0.1", port)
        await conn.opened
        return conn

    gate = asyncio.Semaphore(50)
    conns: list[Conn] = []

    async def subscribe() -> None:
        async with gate:
            ready = loop.create_future()
            conn = await open_conn("/sub", lambda frame: ready.done() or ready.set_result(frame))
            await asyncio.wait_for(ready, 600)
            conn.on_message = on_message
            conns.append(conn)

    await asyncio.gather(*(subscribe() for _ in range(n)))
    publisher = await open_conn("/pub")

    def publish() -> asyncio.Future[None]:
        nonlocal seq
        seq += 1
        future = loop.create_future()
        done[seq] = future
        publisher.send(f"{seq} ".ljust(64, "x").encode(), binary=False)
        return future

    for _ in range(warmup):
        await asyncio.wait_for(publish(), 600)
    await asyncio.sleep(0.2)
    start()
    began = time.perf_counter()
    if pattern == "burst":
        await asyncio.wait_for(asyncio.gather(*[publish() for _ in range(m)]), 1200)
    else:
        for _ in range(m):
            await asyncio.wait_for(publish(), 600)
    window = time.perf_counter() - began
    stop()
    for conn in [*conns, publisher]:
        assert conn.transport is not None
        conn.transport.abort()
    return window


# ============================================================================== tools


def spec_label(spec: str) -> str:
    """A file name for a variant, "tree-hc-hub" for "/path/to/tree@hc-hub"."""
    root, _, variant = spec.rpartition("@")
    return f"{Path(root).name}-{variant}" if root else variant


def measure(tool: str, spec: str, args: argparse.Namespace, keep: Path) -> dict[str, Any]:
    variant = spec.rpartition("@")[2]
    server_name, mode = variant.split("-", 1)
    server = "hypercorn" if server_name == "hc" else "serve"
    port = free_port()
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    root = spec.rpartition("@")[0]  # another checkout's trio_ws: "/path/to/tree@hc-hub"
    env["PYTHONPATH"] = os.pathsep.join([root or str(HERE.parent), str(HERE)])
    command = [PYTHON, str(HERE / "fanout_server.py"), "--port", str(port)]
    command += ["--server", server, "--mode", mode]
    label = spec_label(spec)
    profile_path = keep / f"{label}.prof"
    callgrind_path = keep / f"{label}.callgrind"
    strace_path = keep / f"{label}.strace"
    if tool in ("cprofile", "gc"):
        env["FANOUT_PROFILE"] = str(profile_path)
        if tool == "gc":
            env["FANOUT_GC"] = "1"
        Path(f"{profile_path}.done").unlink(missing_ok=True)
    elif tool == "callgrind":
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={callgrind_path}",
            *command,
        ]
    process = subprocess.Popen(
        command, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    tracer: subprocess.Popen[str] | None = None
    cpu: list[tuple[float, float]] = []
    import psutil

    def server_cpu() -> tuple[float, float]:
        times = psutil.Process(process.pid).cpu_times()
        return float(times.user), float(times.system)

    def start() -> None:
        nonlocal tracer
        if tool in ("cprofile", "gc"):
            os.kill(process.pid, signal.SIGUSR1)
            time.sleep(0.3)
        elif tool == "callgrind":
            subprocess.run(
                ["callgrind_control", "-i", "on", str(process.pid)], check=True, capture_output=True
            )
        elif tool == "strace":
            tracer = subprocess.Popen(
                ["strace", "-c", "-f", "-o", str(strace_path), "-p", str(process.pid)],
                stderr=subprocess.PIPE,
                text=True,
            )
            assert tracer.stderr is not None
            tracer.stderr.readline()  # "strace: Process N attached"
            time.sleep(0.3)
        cpu.append(server_cpu())

    def stop() -> None:
        cpu.append(server_cpu())
        if tool in ("cprofile", "gc"):
            os.kill(process.pid, signal.SIGUSR2)
            for _ in range(600):
                if Path(f"{profile_path}.done").exists():
                    break
                time.sleep(0.1)
        elif tool == "callgrind":
            subprocess.run(
                ["callgrind_control", "-i", "off", str(process.pid)],
                check=True,
                capture_output=True,
            )
        elif tool == "strace" and tracer is not None:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(60)

    try:
        wait_port(port, process, 600)
        window = asyncio.run(
            run_client(port, args.n, args.m, args.pattern, args.warmup, start, stop)
        )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
    deliveries = args.n * args.m
    result: dict[str, Any] = {
        "variant": spec,
        "tool": tool,
        "n": args.n,
        "m": args.m,
        "pattern": args.pattern,
        "window_s": window,
        "cpu_us_per_delivery": 1e6 * (sum(cpu[1]) - sum(cpu[0])) / deliveries,
        "user_us_per_delivery": 1e6 * (cpu[1][0] - cpu[0][0]) / deliveries,
        "system_us_per_delivery": 1e6 * (cpu[1][1] - cpu[0][1]) / deliveries,
    }
    if tool == "cprofile":
        stats = pstats.Stats(str(profile_path))
        result["calls_per_delivery"] = stats.total_calls / deliveries  # type: ignore[attr-defined]
    elif tool == "gc":
        report = json.loads(profile_path.read_text())
        result["gc_collections"] = report["collections"]
        result["gc_us_per_delivery"] = 1e6 * sum(report["gc_cpu_s"]) / deliveries
        result["gc_objects"] = report["objects"]
    elif tool == "callgrind":
        match = re.search(r"Collected : (\d+)", stderr)
        if match is None:
            raise RuntimeError(f"no count from valgrind: {stderr[-1500:]}")
        result["instructions_per_delivery"] = int(match.group(1)) / deliveries
    elif tool == "strace":
        calls: dict[str, int] = {}
        for line in strace_path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
                calls[fields[-1]] = int(fields[3])
        result["syscalls_per_delivery"] = sum(calls.values()) / deliveries
        result["syscalls"] = {k: v / deliveries for k, v in sorted(calls.items())}
    return result


def profile_diff(keep: Path, base: str, other: str, deliveries: int, top: int) -> str:
    """Functions whose calls per delivery differ most between two cProfile windows."""

    def table(variant: str) -> dict[str, tuple[float, float]]:
        stats = pstats.Stats(str(keep / f"{variant}.prof")).stats  # type: ignore[attr-defined]
        out: dict[str, tuple[float, float]] = {}
        for (filename, line, name), (_, calls, tottime, _, _) in stats.items():
            short = "/".join(Path(filename).parts[-2:])
            out[f"{short}:{line}({name})"] = (calls / deliveries, 1e6 * tottime / deliveries)
        return out

    a, b = table(base), table(other)
    keys = set(a) | set(b)
    rows = sorted(keys, key=lambda k: -abs(b.get(k, (0, 0))[0] - a.get(k, (0, 0))[0]))
    lines = [f"calls per delivery: {base} -> {other} (function, {base}, {other}, difference)"]
    for key in rows[:top]:
        x, y = a.get(key, (0.0, 0.0))[0], b.get(key, (0.0, 0.0))[0]
        lines.append(f"  {y - x:+8.2f}  {x:8.2f} {y:8.2f}  {key}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tool", choices=["cprofile", "gc", "callgrind", "strace", "cpu"], default="cprofile"
    )
    parser.add_argument("--variants", default="hc-direct,hc-hub,serve-direct,serve-hub")
    parser.add_argument("-n", type=int, default=1000, help="subscribers")
    parser.add_argument("-m", type=int, default=50, help="messages in the window")
    parser.add_argument("--pattern", choices=["burst", "rounds"], default="burst")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--top", type=int, default=0, help="cprofile: show the N largest diffs")
    parser.add_argument("--keep", default=None, help="folder for the profiles and traces")
    parser.add_argument("--out", default=None, help="append JSON lines here")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    keep = Path(args.keep or tempfile.mkdtemp(prefix="fanout-counts-"))
    keep.mkdir(parents=True, exist_ok=True)
    variants = args.variants.split(",")
    results = []
    for variant in variants:
        result = measure(args.tool, variant, args, keep)
        results.append(result)
        print(json.dumps(result), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(result) + "\n")
    if args.tool == "cprofile" and args.top:
        labels = [spec_label(v) for v in variants]
        for label in labels:
            base = label.rsplit("-", 1)[0] + "-direct"
            if label != base and base in labels:
                print(profile_diff(keep, base, label, args.n * args.m, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
