"""Broadcast with real sessions: ``forward`` under ``trio_ws.serve`` with real clients.

A client that stops reading (trio-websocket with a one-message queue stops reading its socket
when nobody calls ``get_message``) must hold up nobody: not the publisher, not the other
clients; its subscription's overflow policy applies and its memory stays at its backlog.
"""

from __future__ import annotations

import functools
import gc
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.lowlevel
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

import trio_ws
from tests.test_dataplane import answer_lifespan
from trio_ws import Router, WebSocket, WebSocketRoute
from trio_ws._dataplane import DataPlane
from trio_ws.broadcast import Hub, Subscription, forward

MESSAGE = "x" * 1000


def fanout_app(hub: Hub, subscriptions: list[Subscription]) -> Router:
    async def handler(ws: WebSocket) -> None:
        backlog = int(ws.query_params["backlog"])
        policy = ws.query_params["policy"]
        await ws.accept()
        async with hub.subscribe("t", max_backlog=backlog, on_overflow=policy) as sub:  # type: ignore[arg-type]
            subscriptions.append(sub)
            ws.start_soon(forward, sub, ws)
            await ws.wait_disconnected()

    return Router([WebSocketRoute("/sub", handler)])


@asynccontextmanager
async def serving(app: Router, *, data_plane: bool = True) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(
            functools.partial(trio_ws.serve, app, host="127.0.0.1", port=0, data_plane=data_plane)
        )
        yield urls[0].replace("http://", "ws://", 1)
        nursery.cancel_scope.cancel()


async def wait_for(condition: Callable[[], bool], limit: float = 10) -> None:
    """Poll ``condition`` (the hub's counters: there is no event to wait on)."""
    with trio.fail_after(limit):
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_forward_sends_text_as_text_and_bytes_as_bytes() -> None:
    subs: list[Subscription] = []
    with trio.fail_after(20):
        async with trio_ws.open_broadcast() as hub, serving(fanout_app(hub, subs)) as url:
            async with open_websocket_url(f"{url}/sub?backlog=10&policy=close") as ws:
                await wait_for(lambda: len(subs) == 1)
                await hub.publish("t", "text")
                await hub.publish("t", b"\x00bytes")
                assert await ws.get_message() == "text"
                assert await ws.get_message() == b"\x00bytes"
            await wait_for(lambda: hub.statistics().subscriptions == 0)


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
async def test_a_stalled_client_delays_nobody_and_its_backlog_stays_bounded(policy: str) -> None:
    subs: list[Subscription] = []
    count = 20_000  # 20 MB: more than the socket buffers between server and stalled client
    with trio.fail_after(60):
        async with trio_ws.open_broadcast() as hub, serving(fanout_app(hub, subs)) as url:
            async with (
                open_websocket_url(f"{url}/sub?backlog=16&policy={policy}", message_queue_size=1),
                open_websocket_url(f"{url}/sub?backlog={count}&policy=close") as fast,
            ):
                await wait_for(lambda: len(subs) == 2)
                slow_sub = subs[0]
                received = 0

                async def read_all() -> None:
                    nonlocal received
                    for i in range(count):
                        assert await fast.get_message() == f"{i} {MESSAGE}"
                        received += 1

                largest_backlog = 0
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(read_all)
                    for i in range(count):
                        await hub.publish("t", f"{i} {MESSAGE}")
                        largest_backlog = max(largest_backlog, slow_sub.statistics().backlog)
                        if i % 50 == 0:
                            await trio.lowlevel.checkpoint()  # let the fast client's session run
                assert received == count
                stats = slow_sub.statistics()
                assert largest_backlog <= 16
                assert stats.dropped > 0
                assert not stats.overflowed
                assert stats.queued + (stats.dropped if policy == "drop_newest" else 0) == count


