#!/usr/bin/env python
"""Run the Autobahn testsuite (``wstest -m fuzzingclient``) against ``trio_ws.serve``.

wstest needs Python 2.7 (autobahntestsuite 25.10.1). Install it once, outside the project::

    PIP_CONFIG_FILE=/dev/null ~/.pyenv/versions/2.7.18/bin/python -m pip install \\
        --target /tmp/wstest-lib autobahntestsuite
    echo "__path__ = __import__('pkgutil').extend_path(__path__, __name__)" \
        > /tmp/wstest-lib/zope/__init__.py    # --target skips the namespace .pth

then::

    python3 bench/autobahn.py --cases '1.*,2.*,3.*,4.*,5.*,6.*,7.*,10.*,11.*'
    python3 bench/autobahn.py --cases '9.*'              # performance (about 15 s of cases)
    python3 bench/autobahn.py --cases '9.*' --hypercorn  # the same against plain Hypercorn
    python3 bench/autobahn.py --cases '12.*,13.*'        # permessage-deflate (about 17 min)

Prints one line per behaviour (OK, NON-STRICT, INFORMATIONAL, FAILED...) with its count, the
total case time per group, and exits 1 if any case failed. Reports go to ``--out``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="*")
    parser.add_argument("--exclude", default="")
    parser.add_argument("--hypercorn", action="store_true", help="plain Hypercorn instead")
    parser.add_argument("--wstest-lib", default="/tmp/wstest-lib")
    parser.add_argument(
        "--python2", default=os.path.expanduser("~/.pyenv/versions/2.7.18/bin/python")
    )
    parser.add_argument("--out", default=str(HERE / "results" / "autobahn"))
    args = parser.parse_args()
    port = free_port()
    out = Path(args.out).resolve()  # wstest runs in it: relative paths would break
    out.mkdir(parents=True, exist_ok=True)
    agent = "hypercorn" if args.hypercorn else "trio_ws.serve"
    spec = {
        "outdir": str(out / "reports"),
        "servers": [{"agent": agent, "url": f"ws://127.0.0.1:{port}"}],
        "cases": args.cases.split(","),
        "exclude-cases": [c for c in args.exclude.split(",") if c],
        "exclude-agent-cases": {},
    }
    spec_path = out / "fuzzingclient.json"
    spec_path.write_text(json.dumps(spec))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]),
    }
    server_cmd = [sys.executable, "-m", "servers.autobahn_echo", "--port", str(port)]
    if args.hypercorn:
        server_cmd.append("--hypercorn")
    server = subprocess.Popen(server_cmd, cwd=HERE, env=env)
    try:
        for _ in range(300):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        wenv = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_FIND_LINKS")}
        wenv["PYTHONPATH"] = args.wstest_lib
        subprocess.run(
            [
                args.python2,
                os.path.join(args.wstest_lib, "bin", "wstest"),
                "-m",
                "fuzzingclient",
                "-s",
                str(spec_path),
            ],
            cwd=out,
            env=wenv,
            check=False,
            stdout=subprocess.DEVNULL,
        )
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    index = json.loads((out / "reports" / "index.json").read_text())[agent]
    behaviours: collections.Counter[str] = collections.Counter()
    close_behaviours: collections.Counter[str] = collections.Counter()
    durations: collections.Counter[str] = collections.Counter()
    failed = []
    for case, result in index.items():
        behaviours[result["behavior"]] += 1
        close_behaviours[result["behaviorClose"]] += 1
        durations[case.split(".")[0]] += result.get("duration", 0)
        if result["behavior"] not in ("OK", "NON-STRICT", "INFORMATIONAL") or result[
            "behaviorClose"
        ] not in ("OK", "INFORMATIONAL"):
            failed.append((case, result["behavior"], result["behaviorClose"]))
    print(f"{agent}: {len(index)} cases")
    print("behaviour:", dict(behaviours))
    print("close behaviour:", dict(close_behaviours))
    print(
        "case time per group (s):",
        {g: round(ms / 1000, 1) for g, ms in sorted(durations.items(), key=lambda kv: int(kv[0]))},
    )
    for case in failed:
        print("FAILED", *case)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
