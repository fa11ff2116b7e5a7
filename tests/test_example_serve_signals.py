"""``examples/serve.py`` run as a program: Ctrl+C (SIGINT) or SIGTERM drains and exits 0, with
no traceback, and an open client gets 1001 "server shutting down".

Every wait is bounded by ``trio.fail_after``; the real clock runs (a real process).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import websockets.exceptions
import websockets.sync.client

from tests.server_log import ServerLog

TIMEOUT = 5.0
ROOT = Path(__file__).resolve().parent.parent


def _client_until_closed(url: str, ready: list[str]) -> tuple[int, str]:
    with websockets.sync.client.connect(url, open_timeout=TIMEOUT, proxy=None) as ws:
        ws.send("hello")
        ready.append(str(ws.recv(timeout=TIMEOUT)))
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            ws.recv(timeout=TIMEOUT * 2)
    received = info.value.rcvd
    assert received is not None
    return received.code, received.reason


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_example_serve_exits_0_on_a_signal_after_draining(
    signum: int, server_log: ServerLog
) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-u", str(ROOT / "examples" / "serve.py"), "0"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        with trio.fail_after(3 * TIMEOUT):
            out = b""
            while b"(Ctrl+C to stop)" not in out:
                chunk = await process.stdout.receive_some()
                assert chunk, out
                out += chunk
            url = out.split(b"serving on ", 1)[1].split()[0].decode().rstrip(",")
            ready: list[str] = []
            async with trio.open_nursery() as nursery:
                result: list[tuple[int, str]] = []

                async def client() -> None:
                    result.append(
                        await trio.to_thread.run_sync(
                            _client_until_closed, url.replace("http", "ws", 1), ready
                        )
                    )

                nursery.start_soon(client)
                while not ready:  # noqa: ASYNC110 - a thread's progress
                    await trio.sleep(0.01)
                process.send_signal(signum)
            code = await process.wait()
            rest_out = b"".join([out] + [c async for c in _drain(process.stdout)])
            err = b"".join([c async for c in _drain(process.stderr)])
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    server_log.check_text(err, "examples/serve.py's stderr")
    assert code == 0, err.decode()
    assert b"Traceback" not in err, err.decode()
    assert rest_out.rstrip().endswith(b"stopped")
    assert result == [(1001, "server shutting down")]
    assert b"drain done" in err


async def _drain(stream: Any) -> Any:
    while chunk := await stream.receive_some():
        yield chunk
