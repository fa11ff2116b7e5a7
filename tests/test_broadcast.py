"""The in-memory broadcast hub: delivery, overflow policies, lifetimes, cancellation.

Everything here runs in one trio run without sockets, so it is deterministic: the clock is
trio's autojump clock where time matters, and ``wait_all_tasks_blocked`` orders the tasks.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
import trio
import trio.testing

import trio_ws
import trio_ws.broadcast._hub
from trio_ws.broadcast import (
    Hub,
    HubStatistics,
    Subscription,
    SubscriptionOverflow,
    SubscriptionStatistics,
)


async def drain(sub: Subscription) -> list[str | bytes]:
    """Every message already in ``sub``'s backlog, without waiting for more."""
    return [await sub.__anext__() for _ in range(sub.statistics().backlog)]


async def test_publish_reaches_every_subscription_of_the_channel_with_its_type() -> None:
    async with trio_ws.open_broadcast() as hub:
        async with (
            hub.subscribe("blue") as a,
            hub.subscribe("blue") as b,
            hub.subscribe("red") as c,
        ):
            await hub.publish("blue", "hello")
            await hub.publish("blue", b"\x00\xff")
            await hub.publish("green", "nobody listens")
            assert await drain(a) == ["hello", b"\x00\xff"]
            assert await drain(b) == ["hello", b"\x00\xff"]
            assert await drain(c) == []


async def test_one_subscription_takes_several_channels_and_items_names_them() -> None:
    async with trio_ws.open_broadcast() as hub:
        async with hub.subscribe("a", "b", "a") as sub:
            assert sub.channels == ("a", "b")
            await hub.publish("a", "1")
            await hub.publish("b", "2")
            await hub.publish("a", "3")
            pairs = []
            async for pair in sub.items():
                pairs.append(pair)
                if len(pairs) == 3:
                    break
            assert pairs == [("a", "1"), ("b", "2"), ("a", "3")]


async def test_publish_never_waits_for_a_subscriber_that_does_not_read() -> None:
    async with trio_ws.open_broadcast() as hub:
        async with hub.subscribe("t", max_backlog=5, on_overflow="drop_newest") as idle:
            with trio.testing.assert_checkpoints():
                await hub.publish("t", "0")
            with trio.fail_after(5):  # the real clock: only a bug waits here
                for i in range(1, 10_000):
                    await hub.publish("t", str(i))
            stats = idle.statistics()
            assert stats.backlog == 5
            assert stats.dropped == 10_000 - 5
            assert await drain(idle) == ["0", "1", "2", "3", "4"]


async def test_drop_oldest_keeps_the_latest_messages_and_counts_the_rest() -> None:
    async with trio_ws.open_broadcast() as hub:
        async with hub.subscribe("t", max_backlog=3, on_overflow="drop_oldest") as sub:
            for i in range(10):
                await hub.publish("t", str(i))
            assert sub.statistics().dropped == 7
            assert await drain(sub) == ["7", "8", "9"]
            assert hub.statistics().dropped == 7


async def test_close_policy_ends_the_slow_subscription_with_1008_too_slow_and_spares_others() -> (
    None
):
    async with trio_ws.open_broadcast() as hub:
        async with (
            hub.subscribe("t", max_backlog=2) as slow,
            hub.subscribe("t", max_backlog=50) as ok,
        ):
            for i in range(5):
                await hub.publish("t", str(i))
            with pytest.raises(SubscriptionOverflow) as raised:
                await slow.__anext__()
            assert isinstance(raised.value, trio_ws.WebSocketException)
            assert (raised.value.code, raised.value.reason) == (1008, "too slow")
            stats = slow.statistics()
            assert stats.overflowed
            assert stats.backlog == 0
            assert stats.dropped == 3
            assert await drain(ok) == ["0", "1", "2", "3", "4"]
            # The overflowed subscription left the channel; the other stays.
            assert hub.statistics().subscriptions == 1
            assert hub.statistics().overflow_closes == 1


