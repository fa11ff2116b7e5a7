"""examples/starlette_app.py and examples/starlette_fastapi.py under real Hypercorn (trio
worker), with real clients. Skipped on Python 3.10 (Starlette 1.10 and FastAPI need 3.11).

The examples fail on any error in the server's log. Real sockets, so the real clock: every
wait is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("starlette", reason="Starlette 1.10 needs Python 3.11")
pytest.importorskip("fastapi", reason="FastAPI needs Python 3.11")

import httpx
import trio

from examples import starlette_app, starlette_fastapi
from tests.hypercorn_harness import hypercorn_server, trio_websocket_client
from tests.server_log import ServerLog
from tests.test_interop import Script, Seen, talk_trio_websocket, talk_websockets

TIMEOUT = 10.0


@pytest.fixture(autouse=True)
def _fail_on_server_tracebacks(server_log: ServerLog) -> None:
    """As every example test: fail on a traceback in the server's log (tests/server_log.py)."""


async def test_starlette_ticker_ticks_and_echoes() -> None:
    with trio.fail_after(TIMEOUT):
        async with hypercorn_server(starlette_app.app) as url:
            async with trio_websocket_client(url + "/ticker") as ws:
                assert await ws.get_message() == "tick 0"
                await ws.send_message("hi")
                while (message := await ws.get_message()) != "echo: hi":
                    assert isinstance(message, str)
                    assert message.startswith("tick ")


async def test_starlette_homepage_and_mounted_router() -> None:
    with trio.fail_after(TIMEOUT):
        async with hypercorn_server(starlette_app.app) as url:
            async with httpx.AsyncClient() as http:
                response = await http.get("http://" + url.removeprefix("ws://") + "/")
            seen = await talk_websockets(
                url + "/live/room/lobby", Script(("hi",), echo=True, close=(1000, ""))
            )
    assert response.json() == {"ticker": url + "/ticker", "room": url + "/live/room/lobby"}
    assert seen == Seen(replies=["lobby: hi"], code=1000, reason="")


async def test_fastapi_chat_answers_json_and_closes_1007_on_bad_json() -> None:
    with trio.fail_after(TIMEOUT):
        async with hypercorn_server(starlette_fastapi.app) as url:
            async with trio_websocket_client(url + "/chat?name=ann") as ws:
                good = [json.loads(await ws.get_message())]
                await ws.send_message('{"text": "hello"}')
                good.append(json.loads(await ws.get_message()))
            bad = await talk_trio_websocket(url + "/chat?name=bob", Script(("not json",)))
            missing = await talk_trio_websocket(url + "/chat", Script())
            mounted = await talk_websockets(
                url + "/live/echo", Script(("x",), echo=True, close=(1000, ""))
            )
    assert good == [{"hello": "ann"}, {"from": "ann", "text": "hello"}]
    assert bad.replies == ['{"hello":"bob"}']
    assert (bad.code, bad.reason) == (1007, "invalid JSON")
    # FastAPI refuses a handshake without the required query parameter: it closes before
    # accept (with 1008), which Hypercorn answers with HTTP 403.
    assert missing.status == 403
    assert mounted == Seen(replies=["x"], code=1000, reason="")
