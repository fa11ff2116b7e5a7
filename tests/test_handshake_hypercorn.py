"""What plain Hypercorn (``hypercorn.trio.serve``, no trio_ws hooks) does with bad handshakes.

These pin the behaviours ``trio_ws.serve`` works around (DESIGN section 3, items 4, 14, 15, 17),
so a Hypercorn upgrade that changes one fails here by name: then the workaround in
``trio_ws/_internals.py`` and the table in docs/hypercorn.rst need another look.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import h11
import hypercorn.trio
import pytest
import trio
from hypercorn.config import Config

from tests.test_handshake_serve import UPGRADE, count_tasks, exchange, leave_early, raw_handshake
from trio_ws._types import Receive, Scope, Send

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

TIMEOUT = 5.0


@dataclass
class Plain:
    """A running ``hypercorn.trio.serve``: its port, and the exception that ended it, if any."""

    port: int
    died: trio.Event = field(default_factory=trio.Event)
    error: BaseException | None = None
    scopes: list[dict[str, Any]] = field(default_factory=list)
    app_errors: list[BaseException] = field(default_factory=list)

    def leaves(self) -> list[BaseException]:
        pending = [] if self.error is None else [self.error]
        found = []
        while pending:
            exc = pending.pop()
            if isinstance(exc, BaseExceptionGroup):
                pending.extend(exc.exceptions)
            else:
                found.append(exc)
        return found


@asynccontextmanager
async def plain_hypercorn(
    accept: dict[str, Any] | None = None, keep_alive_timeout: float = 5.0
) -> AsyncIterator[Plain]:
    """Plain Hypercorn serving an app that accepts every WebSocket with ``accept``'s fields."""
    holder: list[Plain] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        holder[0].scopes.append(dict(scope))
        await receive()
        try:
            await send({"type": "websocket.accept", **(accept or {})})
        except Exception as exc:
            holder[0].app_errors.append(exc)
            raise
        while (await receive())["type"] != "websocket.disconnect":
            pass

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = 0.5
    config.accesslog = None
    config.keep_alive_timeout = keep_alive_timeout
    stop = trio.Event()

    async def run(*, task_status: trio.TaskStatus[list[str]]) -> None:
        try:
            await hypercorn.trio.serve(
                app, config, shutdown_trigger=stop.wait, task_status=task_status, mode="asgi"
            )
        except BaseException as exc:
            if holder:
                holder[0].error = exc
            if not isinstance(exc, (Exception, BaseExceptionGroup)):
                raise
        finally:
            if holder:
                holder[0].died.set()

    async with trio.open_nursery() as nursery:
        with trio.fail_after(TIMEOUT):
            urls: list[str] = await nursery.start(run)
        holder.append(Plain(int(urls[0].rsplit(":", 1)[1])))
        try:
            yield holder[0]
        finally:
            stop.set()


async def test_plain_hypercorn_ends_on_a_non_ascii_subprotocol_header() -> None:
    async with plain_hypercorn() as server:
        answer = await exchange(server.port, UPGRADE + b"Sec-WebSocket-Protocol: \xff\r\n\r\n")
        assert answer == b""  # no HTTP answer
        with trio.fail_after(TIMEOUT):
            await server.died.wait()
    assert any(isinstance(leaf, UnicodeDecodeError) for leaf in server.leaves())


async def test_plain_hypercorn_ends_on_an_upgrade_request_with_a_body() -> None:
    """Hypercorn issue #225: the app's accept races Hypercorn's own 400 to the body; h11 ends
    in ERROR and its LocalProtocolError leaves the connection's task and ends the server.
    A race, so tried up to 40 times (it usually takes one to three)."""
    async with plain_hypercorn() as server:
        with trio.fail_after(4 * TIMEOUT):
            for _ in range(40):
                try:
                    await exchange(server.port, UPGRADE + b"Content-Length: 5\r\n\r\nhello")
                except OSError:
                    break
                with trio.move_on_after(0.2):
                    await server.died.wait()
                if server.died.is_set():
                    break
            await server.died.wait()
    assert any(isinstance(leaf, h11.LocalProtocolError) for leaf in server.leaves())


async def test_plain_hypercorn_keeps_only_the_last_subprotocol_header() -> None:
    async with plain_hypercorn() as server:
        headers = b"Sec-WebSocket-Protocol: chat.v1\r\nSec-WebSocket-Protocol: chat.v2\r\n"
        with trio.fail_after(TIMEOUT):
            stream, head = await raw_handshake(server.port, headers)
            await stream.aclose()
        assert head.startswith(b"HTTP/1.1 101 ")
    assert [scope["subprotocols"] for scope in server.scopes] == [["chat.v2"]]


async def test_plain_hypercorn_accepting_the_first_of_repeated_subprotocols_fails() -> None:
    async with plain_hypercorn({"subprotocol": "chat.v1"}) as server:
        headers = b"Sec-WebSocket-Protocol: chat.v1\r\nSec-WebSocket-Protocol: chat.v2\r\n"
        with trio.fail_after(TIMEOUT):
            with pytest.raises(AssertionError):  # the server closes without any answer
                await raw_handshake(server.port, headers)
            await server.died.wait()
    assert [str(exc) for exc in server.app_errors] == ["Invalid Subprotocol"]
    # DESIGN 3.4: the app's exit then fails on the connection that was never made.
    assert any(isinstance(leaf, AttributeError) for leaf in server.leaves())


async def test_plain_hypercorn_gives_no_answer_to_a_malformed_deflate_offer() -> None:
    async with plain_hypercorn() as server:
        offer = b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=abc\r\n"
        with trio.fail_after(TIMEOUT):
            with pytest.raises(AssertionError):  # the server closes without any answer
                await raw_handshake(server.port, offer)
            await server.died.wait()
    assert [type(exc) for exc in server.app_errors] == [ValueError]
    assert any(isinstance(leaf, AttributeError) for leaf in server.leaves())


async def test_plain_hypercorn_leaves_the_connection_open_after_its_own_400() -> None:
    """Its 400 says ``connection: close``, but the connection stays open while the client
    keeps it (``serve`` closes it)."""
    async with plain_hypercorn() as server:
        sock = trio.socket.socket()
        with sock:
            with trio.fail_after(TIMEOUT):
                await sock.connect(("127.0.0.1", server.port))
                await sock.send(UPGRADE.replace(b"Sec-WebSocket-Key", b"X-Key") + b"\r\n")
                answer = await sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 400 ")
            with trio.move_on_after(0.5) as still_open:
                await sock.recv(65536)
            assert still_open.cancelled_caught
        assert not server.died.is_set()


async def test_plain_hypercorn_keeps_a_connection_task_until_keep_alive_timeout() -> None:
    """A client that leaves before a complete request: its connection's task lives on until
    ``keep_alive_timeout`` has passed since the connection opened (the timer is not stopped
    when the peer leaves). ``serve`` stops the timer with the connection."""
    async with plain_hypercorn(keep_alive_timeout=1.5) as server:
        await trio.sleep(0.1)
        baseline = count_tasks()
        opened = trio.current_time()
        await leave_early(server.port, UPGRADE, reset=False)
        await trio.sleep(0.5)
        assert count_tasks() > baseline  # the peer is long gone
        with trio.fail_after(TIMEOUT):
            while count_tasks() > baseline:  # noqa: ASYNC110 - tasks have no event
                await trio.sleep(0.01)
        assert trio.current_time() - opened >= 1.4
