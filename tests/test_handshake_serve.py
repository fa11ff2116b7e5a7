"""No bytes from a client end, wedge or slow ``trio_ws.serve``: handshakes on raw sockets.

Each bad handshake gets HTTP 400 (or, for what Hypercorn's parser refuses, its own 400) and the
server closes the connection; one throttled line on the ``trio_ws`` logger says why; the app's
handler is never called; and a probe client is served afterwards. A bounded fuzz test of
handshake bytes checks the same for random mutations, and that every server task it caused ends.
What plain Hypercorn does with the same bytes is pinned in ``test_handshake_hypercorn.py``.

Every wait is bounded by ``trio.fail_after``; the real clock runs (real sockets).
"""

from __future__ import annotations

import logging
import random
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, Request, TextMessage

from tests.test_server import Running, assert_echo, serving
from trio_ws import WebSocket, _internals, websocket_app
from trio_ws._types import Receive, Scope, Send

TIMEOUT = 5.0
KEY = b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
HEAD = (
    b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
)
UPGRADE = HEAD + KEY
# A masked text frame "hello", as a client sends it.
FRAME = bytes([0x81, 0x85, 1, 2, 3, 4]) + bytes(
    b ^ k for b, k in zip(b"hello", b"\x01\x02\x03\x04\x01", strict=True)
)

