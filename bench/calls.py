#!/usr/bin/env python
"""Count Python calls per echoed message on the server side, deterministically, under cProfile.

Method (default, ``--transport memory``):

* Hypercorn's own trio ``TCPServer`` serves one connection over
  ``trio.testing.memory_stream_pair()`` (no sockets), wrapped in Hypercorn's ``ASGIWrapper``
  exactly as ``hypercorn -k trio`` does. A wsproto client runs in the same ``trio.run`` in a
  task named ``calls-client``.
* A trio ``Instrument`` turns the profiler on in ``before_task_step`` and off in
  ``after_task_step`` for every task *except* the client's, so only server-side task steps are
  counted: Hypercorn, wsproto, the app, trio's code running inside those tasks, and the
  scheduler's per-step bookkeeping for them. The instrument's own calls (``Instruments.call``,
  the hooks, ``Profiler.disable`` and the builtins they call) are removed using pstats' caller
  data. Not counted: the run loop between task steps (there is no I/O to wait for), and the
  wake-up of a server task by the client (that runs in the client's step).
* One connection with N echoes and one with 2N echoes are profiled; per-message counts are
  ``(calls(2N) - calls(N)) / N`` per function, so the handshake, accept, close and task start-up
  cancel out. trio's scheduler randomness is seeded, so the counts are exact and repeatable.
* The memory stream's pump (``trio.testing``) stands in for the socket ``send``/``recv``
  syscalls; it is the same for every variant, so the *extra over raw* is exact, while the
  absolute count differs from a real socket.

``--transport socket`` cross-checks on a real loopback socket: ``hypercorn.trio.serve`` runs in
this process, the load client (``client.py``, one connection, ``-m N`` echoes, no warm-up) runs
as a subprocess, and the whole server thread is profiled (run loop, epoll and socket wrappers
included). Per-message counts are again ``(calls(2N) - calls(N)) / N``; they vary slightly
from run to run (e.g. whether a ``recv`` first hits EAGAIN), so use the memory transport for
exact differences.

Output: a Markdown report on stdout (calls per message for each variant, the extra over raw,
the trio_ws functions called per message, and the functions whose per-message count differs
from raw), also written with the raw per-function numbers as JSON to ``results/``.

    python3 calls.py                     # memory transport, N=200, text 32 B
    python3 calls.py --binary --size 65536
    python3 calls.py --transport socket -n 2000
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import pstats
import socket
import sys
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # bench/ for servers.*, the checkout for trio_ws

import trio  # noqa: E402
import trio.testing  # noqa: E402
import wsproto  # noqa: E402
from hypercorn.app_wrappers import ASGIWrapper  # noqa: E402
from hypercorn.config import Config  # noqa: E402
from hypercorn.trio.tcp_server import TCPServer  # noqa: E402
from hypercorn.trio.worker_context import WorkerContext  # noqa: E402
from hypercorn.typing import ConnectionState  # noqa: E402
from wsproto.events import (  # noqa: E402
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Request,
    TextMessage,
)

VARIANTS = {
    "raw": "servers.raw_echo",
    "plain": "servers.plain_echo",
    "session": "servers.session_echo",
    "starlette": "servers.starlette_echo",
}
CLIENT_TASK = "calls-client"
THIS_FILE = str(Path(__file__).resolve())

Func = tuple  # (filename, lineno, funcname), pstats' key


def load_app(variant: str):
    module = __import__(VARIANTS[variant], fromlist=["app"])
    return module.app


# ---------------------------------------------------------------------------- memory transport


class ServerStepProfiler(trio.abc.Instrument):
    """Profile only the steps of tasks other than the client's."""

    def __init__(self, profiler: cProfile.Profile) -> None:
        self.profiler = profiler
        self.active = False
        self.steps = 0

    def before_task_step(self, task) -> None:
        if task.name != CLIENT_TASK:
            self.active = True
            self.steps += 1
            self.profiler.enable()

    def after_task_step(self, task) -> None:
        if self.active:
            self.profiler.disable()
            self.active = False


class _FakeSocket:
    family = socket.AF_INET

    def getpeername(self):
        return ("127.0.0.1", 50000)

    def getsockname(self):
        return ("127.0.0.1", 8000)


