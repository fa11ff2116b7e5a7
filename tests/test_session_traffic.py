"""The session core under real traffic (issue 7): real Hypercorn, ``trio_ws.serve``, real clients
(``websockets``, trio-websocket) and raw sockets.

Each test is one member of a kind: a send loop that must not wedge the process whatever ends the
conversation (the client's close, an oversize message, a protocol error), a client that
pipelines, message shapes, bad arguments, and exits before accept.
"""

from __future__ import annotations

import base64
import functools
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import websockets.exceptions
import websockets.sync.client
from hypercorn.config import Config
from trio_websocket import open_websocket_url

import trio_ws
from trio_ws import WebSocket, WebSocketMessageTypeError
from trio_ws.testing import open_server

TIMEOUT = 10


def _quiet_config(**overrides: Any) -> Config:
    config = Config()
    config.graceful_timeout = 1
    config.accesslog = None
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


@asynccontextmanager
async def hypercorn(app: Any, **config: Any) -> AsyncIterator[str]:
    """Plain Hypercorn (trio worker) on a free port; yields a ws:// base URL."""
    async with open_server(app, config=_quiet_config(**config)) as live:
        yield live.ws_url


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """trio_ws.serve on a free port; yields a ws:// base URL."""
    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(
            functools.partial(trio_ws.serve, app, host="127.0.0.1", port=0)
        )
        yield urls[0].replace("http://", "ws://")
        nursery.cancel_scope.cancel()


SERVERS: dict[str, Callable[[Any], Any]] = {"hypercorn": hypercorn, "serve": served}


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> Callable[[Any], Any]:
    return SERVERS[request.param]


async def echo_once(url: str) -> None:
    """A probe client: the server still serves others."""
    with trio.fail_after(TIMEOUT):
        async with open_websocket_url(url) as ws:
            await ws.send_message("probe")
            assert await ws.get_message() == "probe"


# ---------------------------------------------------------------- 1. a send loop never wedges


def ticker_app() -> tuple[Any, list[WebSocket], trio.Event]:
    """The issue's ticker: a tight send loop under cancel_on_disconnect, plus an echo route."""
    ended: list[WebSocket] = []
    done = trio.Event()

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        if ws.url.path == "/echo":
            async for text in ws.iter_text():
                await ws.send_text(text)
            return
        try:
            with ws.cancel_on_disconnect():
                while True:
                    await ws.send_bytes(b"x" * 1000)
        finally:
            ended.append(ws)
            done.set()

    return trio_ws.websocket_app(handler), ended, done


def _read_then_close(url: str, reads: int) -> int | None:
    # max_queue=None: the client keeps reading while it closes. With its default of 16 queued
    # messages it stops reading the socket, and the server's close reply waits behind the
    # data the server sent before it, until the client's close timeout.
    with websockets.sync.client.connect(
        url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_queue=None
    ) as ws:
        for _ in range(reads):
            ws.recv(timeout=TIMEOUT)
        ws.close()
        received = ws.protocol.close_rcvd
        return None if received is None else received.code


async def test_send_loop_ends_when_the_client_closes(server: Callable[[Any], Any]) -> None:
    app, ended, done = ticker_app()
    async with server(app) as url:
        with trio.fail_after(TIMEOUT * 2):
            reply = await trio.to_thread.run_sync(_read_then_close, url + "/tick", 10)
            # Before issue 7 the client's close got no reply, the handler never ended and the
            # process served nobody.
            assert reply == 1000, "the client's close got no reply: the process is wedged"
            await done.wait()
        await echo_once(url + "/echo")
    assert ended[0].closed_by == "client"


def _send_oversize(url: str) -> int | None:
    with websockets.sync.client.connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        ws.recv(timeout=TIMEOUT)
        ws.send(b"y" * 5000)
        try:
            while True:
                ws.recv(timeout=TIMEOUT)
        except websockets.exceptions.ConnectionClosed as exc:
            return None if exc.rcvd is None else exc.rcvd.code


async def test_send_loop_ends_after_an_oversize_message() -> None:
    app, _ended, done = ticker_app()
    async with hypercorn(app, websocket_max_message_size=1000) as url:
        code = await trio.to_thread.run_sync(_send_oversize, url + "/tick")
        assert code == 1009
        with trio.fail_after(TIMEOUT):
            await done.wait()
        await echo_once(url + "/echo")


