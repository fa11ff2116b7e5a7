"""``trio_ws.serve``: bound URLs, the drain on shutdown, stalled readers, client close codes and
the permessage-deflate switch, against real sockets on 127.0.0.1 and real clients.

Every wait is bounded by ``trio.fail_after``; the real clock runs (real sockets).
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import websockets.exceptions
import websockets.sync.client
from trio_websocket import ConnectionClosed
from wsproto.events import CloseConnection, TextMessage
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason

from tests.hypercorn_harness import hypercorn_server, trio_websocket_client, ws_connect
from trio_ws import WebSocket, WebSocketDisconnect, serve, websocket_app
from trio_ws._types import Receive, Scope, Send

TIMEOUT = 5.0
BIG = b"x" * (1 << 20)


@dataclass
class Probe:
    """What the test app saw: lifespan events, client disconnects, the stalled sender's sends."""

    lifespan: list[str] = field(default_factory=list)
    disconnects: tuple[trio.MemorySendChannel[Any], trio.MemoryReceiveChannel[Any]] = field(
        default_factory=lambda: trio.open_memory_channel[Any](100)
    )
    holding: trio.Event = field(default_factory=trio.Event)
    sends_started: int = 0
    sends_done: int = 0
    #: Per accepted WebSocket: whether serve's data plane carried it (its scope extension).
    data_plane: list[bool] = field(default_factory=list)

    async def next_disconnect(self) -> tuple[int, str]:
        with trio.fail_after(TIMEOUT):
            return await self.disconnects[1].receive()  # type: ignore[no-any-return]


