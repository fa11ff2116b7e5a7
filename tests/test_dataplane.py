"""The data plane of ``trio_ws.serve``: server-close codes seen by the client and the app, the
client's close codes, keepalive, cancelled sends to stalled readers, the ASGI contracts, TLS.

Real ``trio_ws.serve`` on 127.0.0.1, raw-socket clients built on wsproto's client side (so
hostile frames can be sent), and real clients. Every wait is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import base64
import os
import random
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import websockets.sync.client
from hypercorn.config import Config
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.frame_protocol import FrameProtocol

from tests.hypercorn_harness import trio_websocket_client
from trio_ws import serve
from trio_ws._dataplane import CLOSED_BY_KEY, DATAPLANE_EXTENSION, _header
from trio_ws._types import Receive, Scope, Send

TIMEOUT = 5.0


# ---------------------------------------------------------------------------- the test app


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """A raw app's lifespan: complete startup and shutdown."""
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


class Recorder:
    """A raw ASGI app that records what it sees; its behaviour is chosen by the path."""

    def __init__(self) -> None:
        self.send_ch, self.recv_ch = trio.open_memory_channel[Any](1000)
        self.scopes: list[Scope] = []
        self.receives: list[Receive] = []
        self.sends: list[Send] = []
        self.results: dict[str, Any] = {}
        self.after_done = trio.Event()

    async def next(self) -> Any:
        with trio.fail_after(TIMEOUT):
            return await self.recv_ch.receive()

    async def until_disconnect(self) -> dict[str, Any]:
        while True:
            message = await self.next()
            if message["type"] == "websocket.disconnect":
                return message  # type: ignore[no-any-return]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "websocket":
            return
        self.scopes.append(scope)
        self.receives.append(receive)
        self.sends.append(send)
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        path = scope["path"]
        if path == "/stall":
            await self._stall(receive, send)
            return
        if path == "/push":
            await send({"type": "websocket.send", "text": "ready", "bytes": None})
        while True:
            message = await receive()
            self.send_ch.send_nowait(message)
            if message["type"] == "websocket.disconnect":
                return
            try:
                if path == "/echo":
                    data = {k: message[k] for k in ("bytes", "text")}
                    await send({"type": "websocket.send", **data})
                elif path == "/close":
                    await send({"type": "websocket.close", "code": 4001, "reason": "app says bye"})
            except OSError:
                pass  # the server closed meanwhile; its disconnect message follows

    async def _stall(self, receive: Receive, send: Send) -> None:
        """Send 1 MiB messages, each under a 1 s deadline, to a client that does not read."""
        cancelled = 0
        sent = 0
        with trio.move_on_after(TIMEOUT * 2):
            while not cancelled:
                with trio.move_on_after(1.0) as scope:
                    await send({"type": "websocket.send", "bytes": b"x" * (1 << 20), "text": None})
                    sent += 1
                cancelled = scope.cancelled_caught
        self.results["stall"] = (cancelled, sent, trio.current_time())
        self.send_ch.send_nowait(await receive())
        try:
            await send({"type": "websocket.send", "text": "after", "bytes": None})
        except OSError as exc:
            self.results["after"] = exc
        self.after_done.set()


@asynccontextmanager
async def serving(app: Any, config: Config | None = None, **options: Any) -> AsyncIterator[str]:
    """Run ``trio_ws.serve``; yield ``host:port``."""
    if config is not None:
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
    async with trio.open_nursery() as nursery:
        with trio.fail_after(TIMEOUT):
            if config is None:
                urls = await nursery.start(lambda **kw: serve(app, port=0, **options, **kw))
            else:
                urls = await nursery.start(lambda **kw: serve(app, config=config, **options, **kw))
        yield urls[0].split("://", 1)[1]
        nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------------- a raw client


