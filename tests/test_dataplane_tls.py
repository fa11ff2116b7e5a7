"""``trio_ws.serve``'s data plane over TLS (``wss://``, certificates from ``trustme``).

The same semantics as on plain TCP (``tests/test_dataplane.py``), through the stream data
plane: real clients (websockets, trio-websocket, aiohttp), a client that stops reading while
the app sends, one that vanishes without a close, a protocol error, permessage-deflate,
keepalive, the drain on shutdown, and peers that stall the TLS handshake. Real ``trio_ws.serve``
on 127.0.0.1; every wait is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
import struct
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trio
import trustme
import websockets.sync.client
from hypercorn.config import Config
from wsproto.events import CloseConnection, Ping, TextMessage

from tests.test_dataplane import RawClient, Recorder, closes, frame, serving
from tests.test_dataplane_deflate import assert_bomb_refused, small_limit
from tests.test_server import serving as stoppable
from tests.test_server_tls import server_config, trusting, wss_client
from trio_ws._dataplane import CLOSED_BY_KEY, DATAPLANE_EXTENSION

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def config(ca: trustme.CA, tmp_path: Path) -> Config:
    return server_config(ca, tmp_path, graceful_timeout=1.0)


@pytest.fixture
def context(ca: trustme.CA) -> ssl.SSLContext:
    return trusting(ca)


def upgrade(path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    ).encode()


async def assert_echo(address: str, context: ssl.SSLContext, text: str = "over tls") -> None:
    async with RawClient.connect(address, "/echo", ssl_context=context) as client:
        await client.send(TextMessage(data=text))
        assert (await client.events(until=TextMessage))[-1].data == text


# ---------------------------------------------------------------------------- echo


async def test_tls_takes_the_data_plane(config: Config, context: ssl.SSLContext) -> None:
    app = Recorder()
    async with serving(app, config) as address:
        await assert_echo(address, context, "héllo")
        assert app.scopes[0]["extensions"][DATAPLANE_EXTENSION] == {}
        receive = app.receives[0]
        assert getattr(receive, "__func__", None) is trio.MemoryReceiveChannel.receive
        assert await app.next() == {"type": "websocket.receive", "bytes": None, "text": "héllo"}
        assert await app.until_disconnect() == {"type": "websocket.disconnect", "code": 1006}


def _websockets_echo(address: str, context: ssl.SSLContext) -> list[str]:
    with websockets.sync.client.connect(f"wss://{address}/echo", ssl=context) as ws:
        got = []
        for i in range(20):
            ws.send("tls " * i * 1000)
            got.append(str(ws.recv(timeout=TIMEOUT)))
        ws.close(4002, "done")
        return got


def _aiohttp_echo(address: str, context: ssl.SSLContext) -> tuple[str, int | None]:
    async def talk() -> tuple[str, int | None]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"wss://{address}/echo", ssl=context) as ws:
                await ws.send_str("over tls")
                reply = await ws.receive(timeout=TIMEOUT)
                await ws.close(code=4003)
                result = reply.data, ws.close_code
        # aiohttp's documented graceful shutdown: let the TLS transport finish closing.
        await asyncio.sleep(0.25)
        return result

    return asyncio.run(asyncio.wait_for(talk(), 4 * TIMEOUT))


async def test_real_clients_echo(config: Config, context: ssl.SSLContext) -> None:
    app = Recorder()
    async with serving(app, config) as address:
        with trio.fail_after(4 * TIMEOUT):
            got = await trio.to_thread.run_sync(_websockets_echo, address, context)
        assert got == ["tls " * i * 1000 for i in range(20)]
        assert (await app.until_disconnect())["code"] == 4002
        with trio.fail_after(4 * TIMEOUT):
            reply, code = await trio.to_thread.run_sync(_aiohttp_echo, address, context)
        assert (reply, code) == ("over tls", 4003)
        assert (await app.until_disconnect())["code"] == 4003
        port = int(address.rsplit(":", 1)[1])
        async with wss_client(port, "/echo", context) as ws:
            with trio.fail_after(TIMEOUT):
                await ws.send_message(b"\x00" * 100_000)
                assert await ws.get_message() == b"\x00" * 100_000
        assert len(app.scopes) == 3
        assert all(DATAPLANE_EXTENSION in scope["extensions"] for scope in app.scopes)


async def test_permessage_deflate(config: Config, context: ssl.SSLContext) -> None:
    app = Recorder()

    def client(address: str) -> str:
        # The websockets client offers permessage-deflate by default.
        with websockets.sync.client.connect(f"wss://{address}/echo", ssl=context) as ws:
            assert ws.response is not None
            return str(ws.response.headers["Sec-WebSocket-Extensions"])

    async with serving(app, config) as address:
        with trio.fail_after(4 * TIMEOUT):
            assert "permessage-deflate" in await trio.to_thread.run_sync(client, address)
            assert await trio.to_thread.run_sync(_websockets_echo, address, context) == [
                "tls " * i * 1000 for i in range(20)
            ]
        assert all(DATAPLANE_EXTENSION in scope["extensions"] for scope in app.scopes)


# ---------------------------------------------------------------------------- closing


async def test_client_close_code_reaches_the_app(config: Config, context: ssl.SSLContext) -> None:
    app = Recorder()
    async with serving(app, config) as address:
        async with RawClient.connect(address, "/echo", ssl_context=context) as client:
            await client.send(CloseConnection(code=4000, reason="client bye"))
            assert closes(await client.events()) == [(4000, "client bye")]
            assert (await client.events(until=type(None)))[-1] is None  # the server closed
        disconnect = await app.until_disconnect()
        assert disconnect == {"type": "websocket.disconnect", "code": 4000, "reason": "client bye"}


async def test_protocol_error_closes_1002(config: Config, context: ssl.SSLContext) -> None:
    app = Recorder()
    async with serving(app, config) as address:
        async with RawClient.connect(address, "/echo", ssl_context=context) as client:
            await client.send_raw(frame(0x1, b"unmasked", mask=False))
            assert [code for code, _ in closes(await client.events())] == [1002]
            assert (await client.events(until=type(None)))[-1] is None
        disconnect = await app.until_disconnect()
        assert (disconnect["code"], disconnect[CLOSED_BY_KEY]) == (1002, "server")
        await assert_echo(address, context)  # still serving


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
async def test_a_client_that_vanishes(config: Config, context: ssl.SSLContext, reset: bool) -> None:
    app = Recorder()
    async with serving(app, config) as address:
        async with RawClient.connect(address, "/echo", ssl_context=context) as client:
            await client.send(TextMessage(data="then gone"))
            await client.events(until=TextMessage)
            transport = client.stream.transport_stream  # type: ignore[attr-defined]
            if reset:
                transport.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await trio.aclose_forcefully(transport)  # no close frame, no close_notify
        await app.next()
        assert await app.until_disconnect() == {"type": "websocket.disconnect", "code": 1006}
        await assert_echo(address, context)


async def test_ping_timeout_closes_1011(config: Config, context: ssl.SSLContext) -> None:
    app = Recorder()
    options = {"ping_interval": 0.2, "ping_timeout": 0.3}
    async with serving(app, config, **options) as address:
        async with RawClient.connect(address, "/echo", ssl_context=context) as client:
            disconnect = await app.until_disconnect()  # the client answers no ping
            assert (disconnect["code"], disconnect[CLOSED_BY_KEY]) == (1011, "server")
            events = await client.events()
            assert any(isinstance(e, Ping) for e in events)
            assert closes(events) == [(1011, "keepalive ping timeout")]
            assert (await client.events(until=type(None)))[-1] is None


async def test_drain_on_shutdown_closes_1001(config: Config, context: ssl.SSLContext) -> None:
    app = Recorder()
    async with stoppable(app, config=config) as running:
        address = running.urls[0].split("://", 1)[1]
        async with RawClient.connect(address, "/echo", ssl_context=context) as client:
            await client.send(TextMessage(data="before"))
            await client.events(until=TextMessage)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(running.stop)
                assert closes(await client.events()) == [(1001, "server shutting down")]
                await client.send(CloseConnection(code=1001))
                assert (await client.events(until=type(None)))[-1] is None
    assert DATAPLANE_EXTENSION in app.scopes[0]["extensions"]


# ---------------------------------------------------------------------------- stalls


async def _stalled_client(port: int, context: ssl.SSLContext, path: str) -> trio.SSLStream[Any]:
    """A TLS client with a tiny receive buffer that reads the 101 and then nothing more."""
    sock = trio.socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with trio.fail_after(TIMEOUT):
        await sock.connect(("127.0.0.1", port))
        stream = trio.SSLStream(trio.SocketStream(sock), context, server_hostname="127.0.0.1")
        await stream.send_all(upgrade(path))
        head = b""
        while b"\r\n\r\n" not in head:
            head += await stream.receive_some(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return stream


async def test_cancelled_send_to_a_stalled_reader_aborts(
    config: Config, context: ssl.SSLContext
) -> None:
    app = Recorder()
    async with serving(app, config) as address:
        port = int(address.rsplit(":", 1)[1])
        start = trio.current_time()
        stalled = await _stalled_client(port, context, "/stall")
        try:
            await assert_echo(address, context)  # others are served meanwhile
            with trio.fail_after(TIMEOUT):
                await app.after_done.wait()
            cancelled, _, when = app.results["stall"]
            assert cancelled
            assert when - start < 4.0
            assert isinstance(app.results["after"], OSError)
            seen = []  # the echo's messages, then the stalled connection's disconnect
            while (message := app.recv_ch.receive_nowait())["type"] != "websocket.disconnect" or (
                CLOSED_BY_KEY not in message
            ):
                seen.append(message)
            assert (message["code"], message[CLOSED_BY_KEY]) == (1006, "server")
            assert seen[-1] == {"type": "websocket.disconnect", "code": 1006}  # the echo's
            await assert_echo(address, context)
        finally:
            await trio.aclose_forcefully(stalled)


async def test_send_is_one_checkpoint_and_raises_after_close(
    config: Config, context: ssl.SSLContext
) -> None:
    app = Recorder()
    async with serving(app, config) as address:
        async with RawClient.connect(address, "/echo", ssl_context=context) as client:
            await client.send(CloseConnection(code=1000))
            await client.events()
        await app.until_disconnect()
        send = app.sends[0]
        with trio.CancelScope() as scope:
            scope.cancel()
            with pytest.raises(trio.Cancelled):
                await send({"type": "websocket.send", "text": "x", "bytes": None})
        with pytest.raises(OSError, match="closed"):
            await send({"type": "websocket.send", "text": "x", "bytes": None})


def _client_hello(context: ssl.SSLContext) -> bytes:
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname="x")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


async def test_stalled_tls_handshakes_hold_nothing_up(
    config: Config, context: ssl.SSLContext
) -> None:
    app = Recorder()
    peers = []
    async with stoppable(app, config=config) as running:
        address = running.urls[0].split("://", 1)[1]
        port = int(address.rsplit(":", 1)[1])
        hello = _client_hello(context)
        try:
            for part in (b"", hello[: len(hello) // 2]):  # silent; half a ClientHello
                peer = trio.socket.socket()
                peers.append(peer)
                with trio.fail_after(TIMEOUT):
                    await peer.connect(("127.0.0.1", port))
                    if part:
                        await peer.send(part)
            await assert_echo(address, context)
            elapsed = await running.stop()
        finally:
            for peer in peers:
                peer.close()
    # Hypercorn's shutdown cancels the handshakes after graceful_timeout (not its 60 s
    # ssl_handshake_timeout).
    assert elapsed < config.graceful_timeout + 1.5


async def test_a_decompression_bomb_gets_1009(config: Config, context: ssl.SSLContext) -> None:
    app = Recorder()
    async with serving(app, small_limit(config)) as address:
        await assert_bomb_refused(address, context)
        disconnect = await app.until_disconnect()
        assert (disconnect["code"], disconnect[CLOSED_BY_KEY]) == (1009, "server")