# trio-websocket 0.12 leaves its client socket to the garbage collector after this close (the
# address is the client's, not the server's).
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in.*socket.socket:pytest.PytestUnraisableExceptionWarning"
)
async def test_a_stalled_client_with_the_close_policy_is_closed_1008_too_slow() -> None:
    subs: list[Subscription] = []
    count = 20_000
    with trio.fail_after(60):
        async with trio_ws.open_broadcast() as hub, serving(fanout_app(hub, subs)) as url:
            async with open_websocket_url(
                f"{url}/sub?backlog=16&policy=close", message_queue_size=1
            ) as stalled:
                await wait_for(lambda: len(subs) == 1)
                for i in range(count):
                    await hub.publish("t", f"{i} {MESSAGE}")
                    await (
                        trio.lowlevel.checkpoint()
                    )  # the session keeps up until the client's socket is full
                    if subs[0].statistics().overflowed:
                        break
                assert subs[0].statistics().received > 16, "overflowed before the socket filled"
                assert subs[0].statistics().overflowed
                assert hub.statistics().overflow_closes == 1
                # The session ends although the client still reads nothing.
                await wait_for(lambda: hub.statistics().subscriptions == 0)
                # Once it reads again, the client finds what was sent, then the end: the
                # 1008 "too slow" close frame, or, where trio_ws.serve's data plane could not
                # write that frame to the stalled socket within close_timeout, an aborted
                # connection (1006). Either way the session recorded 1008.
                try:
                    with pytest.raises(ConnectionClosed) as closed:
                        while True:
                            await stalled.get_message()
                    assert closed.value.reason is not None
                    seen = (closed.value.reason.code, closed.value.reason.reason)
                    del closed  # its traceback holds the client's connection
                    assert seen in {(1008, "too slow"), (1006, None)}, seen
                finally:
                    del stalled
    gc.collect()  # collect the client's socket here, under this test's warning filter


