#!/usr/bin/env python
"""Fan-out benchmark: one message to 1,000 real WebSocket subscribers, trio_ws vs broadcaster.

Run from this folder with the project's virtualenv (``pip install broadcaster uvicorn redis
psutil`` first; they are benchmark-only, not test dependencies)::

    python3 fanout.py                   # every variant, 3 interleaved repetitions
    python3 fanout.py --quick           # 1 repetition, fewer messages
    python3 fanout.py --variants tws-mem,tws-direct -n 1000

Variants (each server pinned to CPU 0, the client to CPU 1; Redis unpinned):

* ``tws-direct``: trio_ws on Hypercorn's trio worker without a hub: ``/pub`` calls
  ``send_text`` on every session, one after another. The reference for the goal: per
  delivered message, the hub should cost at most one ``send_text`` plus 20%.
* ``tws-tasks``: no hub either: each session has its own task sending what ``/pub`` puts into
  its trio memory channel (one ``send_text`` per delivery from the session's own task).
* ``tws-mem``, ``tws-redis``: ``trio_ws.open_broadcast()`` in memory / on Redis, ``forward``.
* ``bc-mem``, ``bc-redis``: encode/broadcaster's memory / Redis backend on Starlette + uvicorn
  (uvloop, httptools, websockets), the asyncio reference.
* ``serve-direct``, ``serve-tasks``, ``serve-mem``, ``serve-redis``: the trio_ws app of the ``tws-`` variants on
  ``trio_ws.serve`` (its data plane carries the connections; fanout_server.py, one process).
  Not in the default list: ``--variants all`` adds them.
* ``<path>@<variant>``: that variant with the trio_ws of another checkout at ``<path>`` (to
  compare two versions in one interleaved run).

For each: ``-n`` subscribers connect to ``/sub`` and wait for ``ready``; a publisher connects
to ``/pub``. Then two phases, after a warm-up:

* *latency*: ``--rounds`` messages one at a time; each is published once all subscribers got
  the previous one. p50/p99 of publish-to-delivery time over every delivery.
* *throughput*: a burst of ``--burst`` messages sent back to back; deliveries per second
  until the last subscriber has the last message; server CPU (user+system, psutil) per
  delivered message over that window.

Server memory: RSS with the subscribers connected, and after the burst. Output: one JSON line
per run in ``results/fanout-<time>.jsonl`` and a Markdown table (medians over repetitions).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VARIANTS = ["tws-direct", "tws-mem", "bc-mem", "tws-redis", "bc-redis"]
SERVE_VARIANTS = ["tws-tasks", "serve-direct", "serve-tasks", "serve-mem", "serve-redis"]


# ============================================================================== client


async def run_client(args: argparse.Namespace) -> dict[str, object]:
    sys.path.insert(0, str(HERE))
    from client import Conn, Meter, percentile  # the echo benchmark's sans-I/O client
    from websockets.uri import parse_uri

    loop = asyncio.get_running_loop()
    n = args.subscribers
    meter = Meter(args.server_pid)
    rss_idle = meter.server_rss()
    counts: dict[int, int] = {}
    done: dict[int, asyncio.Future[None]] = {}
    latencies: list[int] = []
    record = [False]

    def on_message(frame: object) -> None:
        data: bytes = frame.data  # type: ignore[attr-defined]
        now = time.perf_counter_ns()
        seq_text, sent, _ = data.split(b" ", 2)
        seq = int(seq_text)
        if record[0]:
            latencies.append(now - int(sent))
        count = counts[seq] = counts.get(seq, 0) + 1
        if count == n:
            future = done.pop(seq, None)
            if future is not None:
                future.set_result(None)

    async def open_conn(path: str, first: object = None) -> Conn:
        uri = parse_uri(f"ws://127.0.0.1:{args.port}{path}")

        def factory() -> Conn:
            conn = Conn(uri, loop)
            conn.on_message = first  # set before any data: "ready" may come with the handshake
            return conn

        _, conn = await loop.create_connection(factory, "127.0.0.1", args.port)
        await conn.opened
        return conn

    subscribers: list[Conn] = []
    gate = asyncio.Semaphore(50)

    async def subscribe() -> None:
        async with gate:
            ready = loop.create_future()
            conn = await open_conn("/sub", lambda frame: ready.done() or ready.set_result(frame))
            await asyncio.wait_for(ready, 30)
            conn.on_message = on_message
            subscribers.append(conn)

    await asyncio.gather(*(subscribe() for _ in range(n)))
    rss_connected = meter.server_rss()
    publisher = await open_conn("/pub")
    seq = 0

    def publish() -> asyncio.Future[None]:
        nonlocal seq
        seq += 1
        future = loop.create_future()
        done[seq] = future
        payload = f"{seq} {time.perf_counter_ns()} ".ljust(args.size, "x")
        publisher.send(payload.encode(), binary=False)
        return future

    async def rounds(count: int) -> None:
        for _ in range(count):
            await asyncio.wait_for(publish(), 30)

    # Warm-up: broadcaster's Redis backend subscribes in the background, so the first
    # messages may reach nobody; wait for each at most 2 s and go on.
    for _ in range(args.warmup):
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(publish(), 2)
    done.clear()
    record[0] = True
    start = meter.snap()
    await rounds(args.rounds)
    end = meter.snap()
    record[0] = False
    latencies.sort()
    latency_window = end[0] - start[0]

    burst_start = meter.snap()
    futures = [publish() for _ in range(args.burst)]
    await asyncio.wait_for(asyncio.gather(*futures), 120)
    burst_end = meter.snap()
    rss_after = meter.server_rss()
    deliveries = n * args.burst
    wall = burst_end[0] - burst_start[0]
    result: dict[str, object] = {
        "subscribers": n,
        "size": args.size,
        "latency_p50_ms": percentile(latencies, 0.5) / 1e6,
        "latency_p99_ms": percentile(latencies, 0.99) / 1e6,
        "rounds_per_s": args.rounds / latency_window,
        "deliveries_per_s": deliveries / wall,
        "messages_per_s": args.burst / wall,
        "client_cpu_pct": 100 * (burst_end[1] - burst_start[1]) / wall,
    }
    if burst_start[2] is not None:
        server_cpu = burst_end[2] - burst_start[2]
        result["server_cpu_us_per_delivery"] = 1e6 * server_cpu / deliveries
        result["server_cpu_pct"] = 100 * server_cpu / wall
        result["rounds_server_cpu_us_per_delivery"] = 1e6 * (end[2] - start[2]) / (n * args.rounds)
    if rss_idle is not None:
        result["rss_idle_mb"] = rss_idle / 2**20
        result["rss_connected_mb"] = rss_connected / 2**20
        result["rss_after_burst_mb"] = rss_after / 2**20
        result["rss_per_subscriber_kb"] = (rss_connected - rss_idle) / n / 1024
    for conn in [*subscribers, publisher]:
        conn.transport.abort()
    return result


# ============================================================================== driver


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes], limit: float = 30) -> None:
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("server did not start")


def serving_pid(pid: int) -> int:
    """The process that runs the app: Hypercorn's worker (a child), or uvicorn itself."""
    import psutil

    for child in psutil.Process(pid).children(recursive=True):
        if "resource_tracker" not in " ".join(child.cmdline()):
            return int(child.pid)
    return pid