def make_app() -> tuple[Any, Probe]:
    probe = Probe()

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        probe.data_plane.append("trio_ws.dataplane" in (ws.scope.get("extensions") or {}))
        path = ws.url.path
        if path == "/echo":
            async for text in ws.iter_text():
                await ws.send_text(text)
        elif path == "/hold":
            await ws.send_text("ready")
            probe.holding.set()
            await trio.sleep_forever()
        elif path == "/wait":
            await ws.send_text("ready")
            try:
                while True:
                    await ws.receive_text()
            except WebSocketDisconnect as exc:
                probe.disconnects[0].send_nowait((exc.code, exc.reason or ""))
                raise
        elif path == "/flood":
            while True:
                probe.sends_started += 1
                await ws.send_bytes(BIG)
                probe.sends_done += 1

    inner = websocket_app(handler)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await inner(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                probe.lifespan.append("startup")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                probe.lifespan.append("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return

    return app, probe


@dataclass
class Running:
    urls: list[str]
    scope: trio.CancelScope
    done: trio.Event

    @property
    def ws(self) -> str:
        return self.urls[0].replace("http://", "ws://", 1)

    async def stop(self) -> float:
        """Cancel the serve task; return how long it took to return."""
        start = trio.current_time()
        self.scope.cancel()
        with trio.fail_after(TIMEOUT + 3):
            await self.done.wait()
        return trio.current_time() - start


@asynccontextmanager
async def serving(app: Any, **options: Any) -> AsyncIterator[Running]:
    scope = trio.CancelScope()
    done = trio.Event()

    async def run(*, task_status: trio.TaskStatus[list[str]]) -> None:
        try:
            with scope:
                if "config" not in options:
                    options.setdefault("port", 0)
                await serve(app, task_status=task_status, **options)
        finally:
            done.set()

    async with trio.open_nursery() as nursery:
        with trio.fail_after(TIMEOUT):
            urls = await nursery.start(run)
        running = Running(urls, scope, done)
        try:
            yield running
        finally:
            scope.cancel()


async def assert_echo(url: str) -> None:
    """The server still serves: a fresh connection echoes."""
    async with trio_websocket_client(url + "/echo") as ws:
        with trio.fail_after(TIMEOUT):
            await ws.send_message("still there?")
            assert await ws.get_message() == "still there?"


def websockets_close(url: str, compression: str | None) -> list[str]:
    with websockets.sync.client.connect(
        url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, proxy=None, compression=compression
    ) as ws:
        assert ws.recv(timeout=TIMEOUT) == "ready"
        extensions = [type(e).__name__ for e in ws.protocol.extensions]
        ws.close(4000, "bye")
    return extensions


def websockets_wait_close(url: str) -> tuple[int, str, float]:
    """Connect, then wait for the server to close; return its code, reason, and when."""
    with websockets.sync.client.connect(
        url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, proxy=None
    ) as ws:
        assert ws.recv(timeout=TIMEOUT) == "ready"
        with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
            ws.recv(timeout=TIMEOUT)
    received = info.value.rcvd
    assert received is not None
    return received.code, received.reason, time.monotonic()


# -- serving and shutting down -----------------------------------------------------------------


async def test_serve_reports_bound_urls_with_port_0_and_serves() -> None:
    app, probe = make_app()
    async with serving(app) as running:
        assert len(running.urls) == 1
        assert running.urls[0].startswith("http://127.0.0.1:")
        assert int(running.urls[0].rsplit(":", 1)[1]) > 0
        assert probe.lifespan == ["startup"]
        await assert_echo(running.ws)
        await running.stop()
    assert probe.lifespan == ["startup", "shutdown"]


async def test_host_port_and_config_are_exclusive() -> None:
    import hypercorn

    app, _ = make_app()
    with pytest.raises(TypeError, match="not both"):
        await serve(app, port=0, config=hypercorn.Config())
    with pytest.raises(ValueError, match="cannot be sent"):
        await serve(app, port=0, drain_close_code=1006)


@pytest.mark.parametrize("code", [None, 1012, 4000])
async def test_cancelling_serve_drains_sessions_with_the_drain_code(code: int | None) -> None:
    app, probe = make_app()
    options = {} if code is None else {"drain_close_code": code}
    async with serving(app, **options) as running:
        async with trio_websocket_client(running.ws + "/hold") as ws:
            with trio.fail_after(TIMEOUT):
                assert await ws.get_message() == "ready"
            elapsed = await running.stop()
            with pytest.raises(ConnectionClosed) as info, trio.fail_after(TIMEOUT):
                await ws.get_message()
    closed = info.value.reason
    assert closed is not None
    assert (closed.code, closed.reason) == (code or 1001, "server shutting down")
    # Far below graceful_timeout (3 s) + the session's close_timeout: nothing waited for them.
    assert elapsed < 1.0
    assert probe.lifespan == ["startup", "shutdown"]


async def test_drain_reaches_a_websockets_client_quickly() -> None:
    app, probe = make_app()
    result: list[tuple[int, str, float]] = []
    async with serving(app) as running, trio.open_nursery() as nursery:

        async def client() -> None:
            url = running.ws + "/hold"
            result.append(await trio.to_thread.run_sync(websockets_wait_close, url))

        nursery.start_soon(client)
        with trio.fail_after(TIMEOUT):
            await probe.holding.wait()
        stopped_at = time.monotonic()
        await running.stop()
    code, reason, closed_at = result[0]
    assert (code, reason) == (1001, "server shutting down")
    assert closed_at - stopped_at < 1.0


async def test_stalled_reader_does_not_block_shutdown() -> None:
    app, probe = make_app()
    async with serving(app, drain_seconds=0.5) as running:
        host, port = running.urls[0].removeprefix("http://").rsplit(":", 1)
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        with sock:
            with trio.fail_after(TIMEOUT):
                await sock.connect((host, int(port)))
                await sock.send(
                    b"GET /flood HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    b"Sec-WebSocket-Version: 13\r\n\r\n"
                )
                head = b""
                while b"\r\n\r\n" not in head:
                    head += await sock.recv(1)
            assert head.startswith(b"HTTP/1.1 101")
            # Never read again. Wait until the app's send has been stuck for a while.
            with trio.fail_after(TIMEOUT):
                stuck_since = None
                while True:
                    if probe.sends_started > probe.sends_done:
                        if stuck_since is None or stuck_since[0] != probe.sends_done:
                            stuck_since = (probe.sends_done, trio.current_time())
                        elif trio.current_time() - stuck_since[1] > 0.3:
                            break
                    await trio.sleep(0.02)  # the real clock has to pass to see it stuck
            await assert_echo(running.ws)
            elapsed = await running.stop()
    assert elapsed < 0.5 + 1.0
    assert probe.lifespan == ["startup", "shutdown"]


# -- client close codes --------------------------------------------------------------------------


async def test_client_close_code_reaches_the_app_trio_websocket() -> None:
    app, probe = make_app()
    async with serving(app) as running:
        async with trio_websocket_client(running.ws + "/wait") as ws:
            with trio.fail_after(TIMEOUT):
                assert await ws.get_message() == "ready"
                await ws.aclose(4000, "bye")
        assert await probe.next_disconnect() == (4000, "bye")
        await assert_echo(running.ws)


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_client_close_code_reaches_the_app_websockets(compression: str | None) -> None:
    app, probe = make_app()
    async with serving(app) as running:
        extensions = await trio.to_thread.run_sync(
            websockets_close, running.ws + "/wait", compression
        )
        assert extensions == (["PerMessageDeflate"] if compression else [])
        assert await probe.next_disconnect() == (4000, "bye")
        await assert_echo(running.ws)


@pytest.mark.parametrize("deflate", [True, False])
async def test_codeless_close_is_1005_and_dropped_connection_is_1006(deflate: bool) -> None:
    app, probe = make_app()
    extensions = [PerMessageDeflate()] if deflate else []
    async with serving(app) as running:
        async with ws_connect(running.ws + "/wait", extensions=extensions) as client:
            assert client.accepted is not None
            assert bool(client.accepted.extensions) is deflate
            assert await client.receive_event() == TextMessage(data="ready")
            await client.send_event(CloseConnection(code=CloseReason.NO_STATUS_RCVD))  # no code
            assert isinstance(await client.receive_event(), CloseConnection)
        assert await probe.next_disconnect() == (1005, "")
        async with ws_connect(running.ws + "/wait", extensions=extensions) as client:
            assert await client.receive_event() == TextMessage(data="ready")
            await client.abort()
        assert await probe.next_disconnect() == (1006, "")
        await assert_echo(running.ws)


async def test_plain_hypercorn_still_reports_1006_for_a_client_close() -> None:
    """The close-code remedy is scoped to ``trio_ws.serve``: plain Hypercorn is untouched,
    even in a process where ``trio_ws.serve`` runs at the same time."""
    app, probe = make_app()
    async with serving(app) as running, hypercorn_server(app) as plain_url:
        async with ws_connect(plain_url + "/wait") as client:
            assert await client.receive_event() == TextMessage(data="ready")
            await client.close(4000, "bye")
            assert isinstance(await client.receive_event(), CloseConnection)
        assert await probe.next_disconnect() == (1006, "")
        async with ws_connect(running.ws + "/wait") as client:
            assert await client.receive_event() == TextMessage(data="ready")
            await client.close(4000, "bye")
            assert isinstance(await client.receive_event(), CloseConnection)
        assert await probe.next_disconnect() == (4000, "bye")


async def test_fix_client_close_codes_can_be_turned_off() -> None:
    app, probe = make_app()
    async with serving(app, fix_client_close_codes=False) as running:
        async with ws_connect(running.ws + "/wait") as client:
            assert await client.receive_event() == TextMessage(data="ready")
            await client.close(4000, "bye")
            assert isinstance(await client.receive_event(), CloseConnection)
        assert await probe.next_disconnect() == (1006, "")


# -- permessage-deflate --------------------------------------------------------------------------


@pytest.mark.parametrize("enabled", [True, False])
async def test_permessage_deflate_switch(enabled: bool) -> None:
    app, _ = make_app()
    async with serving(app, permessage_deflate=enabled) as running:
        async with ws_connect(running.ws + "/echo", extensions=[PerMessageDeflate()]) as client:
            assert client.accepted is not None
            assert bool(client.accepted.extensions) is enabled
            await client.send_text("squeeze " * 100)
            assert await client.receive_event() == TextMessage(data="squeeze " * 100)
        # The websockets client offers it by default and copes either way.
        extensions = await trio.to_thread.run_sync(
            websockets_close, running.ws + "/wait", "deflate"
        )
        assert extensions == (["PerMessageDeflate"] if enabled else [])
