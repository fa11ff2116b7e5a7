"""examples/trio_websocket_*.py served by real Hypercorn (trio worker), with real clients.

The examples fail on any error in the server's log. Real sockets, so the real clock: every
wait is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import httpx
import pytest
import trio

from examples import trio_websocket_echo, trio_websocket_nursery
from tests.hypercorn_harness import hypercorn_server, trio_websocket_client
from tests.server_log import ServerLog
from tests.test_interop import Script, Seen, talk_trio_websocket, talk_websockets

TIMEOUT = 10.0


@pytest.fixture(autouse=True)
def _fail_on_server_tracebacks(server_log: ServerLog) -> None:
    """As every example test: fail on a traceback in the server's log (tests/server_log.py)."""


@pytest.mark.parametrize("talk", [talk_trio_websocket, talk_websockets])
async def test_echo_example(talk: object) -> None:
    sent = ("hello", b"\x00\xff", "")
    with trio.fail_after(TIMEOUT):
        async with hypercorn_server(trio_websocket_echo.app) as url:
            seen = await talk(url + "/", Script(sent, echo=True, close=(1000, "")))  # type: ignore[operator]
    assert seen == Seen(replies=list(sent), code=1000, reason="")


async def test_nursery_example_ticks_shouts_and_serves_http(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trio_websocket_nursery, "TICK_SECONDS", 0.01)
    with trio.fail_after(TIMEOUT):
        async with hypercorn_server(trio_websocket_nursery.app) as url:
            async with trio_websocket_client(url + "/clock") as ws:
                assert await ws.get_message() == "tick 0"
                await ws.send_message("hi")
                ticks = 1
                while (message := await ws.get_message()) != "HI":
                    assert message == f"tick {ticks}"
                    ticks += 1
            async with httpx.AsyncClient() as http:
                response = await http.get("http://" + url.removeprefix("ws://") + "/health")
    assert (response.status_code, response.text) == (200, "ok")
