"""``trio_ws.serve`` for the person running it: mistakes fail at once with a clear error, Ctrl+C
exits cleanly, and the ``trio_ws`` logger says what an operator needs to know.

Every wait is bounded by ``trio.fail_after``; the real clock runs (real sockets, processes).
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.hypercorn_harness import trio_websocket_client
from tests.test_server import assert_echo, make_app, serving
from trio_ws import WebSocket, serve, websocket_app
from trio_ws._worker import NEEDS_TRIO

TIMEOUT = 5.0
ROOT = Path(__file__).resolve().parent.parent


# -- mistakes ----------------------------------------------------------------------------------


async def test_a_bare_handler_is_refused_at_startup_with_the_fix() -> None:
    async def echo(ws: WebSocket) -> None:
        await ws.accept()

    with pytest.raises(TypeError, match=r"wrapped: trio_ws\.serve\(trio_ws\.websocket_app\(echo\)"):
        await serve(echo, port=0)  # type: ignore[arg-type]


async def test_an_asgi_app_object_with_a_call_method_is_accepted() -> None:
    app, _ = make_app()

    class App:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await app(scope, receive, send)

    async with serving(App()) as running:
        await assert_echo(running.ws)


async def test_a_config_dict_is_refused_with_the_fix() -> None:
    app, _ = make_app()
    with pytest.raises(TypeError, match=r"config must be a hypercorn\.Config, not dict"):
        await serve(app, config={"bind": ["127.0.0.1:0"]})  # type: ignore[arg-type]


# Hypercorn's Config.create_sockets leaves the socket whose bind failed unclosed (reaped here).
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_a_port_in_use_raises_a_plain_oserror() -> None:
    app, _ = make_app()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                try:
                    await nursery.start(
                        lambda task_status: serve(app, port=port, task_status=task_status)
                    )
                except OSError as exc:
                    caught = exc
        assert caught.errno == errno.EADDRINUSE
        assert f"127.0.0.1:{port}" in str(caught)
        # and without nursery.start
        with pytest.raises(OSError, match="binding") as info, trio.fail_after(TIMEOUT):
            await serve(app, port=port)
        assert info.type is OSError or issubclass(info.type, OSError)
    del caught, info  # their tracebacks hold Hypercorn's frame that holds the socket
    gc.collect()


def test_websocket_app_under_asyncio_says_it_needs_the_trio_worker() -> None:
    app = websocket_app(lambda ws: ws.accept())
    sent: list[dict[str, Any]] = []

    async def lifespan() -> None:
        messages = iter([{"type": "lifespan.startup"}])

        async def receive() -> dict[str, Any]:
            return next(messages)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app({"type": "lifespan"}, receive, send)
        with pytest.raises(RuntimeError, match="needs Hypercorn's trio worker"):
            await app({"type": "websocket"}, receive, send)

    asyncio.run(lifespan())
    assert sent == [{"type": "lifespan.startup.failed", "message": NEEDS_TRIO}]


def test_hypercorn_without_k_trio_does_not_start_and_says_why() -> None:
    """The real thing: ``hypercorn examples.echo:app`` (the asyncio worker) stops at startup."""
    result = subprocess.run(
        [sys.executable, "-m", "hypercorn", "--bind", "127.0.0.1:0", "examples.echo:app"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "trio_ws needs Hypercorn's trio worker" in result.stderr
    assert "hypercorn -k trio module:app" in result.stderr


# -- what the operator reads ---------------------------------------------------------------------


async def test_the_log_says_where_it_serves_and_how_the_drain_went(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, probe = make_app()
    with caplog.at_level(logging.INFO, logger="trio_ws"):
        async with serving(app) as running:
            url = running.urls[0]
            async with trio_websocket_client(running.ws + "/hold") as ws:
                with trio.fail_after(TIMEOUT):
                    assert await ws.get_message() == "ready"
                await running.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "trio_ws"]
    assert lines[0] == f"trio_ws.serve: serving on {url}"
    assert "closing 1 WebSocket session(s) with 1001" in lines[1]
    assert lines[2].startswith("trio_ws.serve: drain done in ")
    assert probe.lifespan == ["startup", "shutdown"]


async def test_on_an_unchecked_hypercorn_serve_falls_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another Hypercorn version: no hooks, plain ``hypercorn.trio.serve``, one warning; the
    app is served and the drain by cancellation still closes sessions with 1001."""
    from trio_ws import _internals

    monkeypatch.setattr(_internals, "hypercorn_version", lambda: (0, 99))
    monkeypatch.setattr(_internals, "_PROBLEM", None)
    monkeypatch.setattr(_internals, "_WARNED", False)
    app, probe = make_app()
    with caplog.at_level(logging.WARNING, logger="trio_ws"):
        async with serving(app) as running:
            await assert_echo(running.ws)
            async with trio_websocket_client(running.ws + "/hold") as ws:
                with trio.fail_after(TIMEOUT):
                    assert await ws.get_message() == "ready"
                await running.stop()
                closed = await _closed(ws)
    assert closed == (1001, "server shutting down")
    warnings = [r.getMessage() for r in caplog.records if r.name == "trio_ws"]
    assert len(warnings) == 1
    assert "Hypercorn 0.99 is not a checked version" in warnings[0]
    assert probe.lifespan == ["startup", "shutdown"]


async def _closed(ws: Any) -> tuple[int, str]:
    from trio_websocket import ConnectionClosed

    with pytest.raises(ConnectionClosed) as info, trio.fail_after(TIMEOUT):
        await ws.get_message()
    reason = info.value.reason
    assert reason is not None
    return reason.code, reason.reason or ""
