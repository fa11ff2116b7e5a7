"""Hostile clients against serve's data plane write path: write coalescing (held frames) and
refused sends. Real ``trio_ws.serve`` on 127.0.0.1, raw sockets and real clients."""

from __future__ import annotations

import base64
import os
import socket
import struct
import threading
import time
from typing import Any

import pytest
import trio

import trio_ws

from tests.test_dataplane import TIMEOUT, serving
from tests.test_dataplane_cork import app_that, text
from trio_ws._types import Receive, Send

_LINGER_ZERO = struct.pack("ii", 1, 0)


def _blocking_handshake(address: str) -> tuple[socket.socket, bytes]:
    """A client's handshake on a blocking socket; the socket and the bytes after the 101."""
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
        ).encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "no handshake response"
        data += chunk
    assert data.startswith(b"HTTP/1.1 101"), data
    return sock, data.split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize("mode", ["plain", "session"])
async def test_a_reset_while_frames_are_held_does_not_stall_the_run_loop(mode: str) -> None:
    """The client resets while the app's last frames are held: the flush that finds the reset
    (run just before the loop sleeps) must wake the tasks it made runnable, not sleep."""
    reset = threading.Event()
    burst_done = threading.Event()
    got: list[Any] = []
    done = trio.Event()

    def block_until_reset() -> None:
        burst_done.set()
        # Block the run loop until the reset has arrived (the client runs in a thread), so
        # the held frames' flush is the first to see it.
        reset.wait(TIMEOUT)
        time.sleep(0.05)

    async def burst_then_receive(receive: Receive, send: Send) -> None:
        await send(text("first"))  # sent at once: the client resets when it has it
        for i in range(10):
            await send(text(f"held {i}"))  # consecutive turns: held
        block_until_reset()
        got.append((await receive())["code"])
        done.set()

    async def session(ws: trio_ws.WebSocket) -> None:
        await ws.accept()
        await ws.send_text("first")
        for i in range(10):
            await ws.send_text(f"held {i}")
        block_until_reset()
        async for _ in ws.iter_text():
            pass  # pragma: no cover - the client sends nothing
        got.append(ws.close_code)
        done.set()

    app = app_that(burst_then_receive) if mode == "plain" else trio_ws.websocket_app(session)

    def client(address: str) -> None:
        sock, rest = _blocking_handshake(address)
        try:
            assert rest or sock.recv(4096)
            burst_done.wait(TIMEOUT)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        finally:
            sock.close()
            reset.set()

    async with serving(app, ping_interval=None) as address:
        # A plain thread, not trio.to_thread: its end must not wake the run loop.
        thread = threading.Thread(target=client, args=(address,))
        thread.start()
        try:
            with trio.fail_after(TIMEOUT):
                await done.wait()
        finally:
            thread.join(TIMEOUT)
    assert got == [1006]