#: name: (bytes sent, whether serve itself refuses it and logs why)
BAD_HANDSHAKES: dict[str, tuple[bytes, bool]] = {
    "body with content-length": (UPGRADE + b"Content-Length: 5\r\n\r\nhello", True),
    "content-length, body not sent": (UPGRADE + b"Content-Length: 5\r\n\r\n", True),
    "content-length 0": (UPGRADE + b"Content-Length: 0\r\n\r\n", True),
    "chunked body": (UPGRADE + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", True),
    "one trailing byte (hypercorn #225)": (UPGRADE + b"\r\nX", True),
    "early frame": (UPGRADE + b"\r\n" + FRAME, True),
    "trailing request": (UPGRADE + b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
    "non-ascii subprotocol": (UPGRADE + b"Sec-WebSocket-Protocol: \xff\r\n\r\n", True),
    "non-ascii extension": (UPGRADE + b"Sec-WebSocket-Extensions: \xe9\r\n\r\n", True),
    "non-ascii connection": (
        HEAD.replace(b"Connection: Upgrade", b"Connection: Upgrade, \xe9") + KEY + b"\r\n",
        True,
    ),
    "no key": (HEAD + b"\r\n", False),
    "version 8": (UPGRADE.replace(b"Version: 13", b"Version: 8") + b"\r\n", False),
    "HTTP/1.0": (UPGRADE.replace(b"HTTP/1.1", b"HTTP/1.0") + b"\r\n", False),
    "garbage request line": (b"\x16\x03\x01\x02\x00 hello\r\n\r\n", False),
    # RFC 6455 section 4.2.1: the key is the base64 of 16 bytes, in one header.
    "empty key": (HEAD + b"Sec-WebSocket-Key: \r\n\r\n", True),
    "key not base64": (HEAD + b"Sec-WebSocket-Key: not base64!\r\n\r\n", True),
    "key of 15 bytes": (HEAD + b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n\r\n", True),
    "key of 17 bytes": (HEAD + b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n", True),
    "two keys": (UPGRADE + KEY + b"\r\n", True),
}


@pytest.fixture(autouse=True)
def fresh_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no log line held back by an earlier one."""
    monkeypatch.setattr(_internals, "throttle", _internals.Throttle())


@dataclass
class Seen:
    """What the test app saw."""

    calls: int = 0
    running: int = 0
    subprotocols: list[list[str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


def make_app() -> tuple[Any, Seen]:
    seen = Seen()

    async def handler(ws: WebSocket) -> None:
        seen.calls += 1
        seen.running += 1
        try:
            seen.subprotocols.append(list(ws.scope["subprotocols"]))
            if ws.url.path == "/proto":
                await ws.accept(subprotocol=ws.scope["subprotocols"][0])
            else:
                await ws.accept()
            async for text in ws.iter_text():
                await ws.send_text(text)
        finally:
            seen.running -= 1

    return websocket_app(handler), seen


def port_of(running: Running) -> int:
    return int(running.urls[0].rsplit(":", 1)[1])


async def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on a raw socket; return all the server sends until it closes."""
    sock = trio.socket.socket()
    received = b""
    with sock, trio.fail_after(TIMEOUT):
        await sock.connect(("127.0.0.1", port))
        await sock.send(data)
        while True:
            try:
                chunk = await sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return received


async def settled(seen: Seen) -> None:
    """No handler is left running (bounded)."""
    with trio.fail_after(TIMEOUT):
        while seen.running:  # noqa: ASYNC110 - the handler count has no event
            await trio.sleep(0.01)


@pytest.mark.parametrize("name", list(BAD_HANDSHAKES))
async def test_bad_handshake_gets_400_and_a_close_and_the_server_keeps_serving(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    data, ours = BAD_HANDSHAKES[name]
    app, seen = make_app()
    async with serving(app) as running:
        with caplog.at_level(logging.WARNING, logger="trio_ws"):
            answer = await exchange(port_of(running), data)
        assert answer.startswith(b"HTTP/1.1 400 "), answer
        assert b"\r\n\r\n" in answer
        assert seen.calls == 0
        lines = [r.getMessage() for r in caplog.records if r.name == "trio_ws"]
        if ours:
            assert len(lines) == 1, lines
            assert lines[0].startswith("trio_ws.serve: HTTP 400 to 127.0.0.1:")
        else:
            assert lines == []  # Hypercorn's own parser refused it (and logs nothing either)
        await assert_echo(running.ws)
        await settled(seen)


async def test_handshake_answered_with_bytes_in_a_second_segment() -> None:
    """The request first, its body a moment later: still 400 and a close."""
    app, seen = make_app()
    async with serving(app) as running:
        sock = trio.socket.socket()
        with sock, trio.fail_after(TIMEOUT):
            await sock.connect(("127.0.0.1", port_of(running)))
            await sock.send(UPGRADE + b"Content-Length: 5\r\n\r\n")
            await trio.sleep(0.05)  # the real clock: the request is read on its own
            await sock.send(b"hello")
            answer = b""
            while chunk := await sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert seen.calls == 0
        await assert_echo(running.ws)


# -- handshake headers -----------------------------------------------------------------------


async def handshake(
    port: int, path: str = "/echo", extra: list[tuple[bytes, bytes]] | None = None, **kwargs: Any
) -> tuple[trio.SocketStream, WSConnection, Any]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    client = WSConnection(ConnectionType.CLIENT)
    request = Request(host="127.0.0.1", target=path, extra_headers=extra or [], **kwargs)
    await stream.send_all(client.send(request))
    while True:
        client.receive_data(await stream.receive_some())
        for event in client.events():
            if isinstance(event, (AcceptConnection, RejectConnection)):
                return stream, client, event


async def echo_once(stream: trio.SocketStream, client: WSConnection, text: str) -> None:
    await stream.send_all(client.send(TextMessage(data=text)))
    while True:
        client.receive_data(await stream.receive_some())
        for event in client.events():
            assert isinstance(event, TextMessage)
            assert event.data == text
            return


async def raw_handshake(
    port: int, headers: bytes, path: bytes = b"/echo"
) -> tuple[trio.SocketStream, bytes]:
    """Send an upgrade request with ``headers``; return the stream and the response head."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        await stream.send_all(UPGRADE.replace(b"/echo", path, 1) + headers + b"\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await stream.receive_some()
            assert chunk, f"the server closed without an answer ({head!r})"
            head += chunk
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream, head


@pytest.mark.parametrize(
    ("offers", "negotiated"),
    [
        ([b"permessage-deflate; server_max_window_bits=abc"], False),
        ([b"permessage-deflate; client_max_window_bits=99"], False),
        ([b"permessage-deflate; server_max_window_bits=abc, permessage-deflate"], True),
        ([b"permessage-deflate; server_max_window_bits=abc", b"permessage-deflate"], True),
    ],
)
async def test_a_malformed_deflate_offer_is_declined_and_the_handshake_proceeds(
    offers: list[bytes], negotiated: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """RFC 7692 section 5: the server declines an offer with an invalid parameter value (and
    takes the next valid one); the handshake and the connection proceed."""
    app, seen = make_app()
    async with serving(app) as running:
        headers = b"".join(b"Sec-WebSocket-Extensions: " + offer + b"\r\n" for offer in offers)
        with trio.fail_after(TIMEOUT), caplog.at_level(logging.WARNING, logger="trio_ws"):
            stream, head = await raw_handshake(port_of(running), headers)
            async with stream:
                assert head.startswith(b"HTTP/1.1 101 ")
                assert (
                    b"sec-websocket-extensions: permessage-deflate" in head.lower()
                ) is negotiated
                await stream.send_all(FRAME)  # uncompressed frames are valid either way
                reply = b""
                while len(reply) < 2:
                    reply += await stream.receive_some()
                assert reply[0] & 0x0F == 1  # a text frame came back
                if not negotiated:
                    assert reply == b"\x81\x05hello"
        messages = [r.getMessage() for r in caplog.records if r.name == "trio_ws"]
        assert len(messages) == 1
        assert "declined a malformed permessage-deflate offer" in messages[0]
        await settled(seen)


async def test_repeated_subprotocol_headers_are_one_list_in_order() -> None:
    """RFC 6455 section 11.3.4: repeated Sec-WebSocket-Protocol headers are one list."""
    app, seen = make_app()
    async with serving(app) as running:
        headers = b"Sec-WebSocket-Protocol: chat.v1\r\nSec-WebSocket-Protocol: chat.v2, chat.v3\r\n"
        with trio.fail_after(TIMEOUT):
            stream, head = await raw_handshake(port_of(running), headers, b"/proto")
            async with stream:
                assert head.startswith(b"HTTP/1.1 101 ")
                assert b"sec-websocket-protocol: chat.v1\r\n" in head.lower()
        assert seen.subprotocols == [["chat.v1", "chat.v2", "chat.v3"]]


async def test_accepting_an_unoffered_subprotocol_raises_in_the_app_and_answers_500() -> None:
    """Plain Hypercorn crashes the server here (DESIGN 3.4); under serve the app sees the real
    error (not ``AttributeError: connection``), the client gets HTTP 500, the server serves on."""
    errors: list[BaseException] = []
    echo_app, _ = make_app()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or scope["path"] == "/echo":
            await echo_app(scope, receive, send)
            return
        await receive()
        try:
            await send({"type": "websocket.accept", "subprotocol": "never.offered"})
        except Exception as exc:
            errors.append(exc)

    async with serving(app) as running:
        with trio.fail_after(TIMEOUT):
            stream, _, answer = await handshake(port_of(running), "/plain", subprotocols=["a"])
        async with stream:
            assert isinstance(answer, RejectConnection)
            assert answer.status_code == 500
        assert [str(e) for e in errors] == ["Invalid Subprotocol"]
        await assert_echo(running.ws)


async def leave_early(port: int, data: bytes, *, reset: bool) -> None:
    """Connect, send ``data`` (perhaps nothing), and leave with a FIN or a reset."""
    sock = trio.socket.socket()
    with sock:
        await sock.connect(("127.0.0.1", port))
        if data:
            await sock.send(data)
        await trio.sleep(0.05)
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


EARLY_LEAVERS = {
    "no bytes": b"",
    "half a request line": UPGRADE[:10],
    "headers cut off": UPGRADE,
    "a plain HTTP request cut off": b"GET / HTTP/1.1\r\nHost: x\r\n",
    "a plain HTTP request answered, then idle": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "reset"])
@pytest.mark.parametrize("data", EARLY_LEAVERS.values(), ids=EARLY_LEAVERS.keys())
async def test_a_client_that_leaves_an_idle_connection_leaves_no_task(
    data: bytes, reset: bool
) -> None:
    """Before a complete request, or between requests, plain Hypercorn keeps the connection's task
    until ``keep_alive_timeout`` (5 s) has passed since it opened or went idle (pinned in test_handshake_hypercorn.py); under serve it ends with the
    connection, so a port scan or a flood of cut-off handshakes holds nothing."""
    app, seen = make_app()
    async with serving(app) as running:
        await assert_echo(running.ws)
        await trio.sleep(0.1)
        baseline = count_tasks()
        await leave_early(port_of(running), data, reset=reset)
        with trio.fail_after(1.0):  # well inside keep_alive_timeout
            while count_tasks() > baseline:  # noqa: ASYNC110 - tasks have no event
                await trio.sleep(0.01)
        await assert_echo(running.ws)
    assert seen.calls == 2  # the two probes only


# -- the fuzz test -----------------------------------------------------------------------------

FUZZ_COUNT = 240
FUZZ_PARALLEL = 8
FUZZ_SECONDS = 60.0


def mutate(rng: random.Random) -> bytes:
    """One handshake, damaged in one of the ways a scanner, a broken client or an attacker does."""
    lines = [line + b"\r\n" for line in UPGRADE.split(b"\r\n") if line]
    tail = b""
    choice = rng.randrange(12)
    if choice == 0:
        lines.append(rng.choice([b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n"]))
        tail = b"5\r\nhello\r\n0\r\n\r\n"
    elif choice == 1:
        tail = rng.randbytes(rng.randrange(1, 40))
    elif choice == 2:
        tail = FRAME * rng.randrange(1, 4)
    elif choice == 3:
        del lines[rng.randrange(1, len(lines))]
    elif choice == 4:
        index = rng.randrange(len(lines))
        line = bytearray(lines[index])
        for _ in range(rng.randrange(1, 4)):
            line[rng.randrange(len(line))] = rng.randrange(256)
        lines[index] = bytes(line)
    elif choice == 5:
        header = rng.choice([b"Sec-WebSocket-Protocol", b"Sec-WebSocket-Extensions", b"Connection"])
        lines.append(
            header + b": " + rng.randbytes(rng.randrange(1, 12)).replace(b"\r", b"") + b"\r\n"
        )
    elif choice == 6:
        bits = rng.choice([b"abc", b"7", b"16", b"", b"-1", b"9" * 30])
        lines.append(
            b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits="
            + bits
            + b"\r\n"
        )
    elif choice == 7:
        lines.append(b"Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b\r\n")
    elif choice == 8:
        lines[0] = rng.choice(
            [b"GET / HTTP/1.0\r\n", b"POST / HTTP/1.1\r\n", b"GET / HTTP/2.0\r\n"]
        )
    elif choice == 9:
        lines.append(rng.choice([b"Upgrade: h2c\r\n", b"Expect: 100-continue\r\n"]))
    elif choice == 10:
        return rng.randbytes(rng.randrange(1, 200))
    data = b"".join(lines) + b"\r\n" + tail
    if rng.random() < 0.2:
        data = data[: rng.randrange(len(data))]  # a cut-off request: the client then leaves
    return data


async def fuzz_one(port: int, data: bytes) -> None:
    sock = trio.socket.socket()
    with sock:
        await sock.connect(("127.0.0.1", port))
        await sock.send(data)
        with trio.move_on_after(0.2):  # then leave, whatever the server did
            while await sock.recv(65536):
                pass


def count_tasks() -> int:
    pending = [trio.lowlevel.current_root_task()]
    count = 0
    while pending:
        task = pending.pop()
        count += 1
        for nursery in task.child_nurseries:
            pending.extend(nursery.child_tasks)
    return count


def task_names() -> list[str]:
    """Every task's name, indented by depth: what a failed task count shows."""
    names = []
    pending = [(trio.lowlevel.current_root_task(), 0)]
    while pending:
        task, depth = pending.pop()
        names.append("  " * depth + task.name)
        for nursery in task.child_nurseries:
            pending.extend((child, depth + 1) for child in nursery.child_tasks)
    return names


async def test_fuzzed_handshakes_never_stop_the_server(caplog: pytest.LogCaptureFixture) -> None:
    """Bounded in count and time: random damaged handshakes, 8 at a time, then a probe client
    is served, every task the fuzz caused on the server has ended, and the log stayed short."""
    app, seen = make_app()
    rng = random.Random(20261129)
    cases = [mutate(rng) for _ in range(FUZZ_COUNT)]
    async with serving(app) as running:
        port = port_of(running)
        await assert_echo(running.ws)
        await trio.sleep(0.1)
        baseline = count_tasks()
        limit = trio.CapacityLimiter(FUZZ_PARALLEL)

        async def one(data: bytes) -> None:
            async with limit:
                await fuzz_one(port, data)

        with trio.fail_after(FUZZ_SECONDS), caplog.at_level(logging.INFO, logger="trio_ws"):
            async with trio.open_nursery() as nursery:
                for data in cases:
                    nursery.start_soon(one, data)
        with trio.move_on_after(TIMEOUT):
            while count_tasks() > baseline:  # noqa: ASYNC110 - tasks have no event
                await trio.sleep(0.02)
        assert count_tasks() <= baseline, task_names()
        await settled(seen)
        await assert_echo(running.ws)
    lines = [r for r in caplog.records if r.name == "trio_ws" and r.levelno >= logging.WARNING]
    assert 1 <= len(lines) <= 12, [r.getMessage() for r in lines]  # throttled: one per kind
