"""``python -m trio_ws`` end to end: a subprocess on a free port, real clients, real signals.

Each test starts the command, waits for Hypercorn's "Running on" line, talks to it with
trio-websocket, then sends SIGINT or SIGTERM and checks that open sessions are closed with
1001 ("server shutting down") and that the command exits 0 without a traceback.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Ping, Request

import trio_ws

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 20.0  # a worker process imports trio, hypercorn and the app: seconds on a busy CI


@dataclass
class Server:
    process: trio.Process
    url: str  # http://HOST:PORT or https://HOST:PORT
    log: bytearray = field(default_factory=bytearray)
    grew: trio.Event = field(default_factory=trio.Event)  # replaced after each chunk

    async def wait_for_log(self, pattern: bytes, count: int = 1) -> list[bytes]:
        """Wait until ``pattern`` matches ``count`` times in the log; return the matches."""
        while len(found := re.findall(pattern, self.log)) < count:
            if self.process.returncode is not None:
                pytest.fail(f"trio_ws exited:\n{self.text()}")
            await self.grew.wait()
        return found

    @property
    def authority(self) -> str:
        return self.url.split("://", 1)[1]

    def text(self) -> str:
        return self.log.decode(errors="replace")


@asynccontextmanager
async def trio_ws_command(*args: str) -> AsyncIterator[Server]:
    """Run ``python -m trio_ws ARGS`` in the repository root; yield once it is serving."""
    command = [sys.executable, "-m", "trio_ws", *args, "--port", "0"]  # the last --port wins
    process = await trio.lowlevel.open_process(
        command,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    server = Server(process, "")
    try:
        async with trio.open_nursery() as nursery:

            async def read_log() -> None:
                assert process.stderr is not None
                async for chunk in process.stderr:
                    server.log.extend(chunk)
                    server.grew.set()
                    server.grew = trio.Event()
                server.grew.set()  # the end: waiters see returncode

            nursery.start_soon(read_log)
            with trio.fail_after(TIMEOUT):
                (url,) = (await server.wait_for_log(rb"Running on (https?://\S+)"))[:1]
            server.url = url.decode()
            yield server
    finally:
        if process.returncode is None:
            process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


@asynccontextmanager
async def client(
    server: Server, ssl_context: ssl.SSLContext | None = None, path: str = "/"
) -> AsyncIterator[WebSocketConnection]:
    """A trio-websocket connection on a stream the test owns (and always closes)."""
    host, _, port = server.authority.rpartition(":")
    stream: trio.abc.Stream
    if ssl_context is None:
        stream = await trio.open_tcp_stream(host, int(port))
    else:
        stream = await trio.open_ssl_over_tcp_stream(host, int(port), ssl_context=ssl_context)
    try:
        async with trio.open_nursery() as nursery:
            ws = await wrap_client_stream(nursery, stream, server.authority, path)
            try:
                yield ws
            finally:
                await ws.aclose()
    finally:
        await trio.aclose_forcefully(stream)


async def greeted(ws: WebSocketConnection) -> int:
    """Read the app's greeting; return the worker's pid."""
    greeting = await ws.get_message()
    assert isinstance(greeting, str)
    assert greeting.startswith("pid ")
    return int(greeting.removeprefix("pid "))


async def echoes(ws: WebSocketConnection, text: str) -> None:
    await ws.send_message(text)
    assert await ws.get_message() == text


async def expect_drain_close(ws: WebSocketConnection) -> None:
    with pytest.raises(ConnectionClosed) as closed:
        await ws.get_message()
    assert closed.value.reason.code == 1001
    assert closed.value.reason.reason == "server shutting down"


async def stop_and_check(
    server: Server, signum: signal.Signals, *clients: WebSocketConnection, group: bool = False
) -> None:
    """Send ``signum`` (to the whole process group, as Ctrl+C in a terminal does, if ``group``);
    every client gets 1001; the command exits 0 with a clean log."""
    if group:
        os.killpg(server.process.pid, signum)
    else:
        server.process.send_signal(signum)
    for ws in clients:
        await expect_drain_close(ws)
    assert await server.process.wait() == 0, server.text()
    assert "Traceback" not in server.text(), server.text()
    assert f"{signum.name} received" in server.text()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_serves_then_drains_with_1001_and_exits_0(signum: signal.Signals) -> None:
    with trio.fail_after(TIMEOUT):
        async with trio_ws_command("tests.cli_app:app") as server:
            assert server.url.startswith("http://127.0.0.1:")
            async with client(server) as first, client(server) as second:
                await greeted(first)
                await greeted(second)
                await echoes(first, "hello")
                await echoes(second, "world")
                await stop_and_check(server, signum, first, second)


async def test_serves_the_echo_example_as_the_tutorial_shows() -> None:
    """``python3 -m trio_ws examples.echo:app``: text and bytes come back, Ctrl+C drains."""
    with trio.fail_after(TIMEOUT):
        async with trio_ws_command("examples.echo:app") as server:
            async with client(server) as ws:
                await echoes(ws, "hello, trio-ws")
                await ws.send_message(b"\x00\xff")
                assert await ws.get_message() == b"\x00\xff"
                await stop_and_check(server, signal.SIGINT, ws)


async def test_readme_first_command_runs_the_chat_demo() -> None:
    """README's first set-up command, less the install, serves examples.chat; Ctrl+C drains."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```console\n", 1)[1].split("```", 1)[0].strip()
    install, command = block.split(" && ")
    assert install == "python3 -m pip install -e ."
    assert command == "python3 -m trio_ws examples.chat:app", "keep README and this test in step"
    with trio.fail_after(TIMEOUT):
        # As written (127.0.0.1, in memory), on a free port instead of 8000.
        async with trio_ws_command(*command.split()[3:]) as server:
            assert server.url.startswith("http://127.0.0.1:")
            async with httpx.AsyncClient() as http:
                page = await http.get(server.url + "/")
            assert page.status_code == 200
            assert "trio_ws chat" in page.text
            async with client(server, path="/ws/lobby?name=readme") as ws:
                assert json.loads(await ws.get_message())["event"] == "join"
                await ws.send_message("hello from the README")
                said = json.loads(await ws.get_message())
                assert (said["user"], said["text"]) == ("readme", "hello from the README")
                await stop_and_check(server, signal.SIGINT, ws)