async def _client(stream, n: int, payload, done: trio.Event) -> None:
    ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
    buffer_events = []

    async def next_event():
        while not buffer_events:
            data = await stream.receive_some(65536)
            ws.receive_data(data if data else None)
            buffer_events.extend(ws.events())
        return buffer_events.pop(0)

    await stream.send_all(ws.send(Request(host="localhost", target="/echo")))
    event = await next_event()
    assert isinstance(event, AcceptConnection), event
    expected = type(payload)
    for _ in range(n):
        await stream.send_all(ws.send(Message(data=payload)))
        got = type(payload)()
        while True:
            event = await next_event()
            assert isinstance(event, (TextMessage, BytesMessage)), event
            got += event.data
            if event.message_finished:
                break
        assert type(got) is expected
        assert got == payload
    await stream.send_all(ws.send(CloseConnection(code=1000)))
    while True:
        event = await next_event()
        if isinstance(event, CloseConnection):
            break
    # wait for the server to close the stream
    while await stream.receive_some(65536):
        pass
    await stream.aclose()
    done.set()


async def _memory_echo(app, n: int, payload) -> None:
    config = Config()
    context = WorkerContext(None)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    server_stream.socket = _FakeSocket()  # what TCPServer reads the addresses from
    server = TCPServer(ASGIWrapper(app), config, context, ConnectionState({}), server_stream)
    done = trio.Event()
    with trio.fail_after(600):  # generous: under valgrind on a loaded machine
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.run, name="hypercorn-tcpserver")
            nursery.start_soon(_client, client_stream, n, payload, done, name=CLIENT_TASK)


def profile_memory(variant: str, n: int, payload) -> tuple[dict, int]:
    app = load_app(variant)
    profiler = cProfile.Profile(builtins=True)
    instrument = ServerStepProfiler(profiler)
    trio._core._run._r.seed(12345)  # trio's batch-order coin flips
    trio.run(_memory_echo, app, n, payload, instruments=[instrument])
    return stats_of(profiler), instrument.steps


# ---------------------------------------------------------------------------- socket transport


async def _socket_echo(app, n: int, size: int, binary: bool, profiler) -> None:
    from hypercorn.trio import serve

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, config, shutdown_trigger=shutdown.wait))
        url = binds[0].replace("http://", "ws://")
        cmd = [
            sys.executable,
            str(HERE / "client.py"),
            "--mode",
            "pingpong",
            "-c",
            "1",
            "-m",
            str(n),
            "--warmup",
            "0",
            "--size",
            str(size),
            "--time-limit",
            "30",
            "--url",
            url,
        ]
        if binary:
            cmd.append("--binary")
        await trio.run_process(cmd, capture_stdout=True)  # warm-up connection, not profiled
        if profiler is not None:
            profiler.enable()
        result = await trio.run_process(cmd, capture_stdout=True)
        if profiler is not None:
            profiler.disable()
        out = json.loads(result.stdout.decode().strip().splitlines()[-1])
        assert out.get("msgs") == n, out
        assert "error" not in out, out
        shutdown.set()


def profile_socket(variant: str, n: int, size: int, binary: bool) -> tuple[dict, int]:
    app = load_app(variant)
    profiler = cProfile.Profile(builtins=True)
    trio.run(_socket_echo, app, n, size, binary, profiler)
    return stats_of(profiler), 0


# ---------------------------------------------------------------------------- pstats handling


def _is_instrument(func: Func) -> bool:
    filename, _, name = func
    return filename == THIS_FILE or (filename.endswith("_instrumentation.py") and name == "call")


def stats_of(profiler: cProfile.Profile) -> dict[Func, int]:
    """Function -> call count, without the calls made by the profiling instrument itself."""
    raw = pstats.Stats(profiler).stats
    counts: dict[Func, int] = {}
    for func, (_cc, nc, _tt, _ct, callers) in raw.items():
        if _is_instrument(func):
            continue
        calls = nc - sum(v[0] for caller, v in callers.items() if _is_instrument(caller))
        if func[2] == "<method 'disable' of '_lsprof.Profiler' objects>":
            continue
        if calls:
            counts[func] = calls
    return counts


def per_message(small: dict[Func, int], big: dict[Func, int], n: int) -> dict[Func, float]:
    out = {}
    for func in set(small) | set(big):
        d = (big.get(func, 0) - small.get(func, 0)) / n
        if d:
            out[func] = d
    return out


def is_builtin(func: Func) -> bool:
    return func[0] == "~"


