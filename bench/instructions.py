"""Instructions per echoed message under valgrind: a count that machine noise cannot move.

For each variant, runs the in-memory echo of ``calls.py`` (Hypercorn's trio TCPServer over a
memory stream, a wsproto client in the same process) twice under ``valgrind --tool=callgrind``,
with N and 2N messages, and reports (I(2N) - I(N)) / N: the instructions one echo costs, client
included. The client's share is the same for every variant, so differences between variants are
the server-side cost of each layer. Slow (about a minute per run), deterministic to a fraction
of a percent.

    python3 instructions.py [-n 400] [--variants raw,plain,session,starlette]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNNER = """
import sys
sys.path[:0] = [{bench!r}, {root!r}]
import trio, calls
trio.run(calls._memory_echo, calls.load_app({variant!r}), {n}, "x" * 32)
"""


def instructions(variant: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        result = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                RUNNER.format(bench=str(HERE), root=str(HERE.parent), variant=variant, n=n),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=True,
        )
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{result.stderr[-2000:]}")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=400, help="messages in the short run")
    parser.add_argument("--variants", default="raw,plain,session,starlette")
    args = parser.parse_args()
    per_message: dict[str, float] = {}
    for variant in args.variants.split(","):
        small, big = instructions(variant, args.n), instructions(variant, 2 * args.n)
        per_message[variant] = (big - small) / args.n
        print(f"{variant:10} {per_message[variant]:12,.0f} instructions/msg", flush=True)
    raw = per_message.get("raw")
    if raw:
        print("\n| variant | instructions/msg | vs raw |\n|---|---:|---:|")
        for variant, count in per_message.items():
            print(f"| {variant} | {count:,.0f} | {count / raw:.3f}x (+{count - raw:,.0f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