def _raw_handshake(host: str, port: int, path: str) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_send_loop_ends_after_a_protocol_error(server: Callable[[Any], Any]) -> None:
    app, _ended, done = ticker_app()
    async with server(app) as url:
        host, port = url.removeprefix("ws://").rsplit(":", 1)

        def unmasked_frame() -> None:
            sock = _raw_handshake(host, int(port), "/tick")
            with sock:
                sock.recv(4096)
                sock.sendall(b"\x81\x02hi")  # a client frame must be masked (RFC 6455 5.1)
                try:
                    while sock.recv(65536):
                        pass
                except OSError:
                    pass

        await trio.to_thread.run_sync(unmasked_frame)
        with trio.fail_after(TIMEOUT):
            await done.wait()
        await echo_once(url + "/echo")


# ---------------------------------------------------------------- 2. pipelining


async def readme_echo(ws: WebSocket) -> None:
    await ws.accept()
    async for text in ws.iter_text():
        await ws.send_text(text)


def _pipeline(url: str, count: int) -> list[str]:
    with websockets.sync.client.connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        for i in range(count):
            ws.send(f"m{i}")
        return [str(ws.recv(timeout=TIMEOUT)) for _ in range(count)]


async def test_pipelining_client_gets_every_echo_and_no_1008(
    server: Callable[[Any], Any],
) -> None:
    async with server(trio_ws.websocket_app(readme_echo)) as url:
        echoes = await trio.to_thread.run_sync(_pipeline, url, 300)
    assert echoes == [f"m{i}" for i in range(300)]


async def test_pipelining_trio_websocket_client_with_several_answers_per_message(
    server: Callable[[Any], Any],
) -> None:
    async def fanout(ws: WebSocket) -> None:
        await ws.accept()
        async for text in ws.iter_text():
            for k in range(3):
                await ws.send_text(f"{text}.{k}")

    async with server(trio_ws.websocket_app(fanout)) as url:
        with trio.fail_after(TIMEOUT * 3):
            async with open_websocket_url(url, max_message_size=1 << 20) as ws:

                async def send_all() -> None:
                    for i in range(500):
                        await ws.send_message(str(i))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(send_all)
                    got = [await ws.get_message() for _ in range(1500)]
    assert got == [f"{i}.{k}" for i in range(500) for k in range(3)]


# ---------------------------------------------------------------- 3 and 4. shapes and arguments


async def test_hypercorn_message_shapes_and_bad_payloads_give_clear_errors(
    server: Callable[[Any], Any],
) -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.receive_json()  # the client sends a binary frame
        except WebSocketMessageTypeError as exc:
            await ws.send_text(type(exc).__name__)
        try:
            await ws.send_bytes("text")  # type: ignore[arg-type]
        except TypeError as exc:
            await ws.send_text(f"TypeError: {exc}")
        await ws.send_text(await ws.receive_text())

    async with server(trio_ws.websocket_app(handler)) as url:
        with trio.fail_after(TIMEOUT):
            async with open_websocket_url(url) as ws:
                await ws.send_message(b'{"a": 1}')
                assert await ws.get_message() == "WebSocketMessageTypeError"
                assert (await ws.get_message()).startswith("TypeError: send_bytes() needs bytes")
                await ws.send_message("still open")
                assert await ws.get_message() == "still open"


# ---------------------------------------------------------------- 5. exits before accept


def _status_of(url: str) -> int:
    try:
        with websockets.sync.client.connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT):
            return 101
    except websockets.exceptions.InvalidStatus as exc:
        return exc.response.status_code


@pytest.mark.parametrize(("path", "status"), [("/return", 403), ("/refuse", 403), ("/error", 500)])
async def test_exit_before_accept_answers_its_status(
    path: str, status: int, server: Callable[[Any], Any]
) -> None:
    async def handler(ws: WebSocket) -> None:
        if ws.url.path == "/refuse":
            raise trio_ws.WebSocketException(4000, "no")
        if ws.url.path == "/error":
            raise RuntimeError("expected in this test: an error before accept")

    async with server(trio_ws.websocket_app(handler)) as url:
        assert await trio.to_thread.run_sync(_status_of, url + path) == status


async def test_shutdown_before_accept_answers_503_not_a_permanent_403() -> None:
    waiting = trio.Event()

    async def handler(ws: WebSocket) -> None:
        waiting.set()
        await trio.sleep_forever()  # still deciding when the server shuts down

    statuses: list[int] = []
    async with trio.open_nursery() as outer:
        async with trio.open_nursery() as nursery:
            urls: list[str] = await nursery.start(
                functools.partial(
                    trio_ws.serve, trio_ws.websocket_app(handler), host="127.0.0.1", port=0
                )
            )
            url = urls[0].replace("http://", "ws://")

            async def client() -> None:
                statuses.append(await trio.to_thread.run_sync(_status_of, url))

            outer.start_soon(client)
            with trio.fail_after(TIMEOUT):
                await waiting.wait()
            nursery.cancel_scope.cancel()  # shut the server down
    assert statuses == [503]
