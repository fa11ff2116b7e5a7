#!/usr/bin/env python
"""Write docs/broadcast-fanout.svg: the fan-out figures of docs/performance.rst.

The same dependency-free bar chart as plot_counts.py. The figures are the ones in
docs/performance.rst; pass ``--jsonl`` with a ``fanout.py`` results file to plot the medians
of a fresh run (server CPU per delivery only).

    python bench/plot_fanout.py [--jsonl bench/results/fanout-<time>.jsonl]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from plot_counts import svg

HERE = Path(__file__).resolve().parent
#: group -> bar -> value (docs/performance.rst, "Broadcast fan-out")
FIGURES: dict[str, dict[str, float]] = {
    "Instructions per delivery, server (callgrind, 1,000 subscribers)": {
        "hc direct": 233_504,
        "hc hub, before": 250_185,
        "hc hub": 211_832,
        "serve direct": 78_409,
        "serve hub, before": 92_084,
        "serve hub, waves": 71_584,
        "serve hub": 18_511,
    },
    "Server CPU per delivery, µs: Hypercorn's trio worker (burst)": {
        "tws-direct": 150.1,
        "tws-tasks": 257.4,
        "tws-mem, before": 232.5,
        "tws-mem": 185.0,
        "tws-redis": 167.0,
    },
    "Server CPU per delivery, µs: trio_ws.serve (burst)": {
        "serve-direct": 39.0,
        "serve-tasks": 71.5,
        "serve-mem, waves": 39.5,
        "serve-mem": 18.9,
        "serve-redis": 21.7,
    },
    "Server CPU per delivery, µs: broadcaster on uvicorn (burst)": {
        "bc-mem": 17.2,
        "bc-redis": 61.5,
    },
}
COLOURS = {
    "hc hub": "#2a7ab0",
    "serve hub": "#2a7ab0",
    "serve hub, waves": "#6fa8d6",
    "tws-mem": "#2a7ab0",
    "serve-mem": "#2a7ab0",
    "tws-redis": "#6fa8d6",
    "serve-redis": "#6fa8d6",
}


def from_jsonl(path: Path) -> dict[str, dict[str, float]]:
    """Median server CPU per delivery of each variant, grouped by server."""
    runs: dict[str, list[float]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        value = row.get("server_cpu_us_per_delivery")
        if value is not None:
            name = row["variant"]
            if (
                "@" in name
            ):  # another checkout: "/tmp/fanout-base@tws-mem" -> "tws-mem (fanout-base)"
                root, _, name = name.rpartition("@")
                name = f"{name} ({Path(root).name})"
            runs.setdefault(name, []).append(float(value))
    groups: dict[str, dict[str, float]] = {}
    for name, values in runs.items():
        group = {"tws": "Hypercorn's trio worker", "serve": "trio_ws.serve", "bc": "uvicorn"}
        title = group[name.split("-", 1)[0]] + ": server CPU per delivery"
        groups.setdefault(title, {})[name] = statistics.median(values)
    return groups


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jsonl", default=None)
    parser.add_argument("--out", default=str(HERE.parent / "docs" / "broadcast-fanout.svg"))
    args = parser.parse_args()
    if args.jsonl:
        Path(args.out).write_text(svg(from_jsonl(Path(args.jsonl)), "µs", "{:.1f}", COLOURS))
    else:
        Path(args.out).write_text(svg(FIGURES, "", "{:,.0f}", COLOURS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
