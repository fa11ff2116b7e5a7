"""What a fast JSON codec saves per message: instructions under valgrind, and a wall-clock ratio.

Three measurements, each for the standard codec (``json`` with Starlette's settings, the
default), ``JSONCodec.orjson()`` and ``JSONCodec.msgspec()``:

``codec``
    The codec alone: one ``decode`` plus one ``encode_text`` of a payload, as
    ``receive_json`` and ``send_json`` call them. Payloads: ``small`` (a chat message, ~70
    bytes), ``medium`` (20 records, ~1.6 KB), ``large`` (500 records, ~40 KB).
``typed``
    ``decode(text, Model)`` of the ``small`` payload: a pydantic model (pydantic parses and
    validates), a ``msgspec.Struct``, and, for comparison, untyped ``json.loads`` plus building
    the pydantic model from the dict.
``echo``
    End to end: ``receive_json`` then ``send_json`` in a trio_ws session on Hypercorn's trio
    ``TCPServer`` over a memory stream, with a wsproto client in the same process (``calls.py``'s
    harness), client included. The client's share is the same for every codec.

Instructions come from ``valgrind --tool=callgrind``, run twice with N and 2N messages:
(I(2N) - I(N)) / N, so start-up and imports cancel out; the garbage collector is off in the measured
program (a collection would land in one loop and not the other), so the counts leave out GC cost.
``--wall`` adds one interleaved wall-clock run of ``codec`` (ratios only: the machine is shared).

    python3 json_codecs.py [-n 2000] [--echo-n 300] [--only codec,typed,echo] [--wall] [--jobs 3]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CODECS = ("standard", "orjson", "msgspec")

SETUP = """
import gc
import sys
sys.path[:0] = [{bench!r}, {root!r}]
import json
import trio_ws
from trio_ws import JSONCodec

def record(i):
    return {{"id": i, "user": f"user-{{i}}", "text": "héllo, wörld " * 3, "tags": ["a", "b"],
             "ok": i % 2 == 0, "score": i * 7}}

PAYLOADS = {{
    "small": {{"room": "lobby", "user": "ann", "text": "hello, everyone ✓", "seq": 42}},
    "medium": {{"items": [record(i) for i in range(20)]}},
    "large": {{"items": [record(i) for i in range(500)]}},
}}
TEXTS = {{name: json.dumps(v, separators=(",", ":"), ensure_ascii=False)
          for name, v in PAYLOADS.items()}}
codec = getattr(JSONCodec, {codec!r})()
gc.disable()  # a collection lands in one loop but not the other: counts would jump by millions
"""

# Each measured item runs its loop N times, then 2N times, with os.getppid() between the loops:
# callgrind's --dump-before=getppid closes a profile part there (nothing else here calls getppid).
CODEC_LOOP = """
value, text = PAYLOADS[{payload!r}], TEXTS[{payload!r}]
for _ in range({n}):
    codec.decode(text)
    codec.encode_text(value)
"""

TYPED_SETUP = """
import msgspec, pydantic

class Chat(pydantic.BaseModel):
    room: str
    user: str
    text: str
    seq: int

class ChatStruct(msgspec.Struct):
    room: str
    user: str
    text: str
    seq: int
"""

TYPED_LOOPS = {
    "loads+model": "for _ in range({n}): Chat.model_validate(codec.decode(TEXTS['small']))",
    "pydantic": "for _ in range({n}): codec.decode(TEXTS['small'], Chat)",
    "msgspec": "for _ in range({n}): codec.decode(TEXTS['small'], ChatStruct)",
}

ECHO_SETUP = """
import trio, calls
from trio.testing import MockClock

async def echo(ws):
    await ws.accept()
    async for value in ws.iter_json():
        await ws.send_json(value)