class RawClient:
    """A WebSocket client on a trio socket: wsproto's client side plus hand-made frames."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.ws = Connection(ConnectionType.CLIENT)

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        address: str,
        path: str = "/",
        *,
        ssl_context: ssl.SSLContext | None = None,
        headers: bytes = b"",
    ) -> AsyncIterator[RawClient]:
        """Connect (over TLS with ``ssl_context``), send the upgrade request with ``headers``
        added (whole lines), and check the 101."""
        host, port = address.rsplit(":", 1)
        stream: trio.abc.Stream
        if ssl_context is None:
            stream = await trio.open_tcp_stream(host, int(port))
        else:
            stream = await trio.open_ssl_over_tcp_stream(host, int(port), ssl_context=ssl_context)
        async with cls.upgrade(stream, address, path, headers=headers) as client:
            yield client

    @classmethod
    @asynccontextmanager
    async def upgrade(
        cls, stream: trio.abc.Stream, address: str, path: str = "/", *, headers: bytes = b""
    ) -> AsyncIterator[RawClient]:
        """Send the upgrade request on a connected ``stream``, check the 101; the client on it
        (the stream is closed at the end)."""
        try:
            key = base64.b64encode(os.urandom(16))
            request = (
                (
                    f"GET {path} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                ).encode()
                + b"Sec-WebSocket-Key: "
                + key
                + b"\r\n"
                + headers
            )
            await stream.send_all(request + b"\r\n")
            head = b""
            with trio.fail_after(TIMEOUT):
                while b"\r\n\r\n" not in head:
                    chunk = await stream.receive_some(65536)
                    assert chunk, head
                    head += chunk
            head, rest = head.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 101"), head
            client = cls(stream)
            client.ws.receive_data(rest)
            yield client
        finally:
            await trio.aclose_forcefully(stream)

    async def send(self, event: Any) -> None:
        await self.stream.send_all(self.ws.send(event))

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def events(self, until: type = CloseConnection) -> list[Any]:
        """Read and parse until an event of type ``until`` or EOF; every event read."""
        seen: list[Any] = []
        with trio.fail_after(TIMEOUT):
            while True:
                for event in self.ws.events():
                    seen.append(event)
                    if isinstance(event, until):
                        return seen
                try:
                    data = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    data = b""
                if not data:
                    seen.append(None)  # EOF
                    return seen
                self.ws.receive_data(data)


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    """A client frame made by hand (masked unless told otherwise)."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        header = bytes((first, length | (0x80 if mask else 0)))
    elif length < 65536:
        header = struct.pack("!BBH", first, 126 | (0x80 if mask else 0), length)
    else:
        header = struct.pack("!BBQ", first, 127 | (0x80 if mask else 0), length)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def closes(events: list[Any]) -> list[tuple[int, str]]:
    return [(int(e.code), e.reason) for e in events if isinstance(e, CloseConnection)]


# ---------------------------------------------------------------------------- tests


async def test_the_data_plane_serves_plain_tcp_connections() -> None:
    app = Recorder()
    async with serving(app) as address, RawClient.connect(address, "/echo") as client:
        await client.send(TextMessage(data="héllo"))
        await client.send(BytesMessage(data=b"\x00\x01"))
        events = await client.events(until=BytesMessage)
        assert [type(e) for e in events] == [TextMessage, BytesMessage]
        assert events[0].data == "héllo"
        assert events[1].data == b"\x00\x01"
        assert app.scopes[0]["extensions"][DATAPLANE_EXTENSION] == {}
        # Contract 1: the app's receive is a bound trio memory channel receive, and messages
        # have Hypercorn's exact shapes.
        receive = app.receives[0]
        assert isinstance(getattr(receive, "__self__", None), trio.MemoryReceiveChannel)
        assert getattr(receive, "__func__", None) is trio.MemoryReceiveChannel.receive
        assert await app.next() == {"type": "websocket.receive", "bytes": None, "text": "héllo"}
        assert await app.next() == {"type": "websocket.receive", "bytes": b"\x00\x01", "text": None}


async def test_the_switch_turns_it_off() -> None:
    app = Recorder()
    async with serving(app, data_plane=False) as address:
        async with trio_websocket_client(f"ws://{address}/echo") as ws:
            await ws.send_message("hi")
            with trio.fail_after(TIMEOUT):
                assert await ws.get_message() == "hi"
        assert DATAPLANE_EXTENSION not in app.scopes[0]["extensions"]


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (frame(0x1, b"unmasked", mask=False), 1002),
        (frame(0x8, struct.pack("!H", 999)), 1002),
        (frame(0x1, b"\xff\xfe"), 1007),
        (frame(0x1, b"ok", fin=False) + frame(0x1, b"no continuation"), 1002),
        (frame(0x9, b"p" * 126), 1002),  # control frame too long
        (bytes((0x83, 0x80)) + os.urandom(4), 1002),  # reserved opcode
    ],
    ids=["unmasked", "close-999", "invalid-utf8", "no-continuation", "long-ping", "opcode-3"],
)
async def test_protocol_errors_close_with_the_rfc_code_seen_by_both(bad: bytes, code: int) -> None:
    app = Recorder()
    async with serving(app) as address, RawClient.connect(address, "/echo") as client:
        await client.send_raw(bad)
        events = await client.events()
        assert [c for c, _ in closes(events)] == [code]
        disconnect = await app.until_disconnect()
        assert disconnect["code"] == code
        assert disconnect[CLOSED_BY_KEY] == "server"
        assert isinstance(disconnect["reason"], str)
        # The server shut its side: the client reads EOF after the close frame.
        assert (await client.events(until=type(None)))[-1] is None


