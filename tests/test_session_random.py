"""Randomized cancellation: receives and sends cancelled at random points lose nothing.

A client streams numbered messages at random (virtual) times while the application receives
and sends under random deadlines, with the server's ``send`` randomly slow so cancellations
land inside it too. Whatever the schedule, every message arrives exactly once and in order,
every send either went out whole or not at all (never twice), the state stays valid, and no
task outlives the session.
"""

from __future__ import annotations

import itertools

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.session_fakes import FakeServer
from trio_ws import WebSocket, WebSocketDisconnect, WebSocketState

N_MESSAGES = 25

operation = st.tuples(
    st.sampled_from(["receive", "send"]),
    st.one_of(st.none(), st.floats(min_value=0, max_value=3)),  # deadline, None: no deadline
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run, so CI failures are reproducible
)
@given(
    channel_receive=st.booleans(),
    compression=st.booleans(),
    client_gaps=st.lists(
        st.floats(min_value=0, max_value=2), min_size=N_MESSAGES, max_size=N_MESSAGES
    ),
    send_delays=st.lists(st.sampled_from([0, 0, 0.5, 2]), min_size=1, max_size=8),
    operations=st.lists(operation, min_size=1, max_size=60),
    max_queued=st.integers(min_value=1, max_value=8),
)
def test_random_cancellation_loses_and_duplicates_nothing(
    channel_receive: bool,
    compression: bool,
    client_gaps: list[float],
    send_delays: list[float],
    operations: list[tuple[str, float | None]],
    max_queued: int,
) -> None:
    headers = [(b"sec-websocket-extensions", b"permessage-deflate")] if compression else []
    server = FakeServer(channel_receive=channel_receive, queue_size=4, headers=headers)
    delays = iter(send_delays * 100)

    async def slow_send(message: dict[str, object]) -> None:
        if message["type"] == "websocket.send":
            await trio.sleep(next(delays))

    received: list[str] = []
    attempted: list[str] = []
    refused: list[str] = []  # raised WebSocketDisconnect: the client had left
    returned_sends: list[str] = []

    async def client() -> None:
        await server.accepted.wait()
        for i, gap in enumerate(client_gaps):
            await trio.sleep(gap)
            await server.client_text(str(i))
        await server.client_disconnect(1000)

    async def main() -> None:
        server.send_hook = slow_send
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client)
            async with WebSocket(
                server.scope,
                server.receive,
                server.send,
                max_queued_messages=max_queued,
                on_inbox_full="block",  # backpressure: nothing may be dropped
            ) as ws:
                await ws.accept()
                for number, (kind, deadline) in enumerate(operations):
                    with trio.move_on_after(1e9 if deadline is None else deadline):
                        try:
                            if kind == "receive":
                                received.append(await ws.receive_text())
                            else:
                                attempted.append(f"s{number}")
                                await ws.send_text(f"s{number}")
                                returned_sends.append(f"s{number}")
                        except WebSocketDisconnect:
                            if kind == "send":
                                refused.append(f"s{number}")
                            break
                    assert ws.client_state in (
                        WebSocketState.CONNECTED,
                        WebSocketState.DISCONNECTED,
                    )
                    assert ws.application_state is WebSocketState.CONNECTED
                received.extend([text async for text in ws.iter_text()])
                stats = ws.statistics()
                assert stats.queued_in == 0
            assert ws.statistics().helper_tasks == 0
            assert not ws.statistics().pump_running

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    assert received == [str(i) for i in range(N_MESSAGES)]
    sent = server.data_sent()
    assert len(sent) == len(set(sent)), "a send went out twice"
    assert sent == sorted(sent, key=lambda s: int(str(s)[1:])), "sends out of order"
    # Shielded (compression) or not, a send that returned went out whole, and one that was
    # cancelled went out not at all: shielded sends check for cancellation before they start.
    assert sent == returned_sends
    assert not set(refused) & set(sent)
    assert set(returned_sends) <= set(attempted)
    assert server.close_sent() is None  # the client left first


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    channel_receive=st.booleans(),
    bursts=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=8),
    answers=st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=10),
    receivers=st.integers(min_value=1, max_value=3),
    deadlines=st.lists(
        st.one_of(st.none(), st.floats(min_value=0.001, max_value=0.5)), min_size=1, max_size=10
    ),
    watcher=st.booleans(),
    max_queued=st.integers(min_value=1, max_value=8),
)
def test_random_pipelining_delivers_everything_once_and_never_closes_1008(
    channel_receive: bool,
    bursts: list[int],
    answers: list[int],
    receivers: int,
    deadlines: list[float | None],
    watcher: bool,
    max_queued: int,
) -> None:
    """Issue 7 item 2: a client sends bursts of random size without reading; one or more
    receivers take each message, answer it a random number of times, under random deadlines.
    Every message arrives exactly once, the session never closes for overflow (with the default
    on_inbox_full="close"), and every answer that returned went out."""
    total = sum(bursts)
    server = FakeServer(channel_receive=channel_receive, queue_size=4)
    server.echo_close = False
    received: list[str] = []
    returned: list[str] = []
    answer_counts = itertools.cycle(answers)
    deadline_values = itertools.cycle(deadlines)

    async def client() -> None:
        await server.accepted.wait()
        number = 0
        for size in bursts:
            for _ in range(size):
                await server.client_text(str(number))
                number += 1
            await trio.sleep(0.1)
        while len(received) < total:  # noqa: ASYNC110 (a scripted client, virtual time)
            await trio.sleep(0.1)
        await server.client_disconnect(1000)

    async def main() -> None:
        with trio.fail_after(3600):  # virtual seconds: a lost message fails, never hangs
            await converse()

    async def converse() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client)
            async with WebSocket(
                server.scope, server.receive, server.send, max_queued_messages=max_queued
            ) as ws:
                await ws.accept()
                if watcher:
                    ws.start_soon(ws.wait_disconnected)  # makes the pump read ahead

                async def receiver() -> None:
                    while True:
                        deadline = next(deadline_values)
                        with trio.move_on_after(1e9 if deadline is None else deadline):
                            try:
                                message = await ws.receive_text()
                            except WebSocketDisconnect:
                                return
                            received.append(message)
                            for k in range(next(answer_counts)):
                                await ws.send_text(f"{message}.{k}")
                                returned.append(f"{message}.{k}")

                async with trio.open_nursery() as receiving:
                    for _ in range(receivers):
                        receiving.start_soon(receiver)
                assert ws.close_code == 1000, (ws.close_code, ws.close_reason)
                assert ws.closed_by == "client"
                assert ws.statistics().queued_in == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    assert sorted(received, key=int) == [str(i) for i in range(total)]
    if receivers == 1:
        assert received == [str(i) for i in range(total)]
    assert server.close_sent() is None  # never 1008: the client left first
    assert server.data_sent() == returned