@pytest.mark.parametrize(
    ("policy", "left", "dropped"),
    [
        ("drop_oldest", ["1", "2"], 1),  # the message put back is the oldest: it goes
        ("drop_newest", ["0", "1"], 1),  # it stays the next one; the newest goes
        ("close", None, 3),  # one message too many behind: the subscription ends
    ],
)
async def test_a_message_forward_puts_back_into_a_full_backlog_meets_the_overflow_policy(
    policy: str, left: list[str] | None, dropped: int
) -> None:
    """``forward`` puts a message back when its send was cancelled before the session sent
    it; if the backlog filled meanwhile, the put-back message counts as the oldest."""
    async with trio_ws.open_broadcast() as hub:
        async with hub.subscribe("t", max_backlog=2, on_overflow=policy) as sub:  # type: ignore[arg-type]
            await hub.publish("t", "0")
            taken = await sub.items().__anext__()
            await hub.publish("t", "1")
            await hub.publish("t", "2")
            sub._put_back(taken)
            stats = sub.statistics()
            assert (stats.dropped, stats.received) == (dropped, 0)
            if left is None:
                assert stats.overflowed
                with pytest.raises(SubscriptionOverflow):
                    await sub.__anext__()
            else:
                assert await drain(sub) == left


async def test_overflow_wakes_a_reader_that_waits() -> None:
    async with trio_ws.open_broadcast() as hub:
        async with hub.subscribe("t", max_backlog=1) as sub:
            await hub.publish("t", "0")
            await hub.publish("t", "1")  # overflows before anyone reads
            with pytest.raises(SubscriptionOverflow):
                await sub.__anext__()


async def test_statistics_are_frozen_snapshots() -> None:
    async with trio_ws.open_broadcast() as hub:
        async with hub.subscribe("x", max_backlog=7, on_overflow="drop_oldest") as sub:
            await hub.publish("x", "m")
            hub_stats, sub_stats = hub.statistics(), sub.statistics()
            assert isinstance(hub_stats, HubStatistics)
            assert isinstance(sub_stats, SubscriptionStatistics)
            with pytest.raises(dataclasses.FrozenInstanceError):
                hub_stats.published = 0  # type: ignore[misc]
            assert hub_stats.backend == "memory"
            assert hub_stats.connected
            assert (hub_stats.channels, hub_stats.subscriptions, hub_stats.published) == (1, 1, 1)
            assert (sub_stats.backlog, sub_stats.queued, sub_stats.received) == (1, 1, 0)
            assert (sub_stats.max_backlog, sub_stats.on_overflow) == (7, "drop_oldest")
            assert sub_stats.interruptions == 0
            assert sub_stats.backend_connected
    assert hub.statistics().state == "closed"


async def test_a_subscription_ends_with_its_block_and_with_its_task() -> None:
    async with trio_ws.open_broadcast() as hub:
        async with hub.subscribe("x") as sub:
            assert hub.statistics().subscriptions == 1
        assert hub.statistics().subscriptions == hub.statistics().channels == 0
        with pytest.raises(trio.ClosedResourceError):
            await sub.__anext__()

        async def owner() -> None:
            async with hub.subscribe("x") as mine:
                async for _ in mine:
                    pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(owner)
            await trio.testing.wait_all_tasks_blocked()
            assert hub.statistics().subscriptions == 1
            nursery.cancel_scope.cancel()
        assert hub.statistics().subscriptions == 0
        await hub.publish("x", "nobody")
        assert hub.statistics().delivered == 0


async def test_closing_the_hub_ends_iteration_and_refuses_publish() -> None:
    seen: list[str | bytes] = []
    async with trio.open_nursery() as nursery:
        async with trio_ws.open_broadcast() as hub:
            sub_ready = trio.Event()

            async def reader() -> None:
                async with hub.subscribe("x") as sub:
                    sub_ready.set()
                    async for message in sub:
                        seen.append(message)

            nursery.start_soon(reader)
            await sub_ready.wait()
            await hub.publish("x", "last")
            await trio.testing.wait_all_tasks_blocked()
    assert seen == ["last"]
    with pytest.raises(trio.ClosedResourceError):
        await hub.publish("x", "too late")
    with pytest.raises(trio.ClosedResourceError):
        async with hub.subscribe("x"):
            pass  # pragma: no cover


async def test_only_one_task_reads_a_subscription() -> None:
    async with trio_ws.open_broadcast() as hub, hub.subscribe("x") as sub:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sub.__anext__)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await sub.__anext__()
            nursery.cancel_scope.cancel()


