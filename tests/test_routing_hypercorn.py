"""A Router served by real Hypercorn (trio worker) and driven by real clients.

trio-websocket talks WebSocket over a TCP stream the test owns (not ``open_websocket_url``,
which leaks its socket when the server closes first), httpx talks HTTP. Real sockets, so the
real clock: every wait is bounded by ``trio.fail_after``, and nothing sleeps to synchronise.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
)

from tests.hypercorn_harness import Rejected, hypercorn_server, trio_websocket_client
from trio_ws import WebSocket
from trio_ws._request import Request
from trio_ws._responses import JSONResponse, Response
from trio_ws._routing import Route, Router, WebSocketRoute

if sys.version_info < (3, 11):  # pragma: no cover
    pass

TIMEOUT = 5.0
ORIGIN = "https://chat.example.com"


# ------------------------------------------------------------------------------------ clients


def http_url(ws_url: str) -> str:
    return "http://" + ws_url.removeprefix("ws://")


# ------------------------------------------------------------------------------------ the app


async def room(ws: WebSocket) -> None:
    """Greets with its own URL, then prefixes every message with the room and seat."""
    await ws.accept()
    name, seat = ws.path_params["room"], ws.path_params["seat"]
    await ws.send_text(str(ws.url_for("room", room=name, seat=seat)))
    async for text in ws.iter_text():
        await ws.send_text(f"{name}#{seat + 1}: {text}")


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    async for text in ws.iter_text():
        await ws.send_text(text)


async def private(ws: WebSocket) -> None:
    """The pre-accept authentication pattern: check a credential, deny before accepting."""
    token = ws.query_params.get("token") or ws.headers.get("authorization", "").removeprefix(
        "Bearer "
    )
    if token != "s3cret":
        await ws.deny(401, b"unauthorized", [(b"www-authenticate", b"Bearer")])
        return
    await ws.accept()
    await ws.send_text("welcome")


async def status(request: Request) -> Response:
    return JSONResponse(
        {
            "room": str(request.url_for("room", room="lobby", seat=1)),
            "self": str(request.url_for("status")),
            "method": request.method,
        }
    )


async def submit(request: Request) -> Response:
    return JSONResponse({"echo": await request.json()}, status_code=201)


def make_app() -> Router:
    return Router(
        [
            WebSocketRoute(
                "/rooms/{room}/{seat:int}",
                room,
                name="room",
                allowed_origins=[ORIGIN, "https://*.trusted.test"],
            ),
            WebSocketRoute("/small", echo, max_message_size=16),
            WebSocketRoute("/private", private),
            Route("/status", status),
            Route("/submit", submit, methods=["POST"]),
        ]
    )


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with hypercorn_server(make_app()) as url:
        yield url


# -------------------------------------------------------------------------------------- tests


async def test_ws_route_with_path_params_echoes_its_url_for(url: str) -> None:
    port = url.rpartition(":")[2]
    with trio.fail_after(TIMEOUT):
        async with trio_websocket_client(
            url + "/rooms/lobby/3", [(b"origin", ORIGIN.encode())]
        ) as ws:
            assert await ws.get_message() == f"ws://127.0.0.1:{port}/rooms/lobby/3"
            await ws.send_message("hi")
            assert await ws.get_message() == "lobby#4: hi"


async def test_wildcard_origin_and_missing_origin_are_allowed(url: str) -> None:
    with trio.fail_after(TIMEOUT):
        for headers in ([(b"origin", b"https://App.Trusted.test:443")], None):
            async with trio_websocket_client(url + "/rooms/r/0", headers) as ws:
                assert (await ws.get_message()).endswith("/rooms/r/0")


@pytest.mark.parametrize(
    "origin", [b"https://evil.test", b"http://chat.example.com", b"https://trusted.test", b"null"]
)
async def test_denied_origin_sees_403(url: str, origin: bytes) -> None:
    with trio.fail_after(TIMEOUT), pytest.raises(Rejected) as rejected:
        async with trio_websocket_client(url + "/rooms/lobby/1", [(b"origin", origin)]):
            pytest.fail("the handshake should have been refused")  # pragma: no cover
    assert rejected.value.status == 403
    assert rejected.value.body == b"Origin not allowed"


async def test_no_route_sees_404(url: str) -> None:
    with trio.fail_after(TIMEOUT), pytest.raises(Rejected) as rejected:
        async with trio_websocket_client(url + "/nowhere"):
            pytest.fail("the handshake should have been refused")  # pragma: no cover
    assert (rejected.value.status, rejected.value.body) == (404, b"Not Found")


async def test_per_route_max_message_size_closes_with_1009(url: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with trio_websocket_client(url + "/small") as ws:
            await ws.send_message("x" * 16)
            assert await ws.get_message() == "x" * 16
            await ws.send_message("y" * 17)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason.code == 1009


async def test_pre_accept_authentication(url: str) -> None:
    with trio.fail_after(TIMEOUT):
        for path, headers in [
            ("/private", None),
            ("/private?token=wrong", None),
            ("/private", [(b"authorization", b"Bearer nope")]),
        ]:
            with pytest.raises(Rejected) as rejected:
                async with trio_websocket_client(url + path, headers):
                    pytest.fail("the handshake should have been refused")  # pragma: no cover
            assert (rejected.value.status, rejected.value.body) == (401, b"unauthorized")

        for path, headers in [
            ("/private?token=s3cret", None),
            ("/private", [(b"authorization", b"Bearer s3cret")]),
        ]:
            async with trio_websocket_client(url + path, headers) as ws:
                assert await ws.get_message() == "welcome"


async def test_http_routes_with_httpx(url: str) -> None:
    base = http_url(url)
    with trio.fail_after(TIMEOUT):
        async with httpx.AsyncClient(base_url=base) as client:
            response = await client.get("/status")
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            assert response.json() == {
                "room": url + "/rooms/lobby/1",
                "self": base + "/status",
                "method": "GET",
            }
            head = await client.head("/status")
            assert (head.status_code, head.content) == (200, b"")
            # The full response's length ("HEAD" is one letter longer than "GET"), no body.
            assert int(head.headers["content-length"]) == len(response.content) + 1

            posted = await client.post("/submit", json={"zoë": [1, 2]})
            assert (posted.status_code, posted.json()) == (201, {"echo": {"zoë": [1, 2]}})

            refused = await client.get("/submit")
            assert (refused.status_code, refused.headers["allow"]) == (405, "POST")
            missing = await client.get("/nowhere")
            assert (missing.status_code, missing.text) == (404, "Not Found")
            # A WebSocket path is not an HTTP route.
            assert (await client.get("/small")).status_code == 404


async def test_lifespan_state_reaches_requests_through_hypercorn() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[dict[str, str]]:
        events.append("startup")
        yield {"greeting": "hello from lifespan"}
        events.append("shutdown")

    async def greet(request: Request) -> Response:
        return JSONResponse(request.state.greeting)

    with trio.fail_after(TIMEOUT):
        async with hypercorn_server(Router([Route("/", greet)], lifespan=lifespan)) as url:
            assert events == ["startup"]
            async with httpx.AsyncClient() as client:
                assert (await client.get(http_url(url) + "/")).json() == "hello from lifespan"
    assert events == ["startup", "shutdown"]
