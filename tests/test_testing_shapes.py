"""The messages trio_ws.testing hands an application are the ones real servers hand it.

A raw ASGI application records every message it receives. The same client actions run three
ways: real Hypercorn 0.18 (``hypercorn.trio.serve`` through ``open_server``) and
``trio_ws.serve``, each with a raw wsproto client over TCP that sends exactly the frames named,
and the in-process ``open_connection``. The recordings must match key for key, in order, so the
test client and the servers cannot drift apart (issue 7 item 3: Hypercorn puts both ``text``
and ``bytes`` in every ``websocket.receive``, one of them ``None``).

The one difference is documented, and pinned here: for a close frame from the client,
Hypercorn reports ``{"code": 1006}`` whatever the client sent (Hypercorn issue #127), while
``trio_ws.serve`` and the test client report the client's code and reason (1005 and ``""`` for
a close frame without a code).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from hypercorn.config import Config
from wsproto.events import CloseConnection, Event, TextMessage
from wsproto.frame_protocol import CloseReason

import trio_ws
from tests.hypercorn_harness import WSClient, ws_connect
from trio_ws._types import ASGIApp
from trio_ws.testing import WebSocketDenied, open_connection, open_server

Message = dict[str, Any]
TIMEOUT = 10


class Recorder:
    """A raw ASGI app that records what it receives, per path, and answers by path.

    ``/deny`` closes before accept (HTTP 403), ``/deny-http`` sends a denial response; any other
    path accepts. A text message ``"close"`` makes it close with 4001 ``"done"``. It returns
    after ``websocket.disconnect`` and then sets the path's event.
    """

    def __init__(self) -> None:
        self.messages: defaultdict[str, list[list[tuple[str, Any]]]] = defaultdict(list)
        self.done: defaultdict[str, trio.Event] = defaultdict(trio.Event)
        self.scopes: dict[str, dict[str, Any]] = {}

    async def __call__(
        self,
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                step = (await receive())["type"]  # lifespan.startup, lifespan.shutdown
                await send({"type": step + ".complete"})
                if step == "lifespan.shutdown":
                    return
        path = scope["path"]
        self.scopes[path] = scope_shape(scope)
        try:
            while True:
                message = await receive()
                self.messages[path].append(list(message.items()))
                kind = message["type"]
                if kind == "websocket.connect":
                    if path == "/deny":
                        await send({"type": "websocket.close", "code": 1000})
                    elif path == "/deny-http":
                        await send(
                            {
                                "type": "websocket.http.response.start",
                                "status": 401,
                                "headers": [(b"content-type", b"text/plain")],
                            }
                        )
                        await send({"type": "websocket.http.response.body", "body": b"no"})
                    else:
                        await send({"type": "websocket.accept"})
                elif kind == "websocket.receive" and message.get("text") == "close":
                    await send({"type": "websocket.close", "code": 4001, "reason": "done"})
                elif kind == "websocket.disconnect":
                    return
        finally:
            self.done[path].set()


def scope_shape(scope: Message) -> dict[str, Any]:
    """What must not differ between servers: the keys, the value types, the ASGI versions."""
    return {
        "keys": sorted(scope),
        "types": {key: type(value).__name__ for key, value in scope.items()},
        "asgi": scope["asgi"],
        "header value types": {type(pair).__name__ for pair in scope["headers"]}
        | {type(part).__name__ for pair in scope["headers"] for part in pair},
    }


# A scenario: what the client does, given a way to send text, bytes and a close.


class Client:
    """One client's actions, over a raw wsproto connection or the in-process test client."""

    async def text(self, data: str) -> None:
        raise NotImplementedError

    async def bytes(self, data: bytes) -> None:
        raise NotImplementedError

    async def close(self, code: int | None, reason: str = "") -> None:
        raise NotImplementedError

    async def abort(self) -> None:
        """Drop the connection without a close frame."""
        raise NotImplementedError

    async def wait_for_close(self) -> None:
        """After the app closed: read until the server's close (and answer it)."""
        raise NotImplementedError