async def test_every_async_entry_point_checkpoints() -> None:
    async with trio_ws.open_broadcast() as hub:
        with trio.testing.assert_checkpoints():
            async with hub.subscribe("x") as sub:
                pass
        async with hub.subscribe("x") as sub:
            await hub.publish("x", "m")
            with trio.testing.assert_checkpoints():
                await sub.__anext__()


async def test_bad_arguments_are_refused_at_once() -> None:
    async with trio_ws.open_broadcast() as hub:
        with pytest.raises(ValueError, match="at least one channel"):
            hub.subscribe()
        with pytest.raises(ValueError, match="max_backlog"):
            hub.subscribe("x", max_backlog=0)
        with pytest.raises(ValueError, match="on_overflow"):
            hub.subscribe("x", on_overflow="block")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await hub.publish("x", 3)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            hub.subscribe(b"x")  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="async with"):
            await hub.subscribe("x").__anext__()
    with pytest.raises(ValueError, match="redis://"):
        async with trio_ws.open_broadcast("kafka://x"):
            pass  # pragma: no cover


async def test_the_body_exception_leaves_open_broadcast_unwrapped() -> None:
    with pytest.raises(KeyError):
        async with trio_ws.open_broadcast():
            raise KeyError("mine")


async def test_a_cancelled_publish_delivers_nothing_and_a_returned_one_everything() -> None:
    async with trio_ws.open_broadcast() as hub, hub.subscribe("x", max_backlog=10) as sub:
        with trio.CancelScope() as scope:
            scope.cancel()
            await hub.publish("x", "cancelled")
        assert sub.statistics().backlog == 0
        assert hub.statistics().published == 0
        await hub.publish("x", "kept")
        assert await drain(sub) == ["kept"]


@pytest.mark.parametrize("sink", [False, True], ids=["backlog", "backlog-and-sink"])
@pytest.mark.parametrize(("readers", "waves"), [(4, 8), (12, 1), (12, 3)])
@pytest.mark.parametrize("seed", range(5))
async def test_cancelling_publishers_and_readers_at_random_loses_and_duplicates_nothing_promised(
    seed: int,
    readers: int,
    waves: int,
    sink: bool,
    autojump_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every publish that returned reaches every reader exactly once, in publish order.

    With more readers than wake-up waves, waiting readers are woken in turn, each by the one
    before it, while readers are cancelled at random (in line, or just woken).

    With ``sink``, each reader also registers a synchronous sink the way ``forward`` does for
    a session on trio_ws.serve's data plane: while the reader waits, a publish hands the
    message to the sink, which takes it, refuses it (the message is queued instead) or
    raises (likewise) at random.
    """
    monkeypatch.setattr(trio_ws.broadcast._hub, "_WAVES", waves)
    rng = random.Random(seed)
    got: list[list[str]] = [[] for _ in range(readers)]
    returned: list[str] = []

    async with trio_ws.open_broadcast() as hub:
        async with trio.open_nursery() as nursery:
            subs = [await nursery.start(_reader, hub, got[i], rng, sink) for i in range(readers)]
            for i in range(400):
                with trio.move_on_after(rng.choice([0, 0.001, 1])):
                    if rng.random() < 0.3:
                        await trio.sleep(0.002)
                    await hub.publish("x", f"m{i}")
                    returned.append(f"m{i}")
            await trio.sleep(1)
            for sub in subs:
                assert sub.statistics().backlog == 0
            assert hub._waves == 0
            assert not hub._to_wake
            nursery.cancel_scope.cancel()
    assert returned
    for seen in got:
        assert seen == returned


async def _reader(
    hub: Hub,
    into: list[str],
    rng: random.Random,
    sink: bool,
    *,
    task_status: trio.TaskStatus[Subscription] = trio.TASK_STATUS_IGNORED,
) -> None:
    def take(message: str | bytes) -> bool:
        choice = rng.random()
        if choice < 0.1:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        if choice < 0.4:
            return False
        assert isinstance(message, str)
        into.append(message)
        return True

    async with hub.subscribe("x", max_backlog=1000) as sub:
        if sink:
            sub._sink = take
            sub._sink_task = trio.lowlevel.current_task()
        task_status.started(sub)
        while True:
            # Cancelled at random: while waiting, or at the checkpoint of a ready message.
            with trio.move_on_after(rng.choice([0, 0.0005, 0.001, 10])):
                message = await sub.__anext__()
                assert isinstance(message, str)
                into.append(message)