app = trio_ws.websocket_app(echo, json_codec=codec)
"""
# A frozen clock: calls._memory_echo's 30-second bound must not fire under valgrind's slowdown.
ECHO_LOOP = 'trio.run(calls._memory_echo, app, {n}, TEXTS["small"], clock=MockClock())'

PAYLOAD_NAMES = ("small", "medium", "large")
SCALE = {"small": 1, "medium": 1, "large": 20}  # the large loop runs N / 20 times


def run_items(codec: str, items: list[tuple[str, str, int]], setup: str) -> dict[str, float]:
    """Run ``items`` ((name, loop template, n)) in one process under callgrind.

    Returns instructions per iteration of each loop: (I(2n) - I(n)) / n.
    """
    lines = [SETUP.format(bench=str(HERE), root=str(HERE.parent), codec=codec), setup]
    lines.append("import os\nos.getppid()")
    for _, loop, n in items:
        lines += [loop.format(n=n), "os.getppid()", loop.format(n=2 * n), "os.getppid()"]
    program = "\n".join(lines)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        result = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--dump-before=getppid",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                program,
            ],
            capture_output=True,
            text=True,
            timeout=3600,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=False,
        )
        if result.returncode:
            raise RuntimeError(f"{codec}: the measured program failed:\n{result.stderr[-3000:]}")
        parts = sorted(Path(tmp).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        totals = []
        for part in parts:
            match = re.search(r"^summary: (\d+)", part.read_text(), re.MULTILINE)
            assert match is not None, part
            totals.append(int(match.group(1)))
    if len(totals) != 1 + 2 * len(items):
        raise RuntimeError(f"expected {1 + 2 * len(items)} profile parts, got {len(totals)}")
    return {
        name: (totals[2 + 2 * i] - totals[1 + 2 * i]) / n for i, (name, _, n) in enumerate(items)
    }


def table(title: str, rows: dict[str, dict[str, float]]) -> None:
    columns = list(next(iter(rows.values())))
    base = rows[next(iter(rows))]
    print(f"\n{title}\n")
    print("| | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for name, row in rows.items():
        cells = [f"{row[c]:,.0f} ({row[c] / base[c]:.2f}x)" for c in columns]
        print(f"| {name} | " + " | ".join(cells) + " |")


def wall(n: int, rounds: int = 5) -> None:
    """One interleaved wall-clock run of the codec loops: microseconds per message, as ratios."""
    scopes: dict[str, dict[str, object]] = {}
    for codec in CODECS:
        scopes[codec] = {}
        exec(SETUP.format(bench=str(HERE), root=str(HERE.parent), codec=codec), scopes[codec])
    totals = dict.fromkeys([(c, p) for c in CODECS for p in PAYLOAD_NAMES], 0.0)
    for _ in range(rounds):
        for payload in PAYLOAD_NAMES:
            loop = CODEC_LOOP.format(payload=payload, n=n // SCALE[payload])
            for codec in CODECS:
                start = time.perf_counter()
                exec(loop, scopes[codec])
                totals[codec, payload] += time.perf_counter() - start
    print("\nwall clock, one interleaved run: us per decode + encode (ratio to standard)\n")
    print("| | " + " | ".join(PAYLOAD_NAMES) + " |\n|---|---:|---:|---:|")
    for codec in CODECS:
        cells = []
        for payload in PAYLOAD_NAMES:
            seconds = totals[codec, payload] / (rounds * (n // SCALE[payload]))
            ratio = totals[codec, payload] / totals["standard", payload]
            cells.append(f"{seconds * 1e6:.2f} ({ratio:.2f}x)")
        print(f"| {codec} | " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="iterations of the short codec loops")
    parser.add_argument("--echo-n", type=int, default=300, help="messages in the short echo run")
    parser.add_argument("--only", default="codec,typed,echo")
    parser.add_argument("--wall", action="store_true")
    parser.add_argument("--jobs", type=int, default=1, help="valgrind processes at a time")
    args = parser.parse_args()
    parts = args.only.split(",")
    codec_rows: dict[str, dict[str, float]] = {}
    echo_rows: dict[str, dict[str, float]] = {}
    typed_rows: dict[str, dict[str, float]] = {}

    def measure(codec: str) -> dict[str, float]:
        items: list[tuple[str, str, int]] = []
        setup = ""
        if "codec" in parts:
            items += [
                (
                    payload,
                    CODEC_LOOP.replace("{payload!r}", repr(payload)),
                    args.n // SCALE[payload],
                )
                for payload in PAYLOAD_NAMES
            ]
        if "typed" in parts and codec == "standard":
            setup += TYPED_SETUP
            items += [(f"typed:{kind}", loop, args.n) for kind, loop in TYPED_LOOPS.items()]
        if "echo" in parts:
            setup += ECHO_SETUP
            items.append(("echo", ECHO_LOOP, args.echo_n))
        return run_items(codec, items, setup)

    # One valgrind process per codec, --jobs of them at a time.
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = dict(zip(CODECS, pool.map(measure, CODECS), strict=True))
    for codec, counts in results.items():
        print(codec, {k: round(v) for k, v in counts.items()}, flush=True)
        codec_rows[codec] = {p: counts[p] for p in PAYLOAD_NAMES if p in counts}
        if "echo" in counts:
            echo_rows[codec] = {"echo": counts["echo"]}
        typed_rows.update(
            {k[6:]: {"small": v} for k, v in counts.items() if k.startswith("typed:")}
        )
    if "codec" in parts:
        table("instructions per decode + encode (ratio to standard)", codec_rows)
    if typed_rows:
        table("instructions per typed decode of the small payload", typed_rows)
    if echo_rows:
        table("instructions per JSON echo through a session, client included", echo_rows)
    if args.wall:
        wall(args.n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
