#!/usr/bin/env python
"""Deterministic per-message counts of whole server processes: instructions and syscalls.

Each server variant runs as one process (``servers/*_main.py``) under ``valgrind
--tool=callgrind`` (user-space instructions) or ``strace -f -c`` (syscalls), and ``client.py``
runs a scenario against it with N and then 2N messages, each time on a fresh server. The count
per message is (X(2N) - X(N)) / N, so start-up, handshakes and shutdown cancel out. Only the
server is counted, never the client. Callgrind counts move by about 1-2% between repeats here
(epoll wake-ups differ from run to run); syscalls by a few percent at 50 clients.

    python3 counts.py --tool callgrind --variants raw-hc,session-serve --scenarios pp-c50
    python3 counts.py --tool strace

Slow under callgrind (instrumentation is on only while the client runs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable

VARIANTS = {
    "raw-hc": ["servers.hypercorn_main", "--app", "raw"],
    "session-hc": ["servers.hypercorn_main", "--app", "session"],
    "session-serve-off": ["servers.serve_main", "--app", "session", "--no-data-plane"],
    "session-serve": ["servers.serve_main", "--app", "session"],
    "raw-serve": ["servers.serve_main", "--app", "raw"],
    "trio-websocket": ["servers.trio_websocket_main"],
    "uvicorn": ["servers.uvicorn_main"],
}
#: scenario -> (client flags with {n}, n for the short run, messages per n)
SCENARIOS = {
    "pp-c1": (
        ["--mode", "pingpong", "-c", "1", "-m", "{n}", "--size", "32", "--warmup", "20"],
        300,
        1,
    ),
    "pp-c50": (
        ["--mode", "pingpong", "-c", "50", "-m", "{n}", "--size", "32", "--warmup", "2"],
        20,
        50,
    ),
    "push": (["--mode", "push", "-n", "{n}", "--size", "32", "--rounds", "1"], 3000, 1),
    "pp-c1-64KiB": (
        [
            "--mode",
            "pingpong",
            "-c",
            "1",
            "-m",
            "{n}",
            "--size",
            "65536",
            "--binary",
            "--warmup",
            "5",
        ],
        60,
        1,
    ),
    "pp-c50-deflate": (
        [
            "--mode",
            "pingpong",
            "-c",
            "50",
            "-m",
            "{n}",
            "--size",
            "32",
            "--warmup",
            "2",
            "--deflate",
        ],
        20,
        50,
    ),
    "push-deflate": (
        ["--mode", "push", "-n", "{n}", "--size", "32", "--rounds", "1", "--deflate"],
        3000,
        1,
    ),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError("server did not start")


def one_run(tool: str, variant: str, scenario: str, n: int) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        if tool == "callgrind":
            # Instrumentation only while the client runs (start-up is not counted, and fast).
            wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
            wrapper.append(f"--callgrind-out-file={out}")
        else:
            wrapper = ["strace", "-f", "-c", "-o", str(out)]
        env = {
            **os.environ,
            "PYTHONHASHSEED": "0",
            "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
        }
        cmd = [*wrapper, PYTHON, "-m", *VARIANTS[variant][:1], "--port", str(port)]
        cmd += VARIANTS[variant][1:]
        server = subprocess.Popen(
            cmd, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        try:
            wait_port(port, server, 600)
            if tool == "callgrind":
                subprocess.run(
                    ["callgrind_control", "-i", "on", str(server.pid)],
                    check=True,
                    capture_output=True,
                )
            flags = [f.replace("{n}", str(n)) for f in SCENARIOS[scenario][0]]
            client = subprocess.run(
                [
                    PYTHON,
                    str(HERE / "client.py"),
                    "--url",
                    f"ws://127.0.0.1:{port}",
                    "--time-limit",
                    "600",
                    *flags,
                ],
                cwd=HERE,
                capture_output=True,
                text=True,
                timeout=700,
            )
            result = json.loads(client.stdout.strip().splitlines()[-1])
            if "error" in result:
                raise RuntimeError(f"client: {result['error']}")
            time.sleep(0.5)
            if tool == "callgrind":
                subprocess.run(
                    ["callgrind_control", "-i", "off", str(server.pid)],
                    check=True,
                    capture_output=True,
                )
        finally:
            target = server.pid
            if tool == "strace":  # signal the traced server, not strace (which would detach)
                import psutil

                children = psutil.Process(server.pid).children()
                target = children[0].pid if children else server.pid
            os.kill(target, signal.SIGINT)
            try:
                _, stderr = server.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                server.kill()
                _, stderr = server.communicate()
        if tool == "callgrind":
            match = re.search(r"Collected : (\d+)", stderr)
            if match is None:
                raise RuntimeError(f"no count from valgrind: {stderr[-1500:]}")
            return float(match.group(1))
        text = out.read_text()
        total = [line for line in text.splitlines() if line.strip().endswith("total")]
        if not total:
            raise RuntimeError(f"no strace total: {text[-500:]}")
        numbers = total[-1].split()
        # columns: % time, seconds, usecs/call, calls, [errors], total
        return float(numbers[3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", choices=["callgrind", "strace"], default="callgrind")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--scenarios", default="pp-c1,pp-c50,push")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every N")
    parser.add_argument("--out", default=None, help="append JSON lines here")
    args = parser.parse_args()
    rows = []
    for scenario in args.scenarios.split(","):
        _, base_n, per_n = SCENARIOS[scenario]
        n = max(1, int(base_n * args.scale))
        for variant in args.variants.split(","):
            try:
                small = one_run(args.tool, variant, scenario, n)
                big = one_run(args.tool, variant, scenario, 2 * n)
            except Exception as exc:
                print(f"{scenario:14} {variant:18} ERROR {exc}", flush=True)
                continue
            value = (big - small) / (n * per_n)
            rows.append(
                {"tool": args.tool, "scenario": scenario, "variant": variant, "per_msg": value}
            )
            print(f"{scenario:14} {variant:18} {value:14,.1f} per message", flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(rows[-1]) + "\n")
    print("\n| scenario | variant | per message | vs raw-hc |\n|---|---|---:|---:|")
    for row in rows:
        base = next(
            (
                r["per_msg"]
                for r in rows
                if r["scenario"] == row["scenario"] and r["variant"] == "raw-hc"
            ),
            None,
        )
        ratio = f"{row['per_msg'] / base:.2f}x" if base else "-"
        print(f"| {row['scenario']} | {row['variant']} | {row['per_msg']:,.1f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
