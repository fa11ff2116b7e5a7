"""The example apps, served by real Hypercorn (trio worker) and driven by a real client.

Real sockets on 127.0.0.1, so the real clock: every test is bounded by `trio.fail_after`.
"""

from __future__ import annotations

import functools
import importlib
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import hypercorn
import hypercorn.trio
import pytest
import trio
from trio_websocket import open_websocket_url

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ["examples.echo", "examples.starlette_style"]


@asynccontextmanager
async def serve_with_hypercorn(module_name: str) -> AsyncIterator[str]:
    """Serve ``module_name:app`` on a free port; yield its ``ws://`` URL; shut down on exit."""
    app = importlib.import_module(module_name).app
    config = hypercorn.Config()
    config.bind = ["127.0.0.1:0"]
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(
            functools.partial(hypercorn.trio.serve, app, config, shutdown_trigger=shutdown.wait)
        )
        try:
            yield urls[0].replace("http://", "ws://", 1) + "/"
        finally:
            shutdown.set()


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


async def test_readme_demo_command_serves_the_echo_example() -> None:
    """README's demo runs ``python3 -m hypercorn -k trio --bind ... examples.echo:app``."""
    command = [sys.executable, "-m", "hypercorn", "-k", "trio"]
    command += ["--bind", "127.0.0.1:0", "examples.echo:app"]
    with trio.fail_after(10):
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
            log = b""
            while (match := re.search(rb"Running on (http://\S+)", log)) is None:
                chunk = await process.stderr.receive_some()
                assert chunk, f"hypercorn exited before serving:\n{log.decode(errors='replace')}"
                log += chunk
            url = match.group(1).decode().replace("http://", "ws://", 1) + "/"
            await assert_echoes_text_and_bytes(url)
            # Cancelling run_process terminates hypercorn (SIGTERM, graceful shutdown).
            nursery.cancel_scope.cancel()