async def test_too_big_closes_1009_seen_by_both() -> None:
    config = Config()
    config.websocket_max_message_size = 1000
    app = Recorder()
    async with serving(app, config) as address, RawClient.connect(address, "/echo") as client:
        await client.send(TextMessage(data="é" * 400))  # 800 bytes: fine
        await client.send(BytesMessage(data=b"x" * 600, message_finished=False))
        await client.send(BytesMessage(data=b"x" * 600))
        events = await client.events()
        assert closes(events) == [(1009, "message too big")]
        assert (await app.next())["text"] == "é" * 400
        disconnect = await app.until_disconnect()
        assert (disconnect["code"], disconnect[CLOSED_BY_KEY]) == (1009, "server")


async def test_client_close_codes_reach_the_app() -> None:
    app = Recorder()
    async with serving(app) as address:
        async with RawClient.connect(address, "/echo") as client:
            await client.send(CloseConnection(code=4000, reason="client bye"))
            assert closes(await client.events()) == [(4000, "client bye")]
        disconnect = await app.until_disconnect()
        assert disconnect == {"type": "websocket.disconnect", "code": 4000, "reason": "client bye"}
        async with RawClient.connect(address, "/echo") as client:
            await client.send_raw(frame(0x8, b""))
            assert closes(await client.events()) == [(1005, "")]
        assert (await app.until_disconnect())["code"] == 1005
        async with RawClient.connect(address, "/echo") as client:
            await client.send(TextMessage(data="x"))
            await client.events(until=TextMessage)
        disconnect = await app.until_disconnect()
        assert disconnect == {"type": "websocket.disconnect", "code": 1006}


async def test_app_close_gets_the_clients_reply() -> None:
    app = Recorder()
    async with serving(app) as address, RawClient.connect(address, "/close") as client:
        await client.send(TextMessage(data="close please"))
        events = await client.events()
        assert closes(events) == [(4001, "app says bye")]
        await client.send(CloseConnection(code=4001))
        assert (await client.events(until=type(None)))[-1] is None
        await app.next()
        # The app closed first: a normal closure, as Hypercorn reports it.
        assert await app.until_disconnect() == {"type": "websocket.disconnect", "code": 1000}


async def test_dead_peer_is_found_by_ping_timeout() -> None:
    app = Recorder()
    options = {"ping_interval": 0.2, "ping_timeout": 0.3}
    async with serving(app, **options) as address, RawClient.connect(address, "/echo") as client:
        # The client reads nothing and answers no ping.
        disconnect = await app.until_disconnect()
        assert disconnect["code"] == 1011
        assert disconnect["reason"] == "keepalive ping timeout"
        assert disconnect[CLOSED_BY_KEY] == "server"
        events = await client.events()
        assert any(isinstance(e, Ping) for e in events)
        assert closes(events) == [(1011, "keepalive ping timeout")]


async def test_pongs_keep_the_connection_alive() -> None:
    app = Recorder()
    options = {"ping_interval": 0.1, "ping_timeout": 0.2}
    async with serving(app, **options) as address, RawClient.connect(address, "/echo") as client:
        pings = 0
        with trio.move_on_after(1.0):
            while True:
                events = await client.events(until=Ping)
                assert events[-1] is not None
                pings += 1
                await client.send(events[-1].response())
        assert pings >= 3
        await client.send(TextMessage(data="still here"))
        assert (await client.events(until=TextMessage))[-1].data == "still here"


async def test_cancelled_send_to_a_stalled_reader_aborts() -> None:
    app = Recorder()
    async with serving(app) as address:
        host, port = address.rsplit(":", 1)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET /stall HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
            ).encode()
        )
        try:
            start = trio.current_time()
            disconnect = await app.until_disconnect()  # the client never reads
            cancelled, _, when = app.results["stall"]
            assert cancelled
            assert when - start < 4.0
            assert disconnect["code"] == 1006
            assert disconnect[CLOSED_BY_KEY] == "server"
            with trio.fail_after(TIMEOUT):
                await app.after_done.wait()
            assert isinstance(app.results["after"], OSError)
        finally:
            sock.close()


async def test_send_is_one_checkpoint_and_raises_after_close() -> None:
    app = Recorder()
    async with serving(app) as address:
        async with RawClient.connect(address, "/echo") as client:
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
        await send({"type": "websocket.close", "code": 1000})  # a no-op


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_frames_are_the_ones_wsproto_builds(size: int) -> None:
    proto = FrameProtocol(False, [])
    payload = bytes(random.Random(size).randrange(256) for _ in range(size))
    assert _header(0x82, size) + payload == proto.send_data(payload, True)
    text = "a" * size
    assert _header(0x81, size) + text.encode() == proto.send_data(text, True)