@pytest.mark.parametrize("data_plane", [True, False], ids=["data-plane", "hypercorn-send"])
@pytest.mark.parametrize("seed", range(3))
async def test_every_returned_publish_reaches_every_client_once_in_order_on_both_paths(
    seed: int, data_plane: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishes cancelled at random, one client reading along, one stalled until the end.

    Under the data plane, ``forward`` takes two paths: while it waits with nothing queued and
    the socket takes the frame, the publisher writes it at once (``DataPlane.send_data_now``);
    otherwise (the stalled client's outbound buffer is above its high-water mark, or
    ``forward`` is still sending) the message waits in the backlog for ``forward``. Both
    must keep each client's stream exactly the publishes that returned, in order.
    """
    rng = random.Random(seed)
    written_at_once = [0]
    send_data_now = DataPlane.send_data_now

    def counting_send_data_now(self: DataPlane, data: str | bytes) -> bool:
        taken = send_data_now(self, data)
        written_at_once[0] += taken
        return taken

    monkeypatch.setattr(DataPlane, "send_data_now", counting_send_data_now)
    subs: list[Subscription] = []
    filler = "y" * 16_000  # 300 of them fill the loopback buffers of the stalled client
    returned: list[str] = []
    with trio.fail_after(60):
        async with (
            trio_ws.open_broadcast() as hub,
            serving(fanout_app(hub, subs), data_plane=data_plane) as url,
            open_websocket_url(f"{url}/sub?backlog=1000&policy=close") as reader,
            open_websocket_url(f"{url}/sub?backlog=1000&policy=close") as stalled,
        ):
            await wait_for(lambda: len(subs) == 2)
            got: dict[str, list[str]] = {"reader": [], "stalled": []}

            async def read(name: str, ws: WebSocketConnection, start: trio.Event) -> None:
                await start.wait()
                while True:
                    message = await ws.get_message()
                    assert isinstance(message, str)
                    got[name].append(message.split(" ", 1)[0])

            published = trio.Event()
            async with trio.open_nursery() as nursery:
                at_once = trio.Event()
                at_once.set()
                nursery.start_soon(read, "reader", reader, at_once)
                nursery.start_soon(read, "stalled", stalled, published)
                for i in range(300):
                    with trio.move_on_after(rng.choice([0, 0.0005, 1])):
                        if rng.random() < 0.3:
                            await trio.sleep(0.001)
                        await hub.publish("t", f"m{i} {filler}")
                        returned.append(f"m{i}")
                published.set()
                await wait_for(
                    lambda: len(got["reader"]) == len(got["stalled"]) == len(returned), 30
                )
                nursery.cancel_scope.cancel()
            assert got["reader"] == returned
            assert got["stalled"] == returned
            for sub in subs:
                assert sub.statistics().dropped == 0
            delivered = hub.statistics().delivered
    assert delivered == 2 * len(returned)
    if data_plane:
        # Both paths were taken: at once while the socket had room, queued after.
        assert 0 < written_at_once[0] < delivered
    else:
        assert written_at_once[0] == 0


async def test_forward_sends_through_a_subclass_that_overrides_send_text() -> None:
    """The publisher's direct write is only for trio_ws's own send methods."""

    class Prefixed(WebSocket):
        async def send_text(self, data: str) -> None:
            await super().send_text(f"> {data}")

    subs: list[Subscription] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        ws = Prefixed(scope, receive, send)
        async with ws:
            await ws.accept()
            async with hub.subscribe("t") as sub:
                subs.append(sub)
                ws.start_soon(forward, sub, ws)
                await ws.wait_disconnected()

    with trio.fail_after(20):
        async with trio_ws.open_broadcast() as hub, serving(app) as url:  # type: ignore[arg-type]
            async with open_websocket_url(f"{url}/") as client:
                await wait_for(lambda: len(subs) == 1)
                await hub.publish("t", "a")
                await hub.publish("t", "b")
                assert await client.get_message() == "> a"
                assert await client.get_message() == "> b"


@pytest.mark.parametrize(
    ("data_plane", "slow"),
    [(True, False), (False, False), (False, True)],
    ids=["data-plane", "hypercorn-send", "hypercorn-send-slow-reader"],
)
@pytest.mark.parametrize("seed", range(3))
async def test_forward_cancelled_at_random_points_and_restarted_loses_and_repeats_nothing(
    seed: int, data_plane: bool, slow: bool
) -> None:
    """``forward`` cancelled while it waits for a message, before its send, or while the send
    waits for the client, then started again on the same subscription: the client gets every
    message once, in order. A message taken whose send had not begun goes back to the front.

    Under the data plane a send cancelled while it waits for a client that stopped reading
    aborts the connection (the frame was queued: nothing is lost or repeated on a connection
    that is gone), so that variant's client reads promptly; under Hypercorn's HTTP/1.1 send the
    write is shielded and completes, and the cancellation arrives after it.
    (``test_broadcast_h2.py``: a send cancelled under way is not repeated.)
    """
    rng = random.Random(seed)
    subs: list[Subscription] = []
    cancelled = [0]

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        async with hub.subscribe("t", max_backlog=10_000) as sub:
            subs.append(sub)

            async def forward_with_pauses() -> None:
                while True:
                    with trio.move_on_after(rng.choice([0, 0.0002, 0.001, 0.005])):
                        await forward(sub, ws)
                        return
                    cancelled[0] += 1

            ws.start_soon(forward_with_pauses)
            await ws.wait_disconnected()

    filler = "y" * (16_000 if slow else 100)
    count = 400
    with trio.fail_after(60):
        async with (
            trio_ws.open_broadcast() as hub,
            serving(Router([WebSocketRoute("/sub", handler)]), data_plane=data_plane) as url,
            open_websocket_url(f"{url}/sub") as client,
        ):
            await wait_for(lambda: len(subs) == 1)
            got: list[int] = []

            done = trio.Event()

            async def read() -> None:
                while (message := await client.get_message()) != "end":
                    assert isinstance(message, str)
                    got.append(int(message.split(" ", 1)[0]))
                    if slow and rng.random() < 0.05:
                        await trio.sleep(0.01)  # the socket's buffers fill meanwhile
                done.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(read)
                for i in range(count):
                    await hub.publish("t", f"{i} {filler}")
                    if rng.random() < 0.1:
                        await trio.sleep(0.001)
                while not done.is_set():  # an "end" lost like any message must not hang
                    await hub.publish("t", "end")
                    with trio.move_on_after(0.2):
                        await done.wait()
            assert got == list(range(count))
            assert subs[0].statistics().dropped == 0
    assert cancelled[0] > 10
