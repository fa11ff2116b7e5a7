"""examples/json_typed.py served by real Hypercorn (trio worker), with real clients.

The example fails on any error in the server's log. Real sockets, so the real clock: every
wait is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import json

import pytest
import trio

pytest.importorskip("msgspec")

from examples.json_typed import app
from tests.hypercorn_harness import hypercorn_server, trio_websocket_client
from tests.server_log import ServerLog
from tests.test_interop import Script, Seen, talk_trio_websocket, talk_websockets

TIMEOUT = 10.0


@pytest.fixture(autouse=True)
def _fail_on_server_tracebacks(server_log: ServerLog) -> None:
    """As every example test: fail on a traceback in the server's log (tests/server_log.py)."""


async def test_typed_chat_replies() -> None:
    with trio.fail_after(TIMEOUT):
        async with hypercorn_server(app) as url:
            async with trio_websocket_client(url + "/chat") as ws:
                await ws.send_message('{"type": "join", "room": "lobby"}')
                await ws.send_message('{"type": "say", "text": "hi ✓"}')
                reply = json.loads(await ws.get_message())
    assert reply == {"type": "said", "room": "lobby", "text": "hi ✓"}


@pytest.mark.parametrize("talk", [talk_trio_websocket, talk_websockets])
@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ('{"type": "shout", "text": "HI"}', "JSON does not match Join | Say"),
        ('{"type": "say"}', "JSON does not match Join | Say"),
        ("{", "invalid JSON"),
    ],
)
async def test_a_bad_message_closes_1007(talk: object, message: str, reason: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with hypercorn_server(app) as url:
            seen = await talk(url + "/chat", Script((message,)))  # type: ignore[operator]
    assert seen == Seen(code=1007, reason=reason)