async def test_fragments_pings_and_random_splits() -> None:
    app = Recorder()
    rng = random.Random(13)
    messages: list[Any] = []
    wire = b""
    for i in range(200):
        size = rng.choice([0, 1, 125, 126, 1000, 65536, 70000])
        if rng.random() < 0.5:
            payload: Any = "".join(rng.choice("aé€𝄞") for _ in range(size // 4))
            data = payload.encode()
            opcode = 0x1
        else:
            payload = rng.randbytes(size)
            data = payload
            opcode = 0x2
        messages.append(payload)
        cuts = sorted(rng.sample(range(1, max(len(data), 2)), min(2, max(len(data) - 1, 0))))
        pieces = (
            [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=False)]
            if data
            else [b""]
        )
        for n, piece in enumerate(pieces):
            wire += frame(opcode if n == 0 else 0x0, piece, fin=n == len(pieces) - 1)
            if rng.random() < 0.3:
                wire += frame(0x9, b"%d" % i)
    async with serving(app) as address, RawClient.connect(address, "/record") as client:
        position = 0
        while position < len(wire):
            step = rng.randrange(1, 40000)
            await client.send_raw(wire[position : position + step])
            position += step
        for expected in messages:
            message = await app.next()
            got = message["text"] if isinstance(expected, str) else message["bytes"]
            assert got == expected


async def test_permessage_deflate_round_trip() -> None:
    app = Recorder()

    def client(address: str) -> list[str]:
        # The websockets client offers permessage-deflate by default.
        with websockets.sync.client.connect(f"ws://{address}/echo") as ws:
            assert ws.response is not None
            assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
            got = []
            for i in range(30):
                ws.send("compress me " * i)
                got.append(str(ws.recv(timeout=TIMEOUT)))
            ws.close(4002, "done")
            return got

    async with serving(app) as address:
        with trio.fail_after(TIMEOUT * 2):
            got = await trio.to_thread.run_sync(client, address)
        assert got == ["compress me " * i for i in range(30)]
        assert (await app.until_disconnect())["code"] == 4002


async def test_an_internal_error_ends_only_its_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    from trio_ws._dataplane import DataPlane

    original = DataPlane._receive

    async def broken(self: DataPlane, data: bytes) -> None:
        raise RuntimeError("a bug")

    app = Recorder()
    async with serving(app) as address:
        monkeypatch.setattr(DataPlane, "_receive", broken)
        async with RawClient.connect(address, "/echo") as client:
            await client.send(TextMessage(data="boom"))
            assert closes(await client.events()) == [(1011, "internal error")]
        disconnect = await app.until_disconnect()
        assert (disconnect["code"], disconnect[CLOSED_BY_KEY]) == (1011, "server")
        monkeypatch.setattr(DataPlane, "_receive", original)
        async with RawClient.connect(address, "/echo") as client:  # still serving
            await client.send(TextMessage(data="fine"))
            assert (await client.events(until=TextMessage))[-1].data == "fine"


async def test_broadcast_with_per_send_deadlines_survives_a_stalled_client() -> None:
    """Issue 8 item 5: one stalled client costs the others nothing but its deadline."""
    sends: list[Send] = []
    ready = trio.Semaphore(0)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await Recorder()(scope, receive, send)  # lifespan
            return
        await receive()
        await send({"type": "websocket.accept"})
        sends.append(send)
        ready.release()
        while (await receive())["type"] != "websocket.disconnect":
            pass

    healthy = 10
    rounds = 10
    payload = b"y" * 256 * 1024
    frame_size = len(payload) + 10
    received = [0] * healthy

    async def reader(i: int, stream: trio.SocketStream) -> None:
        while received[i] < rounds * frame_size:
            data = await stream.receive_some(1 << 20)
            assert data
            received[i] += len(data)

    async with serving(app) as address:
        host, port = address.rsplit(":", 1)
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect((host, int(port)))
        stalled.sendall(_upgrade())
        try:
            with trio.fail_after(TIMEOUT):
                await ready.acquire()  # the stalled one is first in the broadcast
            async with trio.open_nursery() as nursery:
                streams = []
                for i in range(healthy):
                    stream = await trio.open_tcp_stream(host, int(port))
                    streams.append(stream)
                    await stream.send_all(_upgrade())
                    head = b""
                    with trio.fail_after(TIMEOUT):
                        while b"\r\n\r\n" not in head:
                            head += await stream.receive_some(1)
                        await ready.acquire()
                    nursery.start_soon(reader, i, stream)
                live = list(sends)
                for _ in range(rounds):
                    for send in list(live):
                        with trio.move_on_after(1.0) as scope:
                            await send({"type": "websocket.send", "bytes": payload, "text": None})
                        if scope.cancelled_caught:
                            live.remove(send)
                assert len(live) == healthy
                assert sends[0] not in live
            for stream in streams:
                await stream.aclose()
        finally:
            stalled.close()
    assert received == [rounds * frame_size] * healthy


def _upgrade() -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    ).encode()