def short(func: Func) -> str:
    filename, line, name = func
    if filename == "~":
        return name
    for marker in ("site-packages/", "/work/main/", str(HERE.parent) + "/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
    return f"{filename}:{line}({name})"


def fmt_n(x: float) -> str:
    return f"{x:.0f}" if abs(x - round(x)) < 1e-9 else f"{x:.2f}"


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--transport", choices=["memory", "socket"], default="memory")
    p.add_argument(
        "-n",
        type=int,
        default=None,
        help="echoes in the small run (the big run does 2n); default 200 (memory) / 2000 (socket)",
    )
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--binary", action="store_true")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--top", type=int, default=40, help="rows in the differs-from-raw tables")
    p.add_argument(
        "--out", default=None, help="JSON output path (default results/calls-<ts>-<transport>.json)"
    )
    args = p.parse_args()
    n = args.n or (200 if args.transport == "memory" else 2000)
    variants = args.variants.split(",")
    if "raw" not in variants:
        variants.insert(0, "raw")
    payload = b"x" * args.size if args.binary else "x" * args.size

    per: dict[str, dict[Func, float]] = {}
    steps: dict[str, float] = {}
    for variant in variants:
        if args.transport == "memory":
            profile_memory(
                variant, 3, payload
            )  # warm-up: first-use caches (typing, imports) not counted
            (s1, st1), (s2, st2) = (
                profile_memory(variant, n, payload),
                profile_memory(variant, 2 * n, payload),
            )
            steps[variant] = (st2 - st1) / n
        else:
            (s1, _), (s2, _) = (
                profile_socket(variant, n, args.size, args.binary),
                profile_socket(variant, 2 * n, args.size, args.binary),
            )
        per[variant] = per_message(s1, s2, n)

    lines = [
        f"# Server-side calls per echoed message ({args.transport} transport, "
        f"{'binary' if args.binary else 'text'} {args.size} B, N={n} vs 2N)",
        "",
        "| variant | Python calls/msg | extra vs raw | builtin (C) calls/msg | extra vs raw | total | "
        + ("server task steps/msg |" if args.transport == "memory" else ""),
        "|---|---:|---:|---:|---:|---:|" + ("---:|" if args.transport == "memory" else ""),
    ]
    totals = {}
    for v in variants:
        py = sum(c for f, c in per[v].items() if not is_builtin(f))
        bi = sum(c for f, c in per[v].items() if is_builtin(f))
        totals[v] = (py, bi)
    for v in variants:
        py, bi = totals[v]
        rpy, rbi = totals["raw"]
        row = f"| {v} | {py:.2f} | {py - rpy:+.2f} | {bi:.2f} | {bi - rbi:+.2f} | {py + bi:.2f} |"
        if args.transport == "memory":
            row += f" {steps[v]:.2f} |"
        lines.append(row)

    for v in variants:
        if v == "raw":
            continue
        tw = sorted(
            ((f, c) for f, c in per[v].items() if "trio_ws" in f[0]),
            key=lambda fc: (-fc[1], short(fc[0])),
        )
        if tw:
            lines += [
                "",
                f"## {v}: trio_ws functions per message ({sum(c for _, c in tw):.2f} calls)",
                "",
                "| calls/msg | function |",
                "|---:|---|",
            ]
            lines += [f"| {fmt_n(c)} | `{short(f)}` |" for f, c in tw]
        diff = {f: per[v].get(f, 0) - per["raw"].get(f, 0) for f in set(per[v]) | set(per["raw"])}
        diff = {f: d for f, d in diff.items() if abs(d) > 1e-9}
        rows = sorted(diff.items(), key=lambda fd: (-abs(fd[1]), short(fd[0])))
        lines += [
            "",
            f"## {v}: every function whose per-message count differs from raw "
            f"(net {sum(diff.values()):+.2f}; top {args.top} of {len(rows)})",
            "",
            "| Δ calls/msg | raw | this | function |",
            "|---:|---:|---:|---|",
        ]
        for f, d in rows[: args.top]:
            lines.append(
                f"| {d:+.2f} | {fmt_n(per['raw'].get(f, 0))} | {fmt_n(per[v].get(f, 0))} | `{short(f)}` |"
            )

    raw_rows = sorted(per["raw"].items(), key=lambda fc: (-fc[1], short(fc[0])))
    lines += [
        "",
        f"## raw: all functions per message ({len(raw_rows)})",
        "",
        "| calls/msg | function |",
        "|---:|---|",
    ]
    lines += [f"| {fmt_n(c)} | `{short(f)}` |" for f, c in raw_rows]
    report = "\n".join(lines)
    print(report)

    ts = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = (
        Path(args.out)
        if args.out
        else HERE
        / "results"
        / f"calls-{ts}-{args.transport}-{'bin' if args.binary else 'text'}{args.size}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "transport": args.transport,
                "n": n,
                "size": args.size,
                "binary": args.binary,
                "totals": {v: {"python": t[0], "builtin": t[1]} for v, t in totals.items()},
                "per_message": {v: {short(f): c for f, c in per[v].items()} for v in variants},
            },
            indent=1,
        )
    )
    out.with_suffix(".md").write_text(report + "\n")
    print(f"\n(written: {out} and {out.with_suffix('.md')})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
