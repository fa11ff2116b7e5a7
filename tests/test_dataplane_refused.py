"""A session's send that serve's data plane refuses reports how the connection really ended.

The kind: the connection is over, but the app's channel is full, so the disconnect message is
not in it yet; the app sends. The data plane's refusal carries the disconnect it decided, and
the session raises that code and reason, not a made-up 1006. Members: the client's close with a
code and reason, a protocol error (1002) and an oversize message (1009), each behind a full
channel. Real ``trio_ws.serve`` on 127.0.0.1, raw-socket clients.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
from hypercorn.config import Config
from wsproto.events import CloseConnection, TextMessage

import trio_ws
from tests.test_dataplane import TIMEOUT, RawClient, frame, serving

QUEUE = 4  # Hypercorn's max_app_queue_size for these tests: the channel holds 4 messages


def app_that_waits(outcome: dict[str, Any], go: trio.Event, done: trio.Event) -> Any:
    async def handler(ws: trio_ws.WebSocket) -> None:
        await ws.accept()
        await go.wait()  # the client's messages and its ending fill the channel meanwhile
        try:
            await ws.send_text("late")
        except trio_ws.WebSocketDisconnect as exc:
            outcome["code"], outcome["reason"] = exc.code, exc.reason
            outcome["known"] = (ws.close_code, ws.close_reason, ws.closed_by)
        outcome["messages"] = []
        try:
            while True:
                outcome["messages"].append(await ws.receive_text())
        except trio_ws.WebSocketDisconnect as exc:
            outcome["final"] = (exc.code, exc.reason, ws.closed_by)
            done.set()

    return trio_ws.websocket_app(handler, on_inbox_full="block")


def config() -> Config:
    cfg = Config()
    cfg.max_app_queue_size = QUEUE
    cfg.websocket_max_message_size = 1000
    return cfg


@pytest.mark.parametrize(
    ("ending", "code", "reason", "closed_by"),
    [
        (CloseConnection(4001, "bye now"), 4001, "bye now", "client"),
        (frame(0x1, b"unmasked", mask=False), 1002, None, "server"),
        (frame(0x1, b"x" * 2000), 1009, None, "server"),
    ],
    ids=["client-close", "protocol-error", "too-big"],
)
async def test_a_refused_send_behind_a_full_channel_reports_the_real_ending(
    ending: Any, code: int, reason: str | None, closed_by: str
) -> None:
    outcome: dict[str, Any] = {}
    go, done = trio.Event(), trio.Event()
    async with serving(app_that_waits(outcome, go, done), config()) as address:
        async with RawClient.connect(address) as client:
            for i in range(QUEUE):
                await client.send(TextMessage(f"m{i}"))
            if isinstance(ending, CloseConnection):
                await client.send(ending)
            else:
                await client.send_raw(ending)
            events = await client.events()
            assert any(isinstance(e, CloseConnection) for e in events) or events[-1] is None
            await trio.sleep(0.2)  # the server has decided; the channel is still full
            go.set()
            with trio.fail_after(TIMEOUT):
                await done.wait()
    assert outcome["code"] == code
    if reason is not None:
        assert outcome["reason"] == reason
    # The attributes agree with the exception at once, before the disconnect is read.
    assert outcome["known"] == (code, outcome["reason"], closed_by)
    # Nothing the client sent before its ending is lost, and the final disconnect agrees.
    assert outcome["messages"] == [f"m{i}" for i in range(QUEUE)]
    assert outcome["final"][0] == code
    assert outcome["final"][2] == closed_by