def pinned(core: int, command: list[str]) -> list[str]:
    taskset = "/usr/bin/taskset"
    return [taskset, "-c", str(core), *command] if os.path.exists(taskset) else command


def server_command(spec: str, port: int, redis_url: str | None) -> tuple[list[str], dict[str, str]]:
    root, _, variant = spec.rpartition("@")  # "/other/checkout@tws-mem": that tree's trio_ws
    env = {**os.environ, "PYTHONPATH": f"{root or ROOT}{os.pathsep}{HERE}"}
    if variant.endswith("redis"):
        assert redis_url is not None
        env["FANOUT_URL"] = redis_url
    else:
        env.pop("FANOUT_URL", None)
    if variant.startswith("serve"):
        mode = {"serve-direct": "direct", "serve-tasks": "tasks"}.get(variant, "hub")
        command = [sys.executable, str(HERE / "fanout_server.py"), "--server", "serve"]
        command += ["--mode", mode, "--port", str(port)]
    elif variant.startswith("tws"):
        env["FANOUT_MODE"] = {"tws-direct": "direct", "tws-tasks": "tasks"}.get(variant, "hub")
        command = [sys.executable, "-m", "hypercorn", "-k", "trio", "-w", "1"]
        command += ["-b", f"127.0.0.1:{port}", "fanout_apps:trio_app()"]
    else:
        command = [sys.executable, "-m", "uvicorn", "--factory", "fanout_apps:starlette_app"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    return pinned(0, command), env


def run_variant(
    variant: str, args: argparse.Namespace, redis_url: str | None, log_dir: Path
) -> dict[str, object]:
    port = free_port()
    command, env = server_command(variant, port, redis_url)
    root, _, name = variant.rpartition("@")
    log = (log_dir / f"{Path(root).name + '-' if root else ''}{name}.log").open("ab")
    server = subprocess.Popen(command, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, server)
        client = [sys.executable, __file__, "--client", "--port", str(port)]
        client += ["--server-pid", str(serving_pid(server.pid)), "-n", str(args.subscribers)]
        client += ["--rounds", str(args.rounds), "--burst", str(args.burst)]
        client += ["--warmup", str(args.warmup), "--size", str(args.size)]
        out = subprocess.run(
            pinned(1, client), cwd=HERE, capture_output=True, timeout=600, check=False
        )
        if out.returncode != 0:
            raise RuntimeError(f"{variant}: client failed: {out.stderr.decode()[-3000:]}")
        result: dict[str, object] = json.loads(out.stdout)
        result["variant"] = variant
        return result
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def table(results: list[dict[str, object]], variants: list[str]) -> str:
    columns = [
        ("deliveries/s", "deliveries_per_s", "{:,.0f}"),
        ("msgs/s", "messages_per_s", "{:,.1f}"),
        ("p50 ms", "latency_p50_ms", "{:.1f}"),
        ("p99 ms", "latency_p99_ms", "{:.1f}"),
        ("server CPU us/delivery", "server_cpu_us_per_delivery", "{:.1f}"),
        ("RSS connected MB", "rss_connected_mb", "{:.0f}"),
        ("RSS after burst MB", "rss_after_burst_mb", "{:.0f}"),
        ("KB/subscriber", "rss_per_subscriber_kb", "{:.1f}"),
    ]
    lines = ["| variant | " + " | ".join(c[0] for c in columns) + " |"]
    lines.append("|---" * (len(columns) + 1) + "|")
    for variant in variants:
        runs = [r for r in results if r["variant"] == variant]
        if not runs:
            continue
        cells = []
        for _, key, fmt in columns:
            values = [float(r[key]) for r in runs if r.get(key) is not None]  # type: ignore[arg-type]
            cells.append(fmt.format(statistics.median(values)) if values else "-")
        lines.append(f"| {variant} (n={len(runs)}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("-n", "--subscribers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=100, help="latency phase messages")
    parser.add_argument("--burst", type=int, default=200, help="throughput phase messages")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--size", type=int, default=64, help="message size, bytes")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--quick", action="store_true", help="1 repetition, fewer messages")
    args = parser.parse_args()
    if args.client:
        try:
            import uvloop

            uvloop.install()
        except ImportError:  # pragma: no cover
            pass
        print(json.dumps(asyncio.run(run_client(args))))
        return
    if args.quick:
        args.reps, args.rounds, args.burst, args.warmup = 1, 30, 50, 5
    variants = VARIANTS + SERVE_VARIANTS if args.variants == "all" else args.variants.split(",")
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out_dir = HERE / "results"
    log_dir = out_dir / f"fanout-{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    redis = None
    redis_url = None
    if any(v.endswith("redis") for v in variants):
        redis_port = free_port()
        redis = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        wait_port(redis_port, redis)
    results: list[dict[str, object]] = []
    try:
        with (out_dir / f"fanout-{stamp}.jsonl").open("w") as jsonl:
            for rep in range(args.reps):
                for variant in variants:
                    try:
                        result = run_variant(variant, args, redis_url, log_dir)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        result = {"variant": variant, "error": str(exc)[-500:]}
                    result["rep"] = rep
                    results.append(result)
                    jsonl.write(json.dumps(result) + "\n")
                    jsonl.flush()
                    print(json.dumps(result), file=sys.stderr)
    finally:
        if redis is not None:
            redis.kill()
            redis.wait()
    report = table(results, variants)
    (out_dir / f"fanout-{stamp}.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