@pytest.mark.parametrize(
    ("signum", "group"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGINT", "SIGTERM", "Ctrl+C to the process group"],
)
async def test_workers_share_the_socket_and_all_drain(signum: signal.Signals, group: bool) -> None:
    with trio.fail_after(TIMEOUT * 2):
        async with trio_ws_command("tests.cli_app:app", "--workers", "2") as server:
            # Both workers must be up: their "Running on" lines, one per process.
            await server.wait_for_log(rb"\[\d+\] \[INFO\] Running on", count=2)
            async with client(server) as first, client(server) as second:
                pids = {await greeted(first), await greeted(second)}
                await echoes(first, "one")
                await echoes(second, "two")
                assert server.process.pid not in pids  # served by worker processes
                await stop_and_check(server, signum, first, second, group=group)


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_tls(tmp_path: Path, workers: str) -> None:
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    context = ssl.create_default_context()
    authority.configure_trust(context)
    with trio.fail_after(TIMEOUT):
        async with trio_ws_command(
            "tests.cli_app:app",
            *("--certfile", str(certfile), "--keyfile", str(keyfile), "--workers", workers),
        ) as server:
            assert server.url.startswith("https://127.0.0.1:")
            async with client(server, context) as ws:
                await greeted(ws)
                await echoes(ws, "over TLS")
                await stop_and_check(server, signal.SIGTERM, ws)


async def test_drain_close_code_is_passed_to_serve() -> None:
    with trio.fail_after(TIMEOUT):
        async with trio_ws_command("tests.cli_app", "--drain-close-code", "1012") as server:
            async with client(server) as ws:
                await greeted(ws)
                server.process.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.get_message()
                assert closed.value.reason.code == 1012
            assert await server.process.wait() == 0


needs_pings = pytest.mark.skipif(
    "ping_interval" not in inspect.signature(trio_ws.serve).parameters,
    reason="this trio_ws.serve has no ping_interval",
)


@needs_pings
async def test_ping_interval_is_passed_to_serve() -> None:
    """A raw wsproto client that never pings sees the server's keepalive pings."""
    with trio.fail_after(TIMEOUT):
        async with trio_ws_command("tests.cli_app:app", "--ping-interval", "0.2") as server:
            host, _, port = server.authority.rpartition(":")
            stream = await trio.open_tcp_stream(host, int(port))
            try:
                connection = WSConnection(ConnectionType.CLIENT)
                await stream.send_all(connection.send(Request(host=server.authority, target="/")))
                seen: list[type] = []
                while Ping not in seen:
                    data = await stream.receive_some()
                    assert data, f"the server closed the connection; events: {seen}"
                    connection.receive_data(data)
                    seen += [type(event) for event in connection.events()]
                assert seen[0] is AcceptConnection
            finally:
                await trio.aclose_forcefully(stream)
            server.process.send_signal(signal.SIGTERM)
            assert await server.process.wait() == 0, server.text()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trio_ws", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_help_reads_like_hypercorns() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: trio-ws [-h]")
    assert "path.to.module:instance.path" in result.stdout
    for option in ("--host", "--port", "--certfile", "--keyfile", "--workers", "--drain-seconds"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_here:app", "cannot import module 'no_such_module_here'"),
        ("tests.cli_app:missing", "'tests.cli_app' has no attribute 'missing'"),
        ("tests.cli_app:not_an_app", "is not callable"),
    ],
)
def test_an_app_that_cannot_be_loaded_is_a_clear_error(target: str, message: str) -> None:
    result = run(target)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bare_handler_is_a_clear_error() -> None:
    result = run("tests.cli_app:handler")
    assert result.returncode == 1
    assert "trio_ws.websocket_app(handler)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_a_port_in_use_is_a_clear_error(workers: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with trio_ws_command("tests.cli_app:app") as server:
            port = server.authority.rpartition(":")[2]
            command = [sys.executable, "-m", "trio_ws", "tests.cli_app:app", "--port", port]
            result = await trio.run_process(
                [*command, "--workers", workers],
                cwd=ROOT,
                capture_stderr=True,
                check=False,
            )
            stderr = result.stderr.decode()
            assert result.returncode == 1, stderr
            assert f"cannot listen on 127.0.0.1 port {port}" in stderr
            assert "Traceback" not in stderr
            server.process.send_signal(signal.SIGTERM)
            assert await server.process.wait() == 0


def test_certfile_needs_keyfile() -> None:
    result = run("tests.cli_app:app", "--certfile", "cert.pem")
    assert result.returncode == 2
    assert "--certfile and --keyfile go together" in result.stderr


def test_the_console_script_runs() -> None:
    """The installed ``trio-ws`` script (in the package session; skipped in a checkout)."""
    script = Path(sys.executable).with_name("trio-ws")
    if not script.exists():
        pytest.skip("no trio-ws script next to this Python (trio_ws is not installed)")
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: trio-ws")


def test_every_option_is_documented() -> None:
    page = (ROOT / "docs" / "deploying.rst").read_text(encoding="utf-8")
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", run("--help").stdout)) - {"--help"}
    assert options
    assert sorted(option for option in options if f"``{option}" not in page) == []
