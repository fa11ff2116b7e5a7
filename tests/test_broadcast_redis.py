"""The Redis broadcast backend against a real redis-server (tests/redis_server.py).

Real sockets and processes, so the real clock; every wait is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import gc
import json
import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

import trio_ws
from tests.redis_server import RedisServer, free_port, redis_server
from trio_ws.broadcast import BroadcastUnavailable, Hub, Subscription

__all__ = ["redis_server"]  # the fixture, imported for pytest

# coredis 6.9 leaves the anyio memory streams of a failed connection for the garbage collector.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in.*MemoryObject:pytest.PytestUnraisableExceptionWarning"
    ),
]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _collect_coredis_leftovers() -> Iterator[None]:
    """Collect what coredis left for the garbage collector here, under this module's filters,
    rather than in whichever test happens to run the next collection."""
    yield
    gc.collect()


async def next_message(sub: Subscription, limit: float = 5) -> str | bytes:
    with trio.fail_after(limit):
        return await sub.__anext__()


async def wait_until(condition: Callable[[], bool], limit: float = 10) -> None:
    """Poll ``condition`` (state of a hub or of another process: no event to wait on)."""
    with trio.fail_after(limit):
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.01)


async def wait_connected(hub: Hub, limit: float = 10) -> None:
    await wait_until(lambda: hub.statistics().connected, limit)


async def test_two_hubs_share_messages_through_redis_with_their_types(
    redis_server: RedisServer,
) -> None:
    async with (
        trio_ws.open_broadcast(redis_server.url) as a,
        trio_ws.open_broadcast(redis_server.url) as b,
    ):
        assert a.statistics().backend == "redis"
        assert a.statistics().state == "connected"
        async with a.subscribe("room", "other") as sub:
            for message in ["hello", b"\x00\xff bytes", "\x00 text with a NUL", "", b""]:
                await b.publish("room", message)
                got = await next_message(sub)
                assert (got, type(got)) == (message, type(message))
            await b.publish("other", "second channel")
            assert await next_message(sub) == "second channel"
        # The last subscription left: the hub unsubscribes from Redis.
        assert a.statistics().channels == 0


async def test_messages_from_other_redis_clients_arrive_as_text_or_bytes(
    redis_server: RedisServer,
) -> None:
    import coredis

    async with trio_ws.open_broadcast(redis_server.url) as hub, hub.subscribe("room") as sub:
        async with coredis.Redis.from_url(redis_server.url) as client:
            await client.publish("room", "plain text")
            await client.publish("room", b"\xff\xfe not utf-8")
        assert await next_message(sub) == "plain text"
        assert await next_message(sub) == b"\xff\xfe not utf-8"


async def test_unreachable_redis_fails_open_broadcast_with_a_clear_error() -> None:
    pytest.importorskip("coredis")
    with trio.fail_after(10), pytest.raises(BroadcastUnavailable, match="cannot reach Redis"):
        async with trio_ws.open_broadcast(f"redis://127.0.0.1:{free_port()}/0"):
            pass  # pragma: no cover


async def test_redis_restart_mid_stream_reconnects_resubscribes_and_tells_subscribers(
    redis_server: RedisServer,
) -> None:
    async with (
        trio_ws.open_broadcast(redis_server.url) as hub,
        trio_ws.open_broadcast(redis_server.url) as publisher,
    ):
        async with hub.subscribe("ticks", max_backlog=10_000) as sub:
            for i in range(20):
                await publisher.publish("ticks", f"before {i}")
            assert [await next_message(sub) for _ in range(20)] == [
                f"before {i}" for i in range(20)
            ]

            redis_server.kill()
            await wait_until(lambda: not hub.statistics().connected, 5)
            stats = hub.statistics()
            assert stats.state == "reconnecting"
            assert stats.interruptions == 1
            assert stats.last_error is not None
            assert sub.statistics().interruptions == 1
            assert not sub.statistics().backend_connected
            with pytest.raises(BroadcastUnavailable):
                await publisher.publish("ticks", "while down")
            # A subscription begun while Redis is down is subscribed on reconnect.
            async with hub.subscribe("late") as late:
                await trio.to_thread.run_sync(redis_server.start)
                # Delivery resumes within a few seconds (backoff is at most 2 s).
                await wait_connected(hub, limit=5)
                await wait_connected(publisher, limit=5)
                with trio.fail_after(5):
                    while True:
                        try:
                            await publisher.publish("ticks", "after")
                            await publisher.publish("late", "late too")
                            break
                        except BroadcastUnavailable:  # pragma: no cover - pool catching up
                            await trio.sleep(0.05)
                assert await next_message(sub) == "after"
                assert await next_message(late) == "late too"
                assert late.statistics().interruptions == 0
            assert sub.statistics().interruptions == 1
            assert hub.statistics().state == "connected"


@pytest.mark.parametrize("seed", range(3))
async def test_cancelled_publishes_and_reads_on_redis_never_duplicate_or_lose_a_promised_message(
    redis_server: RedisServer, seed: int
) -> None:
    """A publish that returned arrives once, in order; a cancelled one at most once."""
    rng = random.Random(seed)
    async with (
        trio_ws.open_broadcast(redis_server.url) as hub,
        trio_ws.open_broadcast(redis_server.url) as publisher,
    ):
        got: list[str] = []
        async with hub.subscribe("x", max_backlog=100_000) as sub:
            async with trio.open_nursery() as nursery:

                async def read() -> None:
                    while True:
                        with trio.move_on_after(rng.choice([0, 0.0001, 0.001, 5])):
                            message = await sub.__anext__()
                            assert isinstance(message, str)
                            got.append(message)

                nursery.start_soon(read)
                returned: list[str] = []
                attempted: list[str] = []
                for i in range(300):
                    with trio.move_on_after(rng.choice([0, 0.00005, 0.0002, 5])):
                        attempted.append(f"m{i}")
                        await publisher.publish("x", f"m{i}")
                        returned.append(f"m{i}")
                await publisher.publish("x", "end")
                await wait_until(lambda: bool(got) and got[-1] == "end")
                nursery.cancel_scope.cancel()
        got.pop()
        assert len(got) == len(set(got)), "a message arrived twice"
        assert got == sorted(got, key=lambda m: int(m[1:])), "out of order"
        assert set(returned) <= set(got), "a publish that returned was lost"
        assert set(got) <= set(attempted)
        # A cancelled reader loses nothing: the subscription kept it.
        assert sub.statistics().dropped == 0


# ------------------------------------------------------------------ across processes


@asynccontextmanager
async def serve_chat_process(port: int, redis_url: str, log: Path) -> AsyncIterator[str]:
    """examples.chat under trio_ws.serve in a child process, on Redis; yields its ws:// URL.

    Fails if the process's log shows a traceback.
    """
    code = (
        "import functools, trio, trio_ws, examples.chat as chat; "
        f"trio.run(functools.partial(trio_ws.serve, chat.app, host='127.0.0.1', port={port}))"
    )
    env = {**os.environ, "TRIO_WS_BROADCAST_URL": redis_url, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        with trio.fail_after(20):
            while True:
                assert process.poll() is None, await trio.Path(log).read_text()
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", port)
                except OSError:
                    await trio.sleep(0.05)
                    continue
                await stream.aclose()
                break
        yield f"ws://127.0.0.1:{port}"
    finally:
        process.terminate()
        with trio.move_on_after(10) as waited:
            await process.wait()
        if waited.cancelled_caught:  # pragma: no cover
            process.kill()
            await process.wait()
    text = await trio.Path(log).read_text()
    assert "Traceback" not in text, text


async def chat_member(
    url: str, name: str, joined: trio.Event, go: trio.Event, count: int, expected: int
) -> list[dict[str, str]]:
    async with open_websocket_url(f"{url}/ws/shared?name={name}") as ws:
        texts: list[dict[str, str]] = []
        while True:
            event = json.loads(await ws.get_message())
            if event.get("event") == "join" and event["user"] == name:
                break
        joined.set()
        await go.wait()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_say, ws, name, count)
            while len(texts) < expected:
                event = json.loads(await ws.get_message())
                if "text" in event:
                    texts.append(event)
        return texts


async def _say(ws: WebSocketConnection, name: str, count: int) -> None:
    for i in range(count):
        await ws.send_message(f"{name} {i}")


async def test_two_serve_processes_on_one_redis_deliver_every_message_once_in_order(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    count = 40
    names = ["a1", "a2", "b1", "b2"]
    results: dict[str, list[dict[str, str]]] = {}
    with trio.fail_after(60):
        async with serve_chat_process(ports[0], redis_server.url, tmp_path / "a.log") as url_a:
            async with serve_chat_process(ports[1], redis_server.url, tmp_path / "b.log") as url_b:
                go = trio.Event()
                joined = {name: trio.Event() for name in names}

                async def member(name: str) -> None:
                    url = url_a if name.startswith("a") else url_b
                    results[name] = await chat_member(
                        url, name, joined[name], go, count, count * len(names)
                    )

                async with trio.open_nursery() as nursery:
                    for name in names:
                        nursery.start_soon(member, name)
                    for event in joined.values():
                        await event.wait()
                    go.set()
    for name in names:
        texts = results[name]
        assert len(texts) == count * len(names)
        for sender in names:
            from_sender = [t["text"] for t in texts if t["user"] == sender]
            assert from_sender == [f"{sender} {i}" for i in range(count)], (name, sender)
