"""Write coalescing in serve's data plane (``trio_ws._dataplane_cork``).

An app that streams gets its frames sent together, in order and whole; a held frame leaves as
soon as the run loop would sleep, within ``CORK_DELAY`` while it stays busy, and before any
control frame; a request-response exchange is never held. Real ``trio_ws.serve`` on 127.0.0.1
with raw-socket clients; the number of socket sends is counted by wrapping the data plane's two
sending methods.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import trio
from wsproto.events import CloseConnection, TextMessage

from tests.test_dataplane import TIMEOUT, RawClient, answer_lifespan, serving
from trio_ws import _dataplane_cork
from trio_ws._dataplane import DataPlane
from trio_ws._types import Receive, Scope, Send


@contextmanager
def counting_sends(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Count the data plane's socket sends: [immediate sends, sends of held frames]."""
    counts = [0, 0]
    send_now = DataPlane._send_now
    uncork = DataPlane.uncork

    def counted_send_now(self: DataPlane, data: Any) -> None:
        counts[0] += 1
        send_now(self, data)

    def counted_uncork(self: DataPlane, *, waking: bool) -> None:
        if self.corked_at != math.inf and self._outbox:
            counts[1] += 1
        uncork(self, waking=waking)

    monkeypatch.setattr(DataPlane, "_send_now", counted_send_now)
    monkeypatch.setattr(DataPlane, "uncork", counted_uncork)
    yield counts


def app_that(behaviour: Any) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        if scope["type"] != "websocket":
            return
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await behaviour(receive, send)

    return app


def text(value: str) -> dict[str, Any]:
    return {"type": "websocket.send", "text": value, "bytes": None}


async def texts(client: RawClient, count: int) -> list[str]:
    got: list[str] = []
    while len(got) < count:
        events = await client.events(until=TextMessage)
        assert events[-1] is not None, "connection ended early"
        got += [e.data for e in events if isinstance(e, TextMessage)]
    return got


async def test_a_push_loop_leaves_in_few_sends_whole_and_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    n = 2000

    async def push(receive: Receive, send: Send) -> None:
        for i in range(n):
            await send(text(f"m{i}"))
        await send({"type": "websocket.close", "code": 1000})
        await receive()

    with counting_sends(monkeypatch) as counts:
        async with serving(app_that(push)) as address, RawClient.connect(address) as client:
            events = await client.events()
    got = [e.data for e in events if isinstance(e, TextMessage)]
    assert got == [f"m{i}" for i in range(n)]
    assert isinstance(events[-1], CloseConnection)
    assert events[-1].code == 1000
    # Without coalescing: one send per frame (n + 1 with the close).
    assert sum(counts) < n / 4, counts


async def test_held_frames_leave_when_the_loop_would_sleep() -> None:
    async def two_then_wait(receive: Receive, send: Send) -> None:
        await send(text("one"))
        await send(text("two"))  # held: the connection wrote in the turn before
        await send(text("three"))
        await receive()  # nothing runnable now: the loop flushes before it sleeps

    async with serving(app_that(two_then_wait)) as address, RawClient.connect(address) as client:
        assert await texts(client, 3) == ["one", "two", "three"]


async def test_held_frames_leave_within_the_delay_on_a_busy_loop() -> None:
    busy = trio.Event()

    async def send_then_spin(receive: Receive, send: Send) -> None:
        await send(text("one"))
        await send(text("two"))
        with trio.move_on_after(TIMEOUT):
            while not busy.is_set():  # keeps the run loop from ever sleeping
                await trio.lowlevel.cancel_shielded_checkpoint()

    async with serving(app_that(send_then_spin)) as address, RawClient.connect(address) as client:
        try:
            start = trio.current_time()
            assert await texts(client, 2) == ["one", "two"]
            waited = trio.current_time() - start
        finally:
            busy.set()
    assert waited < TIMEOUT / 2  # held at most CORK_DELAY; the loop was busy throughout


async def test_control_frames_send_what_is_held_first() -> None:
    async def burst_then_close(receive: Receive, send: Send) -> None:
        for i in range(5):
            await send(text(str(i)))
        await send({"type": "websocket.close", "code": 4000, "reason": "done"})
        await receive()

    async with serving(app_that(burst_then_close)) as address, RawClient.connect(address) as client:
        events = await client.events()
    assert [e.data for e in events if isinstance(e, TextMessage)] == list("01234")
    assert isinstance(events[-1], CloseConnection)
    assert (events[-1].code, events[-1].reason) == (4000, "done")


async def test_ping_pong_is_never_held(monkeypatch: pytest.MonkeyPatch) -> None:
    async def echo(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send(text(message["text"]))

    with counting_sends(monkeypatch) as counts:
        async with serving(app_that(echo)) as address, RawClient.connect(address) as client:
            for i in range(50):
                await client.send(TextMessage(f"q{i}"))
                assert await texts(client, 1) == [f"q{i}"]
    assert counts[1] == 0, counts
    assert counts[0] >= 50


async def test_coalescing_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_dataplane_cork, "ENABLED", False)
    n = 200

    async def push(receive: Receive, send: Send) -> None:
        for i in range(n):
            await send(text(f"m{i}"))
        await receive()

    with counting_sends(monkeypatch) as counts:
        async with serving(app_that(push)) as address, RawClient.connect(address) as client:
            assert await texts(client, n) == [f"m{i}" for i in range(n)]
    assert counts == [n, 0]
