#!/usr/bin/env python
"""Benchmark driver: interleaved runs of every server variant on Hypercorn's trio worker.

Each repetition starts every server fresh with
``taskset -c 0 hypercorn -k trio -w 1 -b 127.0.0.1:PORT servers.X:app`` (cwd ``bench/``). With
``-w 1`` Hypercorn runs a master process that spawns one worker; all CPU and RSS numbers are the
worker's (found as the master's child). The driver and the load client are pinned to CPU 1.

Per repetition: idle-1000 first (on the fresh servers), then pp-c1-32B, pp-c50-32B,
pp-c1-64KiB and push-20k. The server order is rotated every repetition and reversed every other
one, so no server always runs first or after the same neighbour. Tables show medians; ratios are
medians of per-repetition ratios against raw-hc.

Everything stops by itself: each client run has its own ``--time-limit`` plus a subprocess
timeout, and the driver has a global ``--deadline`` after which it skips the remaining runs and
stops the servers (SIGINT, then SIGKILL after 8 s, by PID).

    python3 run.py                # 3 repetitions (about 4-5 minutes)
    python3 run.py --quick        # smoke run: 1 repetition, fewer messages (about 1 minute)
    python3 run.py --report results/A/raw.jsonl results/B/raw.jsonl  # pooled table only
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
HYPERCORN = str(Path(PYTHON).with_name("hypercorn"))

SERVERS = {  # id -> ASGI app (module:attr, importable from bench/)
    "raw-hc": "servers.raw_echo:app",
    "plain-hc": "servers.plain_echo:app",
    "session-hc": "servers.session_echo:app",
    "starlette-hc": "servers.starlette_echo:app",
}
#: Servers that are one process (the worker is the process itself), run as
#: ``taskset -c 0 python -m <module> --port PORT <args>`` from bench/.
SCRIPT_SERVERS = {
    "session-serve": ["servers.serve_main", "--app", "session"],
    "session-serve-off": ["servers.serve_main", "--app", "session", "--no-data-plane"],
    "session-serve-nocoalesce": ["servers.serve_main", "--app", "session", "--no-coalescing"],
    "raw-serve": ["servers.serve_main", "--app", "raw"],
    "trio-websocket": ["servers.trio_websocket_main"],
    "uvicorn": ["servers.uvicorn_main"],
}
SERVERS.update({sid: " ".join(argv) for sid, argv in SCRIPT_SERVERS.items()})
BASELINE = "raw-hc"

# scenario id -> (client flags, client --time-limit seconds), full and quick
SCENARIOS_FULL = {
    "idle-1000": (
        ["--mode", "idle", "-k", "1000", "--open-concurrency", "50", "--settle", "1.0"],
        20,
    ),
    "pp-c1-32B": (
        ["--mode", "pingpong", "-c", "1", "-m", "8000", "--size", "32", "--warmup", "300"],
        8,
    ),
    "pp-c50-32B": (
        ["--mode", "pingpong", "-c", "50", "-m", "600", "--size", "32", "--warmup", "20"],
        30,
    ),
    "pp-c1-64KiB": (
        [
            "--mode",
            "pingpong",
            "-c",
            "1",
            "-m",
            "2500",
            "--size",
            "65536",
            "--binary",
            "--warmup",
            "50",
        ],
        8,
    ),
    "push-20k": (["--mode", "push", "-n", "20000", "--size", "32", "--rounds", "3"], 20),
    "pp-c50-32B-deflate": (
        [
            "--mode",
            "pingpong",
            "-c",
            "50",
            "-m",
            "600",
            "--size",
            "32",
            "--warmup",
            "20",
            "--deflate",
        ],
        30,
    ),
    "push-20k-deflate": (
        ["--mode", "push", "-n", "20000", "--size", "32", "--rounds", "3", "--deflate"],
        20,
    ),
}
SCENARIOS_QUICK = {
    "idle-1000": (
        ["--mode", "idle", "-k", "200", "--open-concurrency", "50", "--settle", "0.5"],
        10,
    ),
    "pp-c1-32B": (
        ["--mode", "pingpong", "-c", "1", "-m", "1000", "--size", "32", "--warmup", "100"],
        5,
    ),
    "pp-c50-32B": (
        ["--mode", "pingpong", "-c", "50", "-m", "100", "--size", "32", "--warmup", "5"],
        5,
    ),
    "pp-c1-64KiB": (
        [
            "--mode",
            "pingpong",
            "-c",
            "1",
            "-m",
            "600",
            "--size",
            "65536",
            "--binary",
            "--warmup",
            "20",
        ],
        5,
    ),
    "push-20k": (["--mode", "push", "-n", "5000", "--size", "32", "--rounds", "2"], 5),
    "pp-c50-32B-deflate": (
        [
            "--mode",
            "pingpong",
            "-c",
            "50",
            "-m",
            "100",
            "--size",
            "32",
            "--warmup",
            "5",
            "--deflate",
        ],
        5,
    ),
    "push-20k-deflate": (
        ["--mode", "push", "-n", "5000", "--size", "32", "--rounds", "2", "--deflate"],
        5,
    ),
}


# ---------------------------------------------------------------------------- processes


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # as Hypercorn does; TIME_WAIT is fine
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Server:
    def __init__(self, sid: str, port: int, logdir: Path, rep: int, lifetime: float) -> None:
        self.sid = sid
        self.port = port
        if sid in SCRIPT_SERVERS:
            module, *rest = SCRIPT_SERVERS[sid]
            self.cmd = ["taskset", "-c", "0", PYTHON, "-m", module, "--port", str(port), *rest]
            self.marker = module
        else:
            self.cmd = [
                "taskset",
                "-c",
                "0",
                HYPERCORN,
                "-k",
                "trio",
                "-w",
                "1",
                "-b",
                f"127.0.0.1:{port}",
                SERVERS[sid],
            ]
            self.marker = "spawn_main"
        # `timeout` is a safety net: the server stops by itself even if this driver is killed.
        self.cmd = ["timeout", "-s", "INT", "-k", "10", str(max(10, int(lifetime))), *self.cmd]
        self.log_path = logdir / f"{sid}-rep{rep}.log"
        self.proc: subprocess.Popen | None = None
        self.worker: psutil.Process | None = None

    def start(self, timeout: float = 20.0) -> None:
        if not port_free(self.port):
            raise RuntimeError(f"port {self.port} is in use; pass --base-port")
        env = dict(os.environ)
        # import trio_ws from this checkout (bench/..), whether or not it is pip-installed
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=HERE,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        end = time.monotonic() + timeout
        master = psutil.Process(self.proc.pid)
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.sid} exited with {self.proc.returncode}; see {self.log_path}"
                )
            children = master.children(recursive=True)
            workers = [c for c in children if self.marker in " ".join(_cmdline(c))]
            if workers and port_open(self.port):
                self.worker = workers[0]
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.sid} did not start within {timeout}s; see {self.log_path}")

    def worker_stats(self) -> dict:
        try:
            t = self.worker.cpu_times()
            return {"cpu_s": t.user + t.system, "rss": self.worker.memory_info().rss}
        except (psutil.Error, AttributeError):
            return {}

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.worker is not None:
            try:
                self.worker.wait(3)
            except psutil.TimeoutExpired:
                self.worker.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc = None


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def run_client(server: Server, flags: list[str], time_limit: float) -> tuple[dict, dict]:
    cmd = [
        "taskset",
        "-c",
        "1",
        PYTHON,
        str(HERE / "client.py"),
        "--url",
        f"ws://127.0.0.1:{server.port}",
        "--server-pid",
        str(server.worker.pid),
        "--time-limit",
        str(time_limit),
        *flags,
    ]
    before = server.worker_stats()
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, cwd=HERE, capture_output=True, text=True, timeout=time_limit + 15
        )
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        stdout, stderr, rc = exc.stdout or "", f"subprocess timeout\n{exc.stderr or ''}", None
    after = server.worker_stats()
    try:
        result = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"error": f"no JSON from client (rc={rc}): {stderr[-500:]}"}
    if rc not in (0, 1) and "error" not in result:
        result["error"] = f"client rc={rc}: {stderr[-500:]}"
    meta = {
        "cmd": " ".join(cmd),
        "rc": rc,
        "wall_s": time.monotonic() - t0,
        "worker_cpu_s_run": (after.get("cpu_s", 0) - before.get("cpu_s", 0)) if before else None,
        "worker_rss_after": after.get("rss"),
        "stderr_tail": stderr[-300:] if stderr else "",
    }
    return result, meta


# ---------------------------------------------------------------------------- report


def metric(rec: dict):
    r = rec["result"]
    if rec["scenario"].startswith("idle"):
        v = r.get("rss_per_conn_bytes")
        return v / 1024 if v is not None else None
    return r.get("msgs_per_s")


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0, thousands=True):
    if v is None:
        return "-"
    if thousands:
        return f"{v:,.{digits}f}"
    return f"{v:.{digits}f}"


def report(records: list[dict]) -> str:
    ok = [r for r in records if "error" not in r["result"]]
    errors = len(records) - len(ok)
    scenarios = list(dict.fromkeys(r["scenario"] for r in records))
    servers = [s for s in SERVERS if any(r["server"] == s for r in records)]
    servers += sorted({r["server"] for r in records} - set(servers))
    # per-repetition ratios (a repetition is identified by run id + rep)
    by_key: dict[tuple, float] = {}
    for r in ok:
        by_key[(r["run"], r["rep"], r["scenario"], r["server"])] = metric(r)
    lines = []
    reps = len({(r["run"], r["rep"]) for r in records})
    lines.append(
        f"{reps} repetition(s), {len(records)} client runs, {errors} error(s). "
        "Cells: median; (x) = median of per-repetition ratios vs raw-hc "
        "(for idle: RSS per connection, lower is better; otherwise msgs/s, higher is better)."
    )
    lines.append("")
    lines.append("| scenario | " + " | ".join(servers) + " |")
    lines.append("|---|" + "---:|" * len(servers))
    detail = []
    for sc in scenarios:
        cells = []
        for sv in servers:
            recs = [r for r in ok if r["scenario"] == sc and r["server"] == sv]
            if not recs:
                cells.append("-")
                continue
            ratios = []
            for r in recs:
                base = by_key.get((r["run"], r["rep"], sc, BASELINE))
                m = metric(r)
                if base and m is not None:
                    ratios.append(m / base)
            ratio = med(ratios)
            m = med(metric(r) for r in recs)
            if sc.startswith("idle"):
                cell = f"{fmt(m, 1)} KiB/conn ({fmt(ratio, 2)}x)"
            else:
                cell = f"{fmt(m)}/s ({fmt(ratio, 2)}x)"
                p50 = med(r["result"].get("p50_us") for r in recs)
                if p50 is not None:
                    cell += f"<br>p50 {fmt(p50)} / p99 {fmt(med(r['result'].get('p99_us') for r in recs))} µs"
            cells.append(cell)
            res = [r["result"] for r in recs]
            detail.append(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                    sc,
                    sv,
                    "-" if sc.startswith("idle") else fmt(m),
                    ", ".join(fmt(x, 2) for x in ratios) or "-",
                    fmt(med(x.get("p50_us") for x in res)),
                    fmt(med(x.get("p99_us") for x in res)),
                    fmt(med(x.get("server_cpu_us_per_msg") for x in res), 1),
                    fmt(med(x.get("server_cpu_pct") for x in res)),
                    fmt(med(x.get("client_cpu_pct") for x in res)),
                    fmt(med(x.get("server_core_others_pct") for x in res)),
                    fmt(med(x.get("client_cpu_us_per_msg") for x in res), 1),
                    fmt(m, 1) if sc.startswith("idle") else "-",
                    fmt(med(x.get("open_per_s") for x in res)),
                )
            )
        lines.append(f"| {sc} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "| scenario | server | msgs/s | per-rep ratios | p50 µs | p99 µs | server CPU µs/msg "
        "| server CPU % | client CPU % | others on CPU 0 % | client CPU µs/msg | RSS/conn KiB | conn open/s |"
    )
    lines.append("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines.extend(detail)
    idle = [r for r in ok if r["scenario"].startswith("idle")]
    if idle:
        lines.append("")
        lines.append("Idle RSS detail (worker, medians, MiB):")
        lines.append("")
        lines.append("| server | before | conns open | after one echo each | after closing all |")
        lines.append("|---|---:|---:|---:|---:|")
        for sv in servers:
            rss = [r["result"].get("rss_bytes", {}) for r in idle if r["server"] == sv]
            if rss:
                lines.append(
                    f"| {sv} | "
                    + " | ".join(
                        fmt(med((x.get(k) or 0) / 2**20 for x in rss), 1)
                        for k in ("before", "open", "after_echo", "after_close")
                    )
                    + " |"
                )
    lines.append("")
    lines.append("Client flags per scenario (plus `--url`, `--server-pid`, `--time-limit`):")
    lines.append("")
    for sc in scenarios:
        flags = next(r["flags"] for r in records if r["scenario"] == sc)
        lines.append(f"- {sc}: `{' '.join(flags)}`")
    bad = [r for r in records if "error" in r["result"]]
    if bad:
        lines.append("")
        lines.append("Errors:")
        for r in bad:
            lines.append(f"- rep {r['rep']} {r['scenario']} {r['server']}: {r['result']['error']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main


def order_for(rep: int, servers: list[str]) -> list[str]:
    k = rep % len(servers)
    order = servers[k:] + servers[:k]
    return list(reversed(order)) if rep % 2 else order


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke run: 1 repetition, fewer messages")
    p.add_argument(
        "--servers",
        default="raw-hc,plain-hc,session-hc,starlette-hc",
        help="comma-separated subset of " + ",".join(SERVERS),
    )
    p.add_argument("--scenarios", default=None, help="comma-separated subset of scenario ids")
    p.add_argument("--base-port", type=int, default=8101)
    p.add_argument(
        "--deadline",
        type=float,
        default=None,
        help="global seconds (default max(600, 200*reps), quick 150)",
    )
    p.add_argument("--out", default=None, help="results directory (default results/<timestamp>)")
    p.add_argument(
        "--report", nargs="+", metavar="RAW_JSONL", help="only print the table for these files"
    )
    args = p.parse_args()

    if args.report:
        records = []
        for path in args.report:
            records += [
                json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()
            ]
        print(report(records))
        return 0

    scenarios = dict(SCENARIOS_QUICK if args.quick else SCENARIOS_FULL)
    if args.scenarios:
        scenarios = {k: scenarios[k] for k in args.scenarios.split(",")}
    servers = [s for s in args.servers.split(",") if s]
    for s in servers:
        if s not in SERVERS:
            p.error(f"unknown server {s}")
    reps = 1 if args.quick else args.reps
    deadline_s = args.deadline or (150 if args.quick else max(600, 200 * reps))
    deadline = time.monotonic() + deadline_s

    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {1})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))

    run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    outdir = Path(args.out) if args.out else HERE / "results" / run_id
    (outdir / "logs").mkdir(parents=True, exist_ok=True)
    raw_path = outdir / "raw.jsonl"
    print(
        f"# results -> {outdir}  (reps={reps}, quick={args.quick}, deadline={deadline_s:.0f}s)",
        flush=True,
    )
    records: list[dict] = []
    t_start = time.monotonic()
    stopping = False

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    with open(raw_path, "w") as raw:
        for rep in range(reps):
            if stopping or time.monotonic() > deadline:
                break
            order = order_for(rep, servers)
            running: dict[str, Server] = {}
            try:
                for i, sid in enumerate(servers):
                    lifetime = deadline - time.monotonic() + 30
                    srv = Server(sid, args.base_port + i, outdir / "logs", rep, lifetime)
                    srv.start()
                    running[sid] = srv
                print(f"## rep {rep}: order {' '.join(order)}", flush=True)
                for sc, (flags, time_limit) in scenarios.items():
                    if stopping:
                        break
                    for pos, sid in enumerate(order):
                        if time.monotonic() + time_limit + 15 > deadline:
                            print(f"   global deadline: stopping before {sc} {sid}", flush=True)
                            stopping = True
                            break
                        result, meta = run_client(running[sid], flags, time_limit)
                        meta["server_cmd"] = " ".join(running[sid].cmd)
                        rec = {
                            "run": run_id,
                            "rep": rep,
                            "scenario": sc,
                            "server": sid,
                            "position": pos,
                            "flags": flags,
                            "result": result,
                            "meta": meta,
                        }
                        records.append(rec)
                        raw.write(json.dumps(rec) + "\n")
                        raw.flush()
                        m = metric(rec)
                        print(
                            f"   {sc:12s} {sid:13s} "
                            + (
                                "ERROR " + result["error"]
                                if "error" in result
                                else (
                                    f"{m:9.1f} KiB/conn"
                                    if sc.startswith("idle")
                                    else f"{m:9.0f} msg/s"
                                )
                                + (
                                    f"  srv {result['server_cpu_us_per_msg']:.1f} µs/msg"
                                    if result.get("server_cpu_us_per_msg")
                                    else ""
                                )
                                + (
                                    f"  client {result['client_cpu_pct']:.0f}% CPU"
                                    if result.get("client_cpu_pct")
                                    else ""
                                )
                                + (
                                    f"  others on CPU 0 {result['server_core_others_pct']:.0f}%"
                                    if result.get("server_core_others_pct") is not None
                                    else ""
                                )
                            ),
                            flush=True,
                        )
            except KeyboardInterrupt:
                stopping = True
                print("interrupted: stopping servers", flush=True)
            finally:
                for srv in running.values():
                    srv.stop()
    table = report(records) if records else "no results"
    (outdir / "table.md").write_text(table + "\n")
    print()
    print(table)
    print(f"\n# {time.monotonic() - t_start:.0f}s; raw: {raw_path}; table: {outdir / 'table.md'}")
    return 0 if records and all("error" not in r["result"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
