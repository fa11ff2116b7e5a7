"""The example apps, served by real Hypercorn (trio worker) and driven by a real client.

Real sockets on 127.0.0.1, so the real clock: every test is bounded by `trio.fail_after`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from trio_websocket import open_websocket_url

from tests.server_log import ServerLog
from trio_ws.testing import open_server

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ["examples.echo", "examples.starlette_style"]


@asynccontextmanager
async def serve_with_hypercorn(module_name: str) -> AsyncIterator[str]:
    """Serve ``module_name:app`` on a free port; yield its ``ws://`` URL; shut down on exit."""
    async with open_server(importlib.import_module(module_name).app) as server:
        yield server.ws_url + "/"


async def assert_echoes_text_and_bytes(url: str) -> None:
    async with open_websocket_url(url) as ws:
        await ws.send_message("hello, trio_ws")
        assert await ws.get_message() == "hello, trio_ws"
        await ws.send_message(b"\x00\x01\xfe\xff")
        assert await ws.get_message() == b"\x00\x01\xfe\xff"
        await ws.send_message("")
        assert await ws.get_message() == ""
        # Several in flight: order is kept.
        for i in range(5):
            await ws.send_message(f"message {i}")
        assert [await ws.get_message() for _ in range(5)] == [f"message {i}" for i in range(5)]


@pytest.mark.parametrize("module_name", EXAMPLES)
async def test_example_echoes_text_as_text_and_bytes_as_bytes(module_name: str) -> None:
    with trio.fail_after(10):
        async with serve_with_hypercorn(module_name) as url:
            await assert_echoes_text_and_bytes(url)


@pytest.mark.parametrize("module_name", EXAMPLES)
async def test_example_serves_clients_one_after_another_and_concurrently(module_name: str) -> None:
    with trio.fail_after(10):
        async with serve_with_hypercorn(module_name) as url:
            await assert_echoes_text_and_bytes(url)
            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(assert_echoes_text_and_bytes, url)


async def read_all(stream: trio.abc.ReceiveStream, chunks: list[bytes]) -> None:
    """Append everything ``stream`` gives to ``chunks`` until it ends."""
    with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
        while chunk := await stream.receive_some():
            chunks.append(chunk)


async def test_readme_demo_command_serves_the_echo_example(server_log: ServerLog) -> None:
    """README's demo runs ``python3 -m hypercorn -k trio --bind ... examples.echo:app``."""
    command = [sys.executable, "-m", "hypercorn", "-k", "trio"]
    command += ["--bind", "127.0.0.1:0", "examples.echo:app"]
    chunks: list[bytes] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as reader:
            async with trio.open_nursery() as nursery:
                process: trio.Process = await nursery.start(
                    functools.partial(
                        trio.run_process,
                        command,
                        cwd=ROOT,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                        check=False,
                    )
                )
                assert process.stderr is not None
                reader.start_soon(read_all, process.stderr, chunks)
                while (match := re.search(rb"Running on (http://\S+)", b"".join(chunks))) is None:
                    assert process.returncode is None, "hypercorn exited before serving:\n" + (
                        b"".join(chunks).decode(errors="replace")
                    )
                    await trio.sleep(0.01)
                url = match.group(1).decode().replace("http://", "ws://", 1) + "/"
                await assert_echoes_text_and_bytes(url)
                # Cancelling run_process terminates hypercorn (SIGTERM, graceful shutdown).
                nursery.cancel_scope.cancel()
    # Everything hypercorn wrote, to its exit, is checked for tracebacks at teardown.
    server_log.check_text(b"".join(chunks), "hypercorn's stderr")