class WireClient(Client):
    def __init__(self, ws: WSClient) -> None:
        self.ws = ws

    async def text(self, data: str) -> None:
        await self.ws.send_text(data)

    async def bytes(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def close(self, code: int | None, reason: str = "") -> None:
        if code is None:
            # wsproto sends a close frame without a payload for this enum member only.
            await self.ws.send_event(CloseConnection(code=CloseReason.NO_STATUS_RCVD))
        else:
            await self.ws.close(code, reason)

    async def abort(self) -> None:
        await self.ws.abort()

    async def wait_for_close(self) -> None:
        while not isinstance(await self.ws.receive_event(), CloseConnection):
            pass


class InProcessClient(Client):
    def __init__(self, client: trio_ws.testing.WebSocketTestClient) -> None:
        self.client = client

    async def text(self, data: str) -> None:
        await self.client.send_text(data)

    async def bytes(self, data: bytes) -> None:
        await self.client.send_bytes(data)

    async def close(self, code: int | None, reason: str = "") -> None:
        await self.client.close(code, reason)

    async def abort(self) -> None:
        await self.client.abort()

    async def wait_for_close(self) -> None:
        await self.client.expect_close()


Scenario = Callable[[Client], Awaitable[None]]


async def data_then_close_with_code(client: Client) -> None:
    await client.text("hello")
    await client.bytes(b"\x00\x01")
    await client.text("")
    await client.bytes(b"")
    await client.text("h\xe9llo \U0001f600")
    await client.close(4000, "bye")


async def close_without_code(client: Client) -> None:
    await client.text("x")
    await client.close(None)


async def drop(client: Client) -> None:
    await client.text("x")
    await client.abort()


async def app_closes(client: Client) -> None:
    await client.text("close")
    await client.wait_for_close()


SCENARIOS: dict[str, Scenario] = {
    "/data": data_then_close_with_code,
    "/no-code": close_without_code,
    "/drop": drop,
    "/app-closes": app_closes,
}
DENIALS = ["/deny", "/deny-http"]


# Running the scenarios.

Recording = dict[str, list[list[tuple[str, Any]]]]


async def over_the_wire(
    serve: Callable[[Recorder], Any], recorder: Recorder | None = None
) -> Recording:
    recorder = Recorder() if recorder is None else recorder
    with trio.fail_after(TIMEOUT):
        async with serve(recorder) as ws_url:
            for path, scenario in SCENARIOS.items():
                async with ws_connect(ws_url + path) as ws:
                    assert ws.accepted is not None
                    await scenario(WireClient(ws))
                    if path != "/drop":
                        with pytest.raises(trio.EndOfChannel):
                            while True:
                                event: Event = await ws.receive_event()
                                assert isinstance(event, CloseConnection)
                await recorder.done[path].wait()
            for path in DENIALS:
                async with ws_connect(ws_url + path) as ws:
                    assert ws.rejection is not None
                await recorder.done[path].wait()
    return dict(recorder.messages)


async def in_process(recorder: Recorder | None = None) -> Recording:
    recorder = Recorder() if recorder is None else recorder
    with trio.fail_after(TIMEOUT):
        for path, scenario in SCENARIOS.items():
            async with open_connection(recorder, path) as client:
                await scenario(InProcessClient(client))
            assert recorder.done[path].is_set()
        for path in DENIALS:
            with pytest.raises(WebSocketDenied):
                async with open_connection(recorder, path):
                    pass  # pragma: no cover
            assert recorder.done[path].is_set()
    return dict(recorder.messages)


@asynccontextmanager
async def plain_hypercorn(app: ASGIApp) -> AsyncIterator[str]:
    config = Config()
    config.graceful_timeout = 1
    async with open_server(app, config=config) as server:
        yield server.ws_url


@asynccontextmanager
async def trio_ws_serve(app: Recorder) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        urls: list[str] = await nursery.start(
            functools.partial(trio_ws.serve, app, port=0, drain_seconds=1)
        )
        yield urls[0].replace("http://", "ws://", 1)
        nursery.cancel_scope.cancel()


def receive(**data: Any) -> list[tuple[str, Any]]:
    """A ``websocket.receive`` as Hypercorn 0.18 builds it: ``bytes`` then ``text``."""
    return [("type", "websocket.receive"), ("bytes", data.get("bytes")), ("text", data.get("text"))]


CONNECT = [("type", "websocket.connect")]


def disconnect(code: int, reason: str | None = None) -> list[tuple[str, Any]]:
    message: list[tuple[str, Any]] = [("type", "websocket.disconnect"), ("code", code)]
    return message if reason is None else [*message, ("reason", reason)]


#: What trio_ws.serve hands the app, written out: the test client must hand over the same.
EXPECTED: Recording = {
    "/data": [
        CONNECT,
        receive(text="hello"),
        receive(bytes=b"\x00\x01"),
        receive(text=""),
        receive(bytes=b""),
        receive(text="h\xe9llo \U0001f600"),
        disconnect(4000, "bye"),
    ],
    "/no-code": [CONNECT, receive(text="x"), disconnect(1005, "")],
    # The TCP connection ends without a close frame: "closed abnormally", no reason.
    "/drop": [CONNECT, receive(text="x"), disconnect(1006)],
    # The app closed first: the server reports a normal closure, whatever code the app sent.
    "/app-closes": [CONNECT, receive(text="close"), disconnect(1000)],
    "/deny": [CONNECT, disconnect(1000)],
    "/deny-http": [CONNECT, disconnect(1000)],
}


async def test_trio_ws_serve_hands_the_app_these_messages() -> None:
    assert await over_the_wire(trio_ws_serve) == EXPECTED


async def test_plain_hypercorn_differs_only_in_the_client_close_code() -> None:
    """Hypercorn 0.18 reports 1006 without a reason for every client close (issue #127)."""
    expected = dict(EXPECTED)
    expected["/data"] = [*EXPECTED["/data"][:-1], disconnect(1006)]
    expected["/no-code"] = [*EXPECTED["/no-code"][:-1], disconnect(1006)]
    assert await over_the_wire(plain_hypercorn) == expected


async def test_the_test_client_hands_the_app_the_same_messages() -> None:
    assert await in_process() == EXPECTED


async def test_the_test_client_builds_the_scope_hypercorn_builds() -> None:
    on_hypercorn, in_memory = Recorder(), Recorder()
    await over_the_wire(plain_hypercorn, on_hypercorn)
    await in_process(in_memory)
    assert in_memory.scopes == on_hypercorn.scopes
    assert set(in_memory.scopes) == {*SCENARIOS, *DENIALS}


# The consequence that matters: a helper that reads the wrong frame type fails the same way in
# a test as in production (issue 7 item 3: TypeError under Hypercorn, KeyError in the test).


def wrong_type_app(errors: list[BaseException]) -> ASGIApp:
    """Read a binary frame as JSON, then as text; a text frame as bytes; record each error."""

    async def handler(ws: trio_ws.WebSocket) -> None:
        await ws.accept()
        for read in (ws.receive_json, ws.receive_text, ws.receive_bytes):
            try:
                await read()
            except Exception as exc:
                errors.append(exc)
            await ws.send_text("next")

    return trio_ws.websocket_app(handler)


FRAMES: list[str | bytes] = [b"{}", b"x", "x"]


async def test_helpers_fail_alike_in_process_and_on_hypercorn() -> None:
    in_process_errors: list[BaseException] = []
    with trio.fail_after(TIMEOUT):
        async with open_connection(wrong_type_app(in_process_errors)) as client:
            for frame in FRAMES:
                if isinstance(frame, bytes):
                    await client.send_bytes(frame)
                else:
                    await client.send_text(frame)
                assert await client.receive_text() == "next"
    hypercorn_errors: list[BaseException] = []
    with trio.fail_after(TIMEOUT):
        async with plain_hypercorn(wrong_type_app(hypercorn_errors)) as ws_url:
            async with ws_connect(ws_url + "/") as ws:
                for frame in FRAMES:
                    if isinstance(frame, bytes):
                        await ws.send_bytes(frame)
                    else:
                        await ws.send_text(frame)
                    assert await ws.receive_event() == TextMessage("next")
    assert len(in_process_errors) == len(hypercorn_errors) == 3
    assert [(type(e), str(e)) for e in in_process_errors] == [
        (type(e), str(e)) for e in hypercorn_errors
    ]
