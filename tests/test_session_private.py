"""Pins for the trio private names the session relies on (see trio_ws/_session.py's docstring).

Each test fails by name when a trio upgrade moves one, instead of a scenario far away; the
session itself falls back (a checkpoint after every send, reading ahead with receive_nowait).
"""

from __future__ import annotations

from collections import deque

import trio
import trio.lowlevel
import trio.testing

from trio_ws import _session


async def test_task_counts_schedule_points() -> None:
    # Task._schedule_points: incremented at every yield to the run loop. The session compares
    # it before and after the server's send to know whether the send yielded.
    task = trio.lowlevel.current_task()
    before = task._schedule_points
    await trio.lowlevel.checkpoint()
    assert task._schedule_points == before + 1
    assert _session._COUNTS_SCHEDULE_POINTS


async def test_memory_channel_state_has_a_buffer_and_blocked_senders() -> None:
    # MemoryReceiveChannel._state.data (the buffer, a deque) and .send_tasks (senders blocked
    # on a full buffer): the session looks at the buffer's end for a queued disconnect.
    send, receive = trio.open_memory_channel[int](1)
    state = receive._state
    assert isinstance(state.data, deque)
    send.send_nowait(1)
    assert list(state.data) == [1]
    assert not state.send_tasks
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send.send, 2)
        await trio.testing.wait_all_tasks_blocked()
        assert len(state.send_tasks) == 1
        assert receive.receive_nowait() == 1
    assert _session._peekable_state(receive.receive) is state


def test_channel_receive_is_recognised() -> None:
    _, receive = trio.open_memory_channel[int](1)
    assert _session._is_channel_receive(receive.receive)

    async def opaque() -> int:  # pragma: no cover - never called
        return 0

    assert not _session._is_channel_receive(opaque)


def test_session_and_data_plane_agree_on_the_keys_between_them() -> None:
    # The data plane sits below the session in the layers and cannot import it, and the session
    # must not import Hypercorn's side: the two spell the contract's keys separately.
    from trio_ws import _dataplane, _dataplane_read

    assert _session.DATAPLANE_EXTENSION == _dataplane.DATAPLANE_EXTENSION
    assert _session.CLOSED_BY_KEY == _dataplane_read.CLOSED_BY_KEY == _dataplane.CLOSED_BY_KEY
