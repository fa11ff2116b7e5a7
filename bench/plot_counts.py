#!/usr/bin/env python
"""Write docs/dataplane-instructions.svg: instructions per message, as measured by counts.py.

A dependency-free SVG bar chart (no matplotlib). The figures are the ones in
docs/performance.rst; pass ``--jsonl`` with counts.py ``--out`` files to plot fresh ones.
``--run`` plots run.py's messages per second instead (medians per scenario and server).

    python3 bench/plot_counts.py [--jsonl /tmp/counts.jsonl ...]
    python3 bench/plot_counts.py --run results/<run>/raw.jsonl --out ../docs/dataplane-wallclock.svg
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: scenario -> variant -> instructions per message (docs/performance.rst)
FIGURES = {
    "ping-pong, 50 clients": {
        "raw-hc": 586_289,
        "session-hc": 634_851,
        "trio-websocket": 375_604,
        "uvicorn": 154_419,
        "raw-serve": 131_564,
        "session-serve": 121_030,
    },
    "push": {"raw-hc": 221_822, "uvicorn": 40_775, "session-serve": 51_829},
}
COLOURS = {"session-serve": "#2a7ab0", "raw-serve": "#6fa8d6"}


def svg(
    figures: dict[str, dict[str, float]],
    unit: str = "instructions per message",
    fmt: str = "{:,.0f}",
    colours: dict[str, str] = COLOURS,
) -> str:
    """A horizontal bar chart, one group per scenario, each group scaled to its largest bar."""
    bar, gap, left, width = 18, 6, 180, 420
    rows = sum(len(v) for v in figures.values())
    height = 30 + rows * (bar + gap) + len(figures) * 34
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
        'font-family="sans-serif" font-size="12">'
    ]
    y = 10
    for scenario, values in figures.items():
        top = max(values.values())
        title = f"{scenario} ({unit})" if unit else scenario
        out.append(f'<text x="4" y="{y + 14}" font-weight="bold">{title}</text>')
        y += 24
        for name, value in values.items():
            w = width * value / top
            colour = colours.get(name, "#9a9a9a")
            out.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{name}</text>')
            out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="{colour}"/>')
            out.append(f'<text x="{left + w + 4:.1f}" y="{y + 13}">{fmt.format(value)}</text>')
            y += bar + gap
        y += 10
    out.append("</svg>")
    return "\n".join(out) + "\n"


def wall_clock(paths: list[str], only: str | None) -> dict[str, dict[str, float]]:
    """run.py records -> scenario -> server -> median msgs/s (in the order first seen)."""
    samples: dict[str, dict[str, list[float]]] = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            rec = json.loads(line)
            value = (rec.get("result") or {}).get("msgs_per_s")
            if value is not None:
                samples.setdefault(rec["scenario"], {}).setdefault(rec["server"], []).append(value)
    wanted = only.split(",") if only else list(samples)
    return {
        sc: {server: statistics.median(v) for server, v in sorted(samples[sc].items())}
        for sc in wanted
        if sc in samples
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jsonl", nargs="*", default=[])
    parser.add_argument("--run", nargs="*", default=[], help="run.py raw.jsonl files")
    parser.add_argument("--scenarios", default=None, help="with --run: comma-separated ids")
    parser.add_argument("--out", default=str(HERE.parent / "docs" / "dataplane-instructions.svg"))
    args = parser.parse_args()
    figures = FIGURES
    if args.jsonl:
        figures = {}
        for path in args.jsonl:
            for line in Path(path).read_text().splitlines():
                row = json.loads(line)
                figures.setdefault(row["scenario"], {})[row["variant"]] = row["per_msg"]
    if args.run:
        Path(args.out).write_text(svg(wall_clock(args.run, args.scenarios), "messages per second"))
        return 0
    Path(args.out).write_text(svg(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
