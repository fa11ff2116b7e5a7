#!/usr/bin/env python
"""TLS (or plain TCP) echo under ``trio_ws.serve``: the data plane against Hypercorn's path.

``trio_ws.serve`` (the raw ASGI echo app, ``servers.raw_echo``) runs in this process's
``trio.run``, on a ``trustme`` certificate with ``--transport tls``; a blocking client (stdlib
``ssl`` socket and wsproto, this script with ``--client``) runs as a subprocess and echoes
``-n`` text messages of ``--size`` bytes on one connection. Two numbers per variant (``data_plane=True``, "plane", and
``data_plane=False``, "hypercorn", the path TLS took before the data plane served it):

* **server Python calls per message**, deterministic up to a few calls: cProfile on the server
  process only, (calls(2N) - calls(N)) / N, so start-up, handshakes and close cancel out;
* **wall-clock**, interleaved: ``--reps`` rounds, each timing both variants (alternating which
  goes first); reported as the median of the per-round ratios hypercorn/plane (above 1: the
  data plane is faster). The client shares the machine, so only the ratio means anything.

    python3 tls.py                       # TLS, n=2000, 5 rounds
    python3 tls.py --transport tcp       # plain TCP, the same method
    python3 tls.py --checkout /tmp/base  # trio_ws imported from another checkout

The tables in the final report of issue 13's TLS work were made with this script.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import pstats
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _client(port: int, n: int, size: int, context: ssl.SSLContext | None) -> float:
    """Echo ``n`` messages on one connection; the seconds the echoes took."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = raw if context is None else context.wrap_socket(raw, server_hostname="127.0.0.1")
    ws = WSConnection(ConnectionType.CLIENT)

    def until(kind: type) -> object:
        while True:
            for event in ws.events():
                if isinstance(event, kind):
                    return event
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed")
            ws.receive_data(data)

    with sock:
        sock.sendall(ws.send(Request(host="127.0.0.1", target="/echo")))
        until(AcceptConnection)
        payload = "x" * size
        start = time.perf_counter()
        for _ in range(n):
            sock.sendall(ws.send(TextMessage(data=payload)))
            until(TextMessage)
        elapsed = time.perf_counter() - start
        sock.sendall(ws.send(CloseConnection(code=1000)))
        until(CloseConnection)
    return elapsed


async def _run(args: argparse.Namespace, data_plane: bool, n: int, profile: bool) -> tuple:
    """Serve, run one client, stop; the client's seconds and the profiler (or None)."""
    import trio
    import trustme
    from hypercorn.config import Config
    from servers import raw_echo

    import trio_ws

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.transport == "tls":
            ca = trustme.CA()
            pem = Path(tmp) / "server.pem"
            ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(pem)
            config.certfile = config.keyfile = str(pem)
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                functools.partial(trio_ws.serve, raw_echo.app, config=config, data_plane=data_plane)
            )
            port = int(urls[0].rsplit(":", 1)[1])
            cafile = Path(tmp) / "ca.pem"
            if args.transport == "tls":
                ca.cert_pem.write_to_path(cafile)
            command = [sys.executable, __file__, "--client", str(port), str(n), str(args.size)]
            command += [str(cafile)] if args.transport == "tls" else []
            profiler = cProfile.Profile() if profile else None
            if profiler is not None:
                profiler.enable()
            done = await trio.run_process(command, capture_stdout=True)
            if profiler is not None:
                profiler.disable()
            seconds = float(done.stdout)
            nursery.cancel_scope.cancel()
    return seconds, profiler


def _calls(profiler: cProfile.Profile) -> int:
    stats = pstats.Stats(profiler)
    return sum(row[1] for row in stats.stats.values())  # type: ignore[attr-defined]


def main() -> int:
    if sys.argv[1:2] == ["--client"]:
        port, n, size, *cafile = sys.argv[2:]
        context = None
        if cafile:
            context = ssl.create_default_context(cafile=cafile[0])
        print(_client(int(port), int(n), int(size), context))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["tls", "tcp"], default="tls")
    parser.add_argument("-n", type=int, default=2000, help="messages per timed connection")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--checkout", default=str(HERE.parent), help="where trio_ws is imported from"
    )
    args = parser.parse_args()
    sys.path[:0] = [str(HERE), args.checkout]
    import trio

    import trio_ws

    print(f"trio_ws from {Path(trio_ws.__file__).parent}; {args.transport}, {args.size} B text")
    variants = {"plane": True, "hypercorn": False}
    calls = {}
    for name, on in variants.items():
        counts = []
        for n in (args.n // 4, args.n // 2):
            _, profiler = trio.run(_run, args, on, n, True)
            counts.append(_calls(profiler))
        calls[name] = (counts[1] - counts[0]) / (args.n // 4)
        print(f"{name:10} {calls[name]:8.1f} server Python calls per message", flush=True)
    ratios = []
    for rep in range(args.reps):
        order = list(variants.items())
        if rep % 2:
            order.reverse()
        seconds = {name: trio.run(_run, args, on, args.n, False)[0] for name, on in order}
        ratios.append(seconds["hypercorn"] / seconds["plane"])
        print(
            f"round {rep + 1}: plane {args.n / seconds['plane']:8.0f} msg/s, hypercorn "
            f"{args.n / seconds['hypercorn']:8.0f} msg/s, ratio {ratios[-1]:.2f}",
            flush=True,
        )
    print(
        f"\n| {args.transport} echo | plane | hypercorn | hypercorn/plane |\n|---|---:|---:|---:|\n"
        f"| server calls/msg | {calls['plane']:.1f} | {calls['hypercorn']:.1f} | "
        f"{calls['hypercorn'] / calls['plane']:.2f}x |\n"
        f"| wall-clock (median of {args.reps} interleaved rounds) | | | "
        f"{statistics.median(ratios):.2f}x |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
