"""trio_ws inside Starlette and FastAPI, and Starlette and FastAPI around trio_ws, under real
Hypercorn (trio worker) with real clients (trio-websocket, ``websockets``, httpx).

``trio_ws.session(websocket)`` in Starlette ``WebSocketRoute`` endpoints and FastAPI
``@app.websocket`` endpoints, accepted before or not; a trio_ws ``Router`` mounted in the app
and a ``websocket_app`` as a route (routing, ``url_for``, ``root_path``).

Starlette 1.10 and FastAPI need Python 3.11: on 3.10 this module is skipped. Real sockets, so
the real clock: every wait is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

starlette = pytest.importorskip("starlette", reason="Starlette 1.10 needs Python 3.11")
fastapi = pytest.importorskip("fastapi", reason="FastAPI needs Python 3.11")

import httpx  # noqa: E402
import trio  # noqa: E402
from hypercorn.config import Config  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.exceptions import WebSocketException as StarletteWebSocketException  # noqa: E402
from starlette.requests import Request as StarletteRequest  # noqa: E402
from starlette.responses import JSONResponse as StarletteJSONResponse  # noqa: E402
from starlette.routing import Mount, Route, WebSocketRoute  # noqa: E402
from starlette.websockets import WebSocket as StarletteWebSocket  # noqa: E402
from wsproto.events import CloseConnection, TextMessage  # noqa: E402

import trio_ws  # noqa: E402
from tests.hypercorn_harness import hypercorn_server, trio_websocket_client, ws_connect  # noqa: E402
from tests.test_interop import Script, Seen, talk_trio_websocket, talk_websockets  # noqa: E402

TIMEOUT = 5.0
ASGIApp = Callable[..., Any]


# ------------------------------------------------------------------------------ what the app saw


@dataclass
class Log:
    """What each endpoint saw, by path; ``ended[path]`` is set when its endpoint returned."""

    seen: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    ended: dict[str, trio.Event] = field(default_factory=lambda: defaultdict(trio.Event))

    async def wait(self, path: str) -> list[Any]:
        with trio.fail_after(TIMEOUT):
            await self.ended[path].wait()
        return self.seen[path]


def states(websocket: StarletteWebSocket) -> tuple[str, str]:
    return websocket.client_state.name, websocket.application_state.name


# ------------------------------------------------------------------------------ the endpoints


def endpoints(log: Log) -> dict[str, Callable[[StarletteWebSocket], Any]]:
    """Starlette-style endpoints, ``async def endpoint(websocket)``, by path."""

    def logged(path: str) -> Callable[[Any], Any]:
        def decorate(endpoint: Any) -> Any:
            async def run(websocket: StarletteWebSocket) -> None:
                try:
                    await endpoint(websocket)
                except BaseException as exc:
                    log.seen[path].append(("escaped", type(exc).__name__))
                    raise
                finally:
                    log.seen[path].append(("after", states(websocket)))
                    log.ended[path].set()

            run.__name__ = endpoint.__name__
            return run

        return decorate

    @logged("/fresh")
    async def fresh(websocket: StarletteWebSocket) -> None:
        """Not accepted yet: the session accepts."""
        async with trio_ws.session(websocket) as ws:
            log.seen["/fresh"].append(("in", ws.client_state.name, ws.application_state.name))
            await ws.accept()
            async for text in ws.iter_text():
                await ws.send_text(text)

    @logged("/accepted")
    async def accepted(websocket: StarletteWebSocket) -> None:
        """Starlette accepted (with a subprotocol): the session starts connected."""
        offered = websocket.scope["subprotocols"]
        await websocket.accept(subprotocol="v2" if "v2" in offered else None)
        async with trio_ws.session(websocket) as ws:
            log.seen["/accepted"].append(("in", ws.client_state.name, ws.application_state.name))
            with pytest.raises(RuntimeError):
                await ws.accept()
            await ws.send_text(await ws.receive_text())
        # Returning after the block: the session closed with 1000 (Hypercorn alone: 1011).

    @logged("/connected")
    async def connected(websocket: StarletteWebSocket) -> None:
        """The endpoint read the connect message itself: accept must not read again."""
        assert (await websocket.receive())["type"] == "websocket.connect"
        async with trio_ws.session(websocket) as ws:
            log.seen["/connected"].append(("in", ws.client_state.name, ws.application_state.name))
            await ws.accept()
            await ws.send_text("hello")
            await ws.receive_text()

    @logged("/sender")
    async def sender(websocket: StarletteWebSocket) -> None:
        """Only sends: the client's close is seen by a send, not lost (Hypercorn alone drops
        sends after the client left, silently)."""
        await websocket.accept()
        async with trio_ws.session(websocket) as ws:
            try:
                while True:
                    await ws.send_text("tick")
                    await trio.sleep(0.001)
            except trio_ws.WebSocketDisconnect as exc:
                log.seen["/sender"].append(("disconnect", exc.code))
                raise

    @logged("/helper")
    async def helper(websocket: StarletteWebSocket) -> None:
        """A helper task ends with the connection; leaving the block closes with 1000."""

        async def push(ws: trio_ws.WebSocket) -> None:
            try:
                await ws.send_text("from helper")
                await trio.sleep_forever()
            finally:
                log.seen["/helper"].append("helper ended")

        async with trio_ws.session(websocket) as ws:
            await ws.accept()
            ws.start_soon(push, ws)
            log.seen["/helper"].append(("got", await ws.receive_text()))

    @logged("/cancel-safe")
    async def cancel_safe(websocket: StarletteWebSocket) -> None:
        """Receives cancelled over and over lose nothing."""
        async with trio_ws.session(websocket) as ws:
            await ws.accept()
            got: list[str] = []
            cancelled = 0
            while len(got) < 20:
                with trio.move_on_after(0.0005) as scope:
                    got.append(await ws.receive_text())
                cancelled += scope.cancelled_caught
            log.seen["/cancel-safe"].append(("cancelled", cancelled > 0))
            await ws.send_text(",".join(got))

    @logged("/error")
    async def error(websocket: StarletteWebSocket) -> None:
        async with trio_ws.session(websocket) as ws:
            await ws.accept()
            raise RuntimeError("boom")

    @logged("/refuse")
    async def refuse(websocket: StarletteWebSocket) -> None:
        """Starlette's own WebSocketException closes with its code, as trio_ws's does."""
        async with trio_ws.session(websocket) as ws:
            await ws.accept()
            raise StarletteWebSocketException(4001, "nope")

    return {
        "/fresh": fresh,
        "/accepted": accepted,
        "/connected": connected,
        "/sender": sender,
        "/helper": helper,
        "/cancel-safe": cancel_safe,
        "/error": error,
        "/refuse": refuse,
    }


# --------------------------------------------------------------------- trio_ws inside the app


async def room(ws: trio_ws.WebSocket) -> None:
    """A trio_ws endpoint mounted in the app: greets with its own URL (through the app's
    router), then echoes with the room's name."""
    await ws.accept()
    await ws.send_text(str(ws.url_for("live:room", name=ws.path_params["name"])))
    async for text in ws.iter_text():
        await ws.send_text(f"{ws.path_params['name']}: {text}")


async def lobby(ws: trio_ws.WebSocket) -> None:  # pragma: no cover - never connected
    await ws.accept()


async def echo(ws: trio_ws.WebSocket) -> None:
    await ws.accept()
    async for text in ws.iter_text():
        await ws.send_text(text)


def live_router() -> trio_ws.Router:
    # "room" comes second: reversing it walks past "lobby" first.
    return trio_ws.Router(
        [
            trio_ws.WebSocketRoute("/lobby", lobby, name="lobby"),
            trio_ws.WebSocketRoute("/room/{name}", room, name="room"),
        ]
    )


async def where(request: StarletteRequest) -> StarletteJSONResponse:
    return StarletteJSONResponse(
        {
            "room": str(request.url_for("live:room", name="attic")),
            "echo": str(request.url_for("echo_app")),
        }
    )


def starlette_app(log: Log) -> ASGIApp:
    routes: list[Any] = [WebSocketRoute(path, ep) for path, ep in endpoints(log).items()]
    routes += [
        Route("/where", where),
        WebSocketRoute("/echo-app", trio_ws.websocket_app(echo), name="echo_app"),
        Mount("/live", app=live_router(), name="live"),
    ]
    return Starlette(routes=routes)


def fastapi_app(log: Log) -> ASGIApp:
    app = fastapi.FastAPI()
    for path, endpoint in endpoints(log).items():
        app.add_api_websocket_route(path, endpoint)
    app.add_api_route("/where", where)
    app.router.add_websocket_route("/echo-app", trio_ws.websocket_app(echo), name="echo_app")
    app.mount("/live", live_router(), name="live")
    return app


FRAMEWORKS = {"starlette": starlette_app, "fastapi": fastapi_app}


@pytest.fixture(params=list(FRAMEWORKS))
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def serving(framework: str, root_path: str = "") -> AsyncIterator[tuple[str, Log]]:
    log = Log()
    config = Config()
    config.root_path = root_path
    async with hypercorn_server(FRAMEWORKS[framework](log), config) as url:
        yield url, log


TALKERS = {"trio-websocket": talk_trio_websocket, "websockets": talk_websockets}


# ------------------------------------------------------------------------------ the scenarios


@pytest.mark.parametrize("client", list(TALKERS))
async def test_session_in_an_endpoint_that_did_not_accept(framework: str, client: str) -> None:
    async with serving(framework) as (url, log):
        script = Script(("one", "two", "héllo"), echo=True, close=(1000, ""))
        seen = await TALKERS[client](url + "/fresh", script)
        saw = await log.wait("/fresh")
    assert seen == Seen(replies=["one", "two", "héllo"], code=1000, reason="")
    # The client closed first: the application sent no close of its own (as in Starlette).
    assert saw == [("in", "CONNECTING", "CONNECTING"), ("after", ("DISCONNECTED", "CONNECTED"))]


@pytest.mark.parametrize("client", list(TALKERS))
async def test_session_in_an_endpoint_that_accepted_starts_connected(
    framework: str, client: str
) -> None:
    """The accept is not sent twice, and returning closes with 1000, not Hypercorn's 1011."""
    async with serving(framework) as (url, log):
        seen = await TALKERS[client](url + "/accepted", Script(("ping",), echo=True))
        saw = await log.wait("/accepted")
    assert seen == Seen(replies=["ping"], code=1000, reason="")
    assert saw == [("in", "CONNECTED", "CONNECTED"), ("after", ("DISCONNECTED", "DISCONNECTED"))]


async def test_starlette_accept_subprotocol_reaches_the_client(framework: str) -> None:
    async with serving(framework) as (url, log):
        async with ws_connect(url + "/accepted", subprotocols=["v1", "v2"]) as client:
            assert client.accepted is not None
            assert client.accepted.subprotocol == "v2"
            await client.send_text("x")
            assert (await client.receive_event()) == TextMessage(data="x")
            closing = await client.receive_event()
            assert isinstance(closing, CloseConnection)
            assert closing.code == 1000
        await log.wait("/accepted")


async def test_session_after_the_endpoint_read_the_connect_message(framework: str) -> None:
    async with serving(framework) as (url, log):
        seen = await talk_trio_websocket(url + "/connected", Script(("bye",)))
        saw = await log.wait("/connected")
    assert seen == Seen(replies=["hello"], code=1000, reason="")
    assert saw[0] == ("in", "CONNECTED", "CONNECTING")


async def test_a_send_only_endpoint_learns_that_the_client_left(framework: str) -> None:
    async with serving(framework) as (url, log):
        async with trio_websocket_client(url + "/sender") as ws:
            with trio.fail_after(TIMEOUT):
                for _ in range(3):
                    assert await ws.get_message() == "tick"
        saw = await log.wait("/sender")
    # Plain Hypercorn reports every client close as 1006 (its issue #127).
    assert saw == [("disconnect", 1006), ("after", ("DISCONNECTED", "CONNECTED"))]


async def test_helper_tasks_end_with_the_connection(framework: str) -> None:
    async with serving(framework) as (url, log):
        seen = await talk_trio_websocket(url + "/helper", Script(("hi",)))
        saw = await log.wait("/helper")
    assert seen == Seen(replies=["from helper"], code=1000, reason="")
    assert saw == [("got", "hi"), "helper ended", ("after", ("DISCONNECTED", "DISCONNECTED"))]


async def test_cancelled_receives_lose_no_message(framework: str) -> None:
    sent = tuple(f"m{i}" for i in range(20))
    async with serving(framework) as (url, log):
        seen = await talk_trio_websocket(url + "/cancel-safe", Script(sent))
        saw = await log.wait("/cancel-safe")
    assert seen == Seen(replies=[",".join(sent)], code=1000, reason="")
    assert saw[-1] == ("after", ("DISCONNECTED", "DISCONNECTED"))


@pytest.mark.parametrize("client", list(TALKERS))
async def test_an_error_closes_1011_and_reaches_the_server(framework: str, client: str) -> None:
    async with serving(framework) as (url, log):
        seen = await TALKERS[client](url + "/error", Script())
        saw = await log.wait("/error")
    assert seen == Seen(code=1011, reason="")
    assert saw == [("escaped", "RuntimeError"), ("after", ("DISCONNECTED", "DISCONNECTED"))]


async def test_starlette_websocket_exception_closes_with_its_code(framework: str) -> None:
    async with serving(framework) as (url, log):
        seen = await talk_trio_websocket(url + "/refuse", Script())
        saw = await log.wait("/refuse")
    assert seen == Seen(code=4001, reason="nope")
    assert saw == [("after", ("DISCONNECTED", "DISCONNECTED"))]


@pytest.mark.parametrize("root_path", ["", "/api"])
async def test_trio_ws_router_mounted_in_the_app(framework: str, root_path: str) -> None:
    """Routing, url_for (the app's router reverses names through the mounted trio_ws Router,
    past routes that do not match) and the server's root_path."""
    async with serving(framework, root_path) as (url, _):
        async with trio_websocket_client(url + root_path + "/live/room/kitchen") as ws:
            with trio.fail_after(TIMEOUT):
                assert await ws.get_message() == url + root_path + "/live/room/kitchen"
                await ws.send_message("hi")
                assert await ws.get_message() == "kitchen: hi"
        http = "http://" + url.removeprefix("ws://")
        async with httpx.AsyncClient() as client:
            with trio.fail_after(TIMEOUT):
                response = await client.get(http + root_path + "/where")
    assert response.json() == {
        "room": url + root_path + "/live/room/attic",
        "echo": url + root_path + "/echo-app",
    }


async def test_websocket_app_as_a_route_of_the_app(framework: str) -> None:
    async with serving(framework) as (url, _):
        script = Script(("a", "b"), echo=True, close=(1000, ""))
        seen = await talk_websockets(url + "/echo-app", script)
    assert seen == Seen(replies=["a", "b"], code=1000, reason="")


async def test_unknown_path_under_the_mount_is_denied(framework: str) -> None:
    async with serving(framework) as (url, _):
        seen = await talk_trio_websocket(url + "/live/nowhere", Script())
    assert seen.status == 404


def test_session_refuses_what_is_not_a_websocket() -> None:
    with pytest.raises(TypeError, match="Starlette or FastAPI WebSocket"):
        trio_ws.session(object())  # type: ignore[arg-type]


def test_session_returns_a_trio_ws_websocket_itself() -> None:
    async def never(*args: object) -> Any:  # pragma: no cover
        raise AssertionError

    ws = trio_ws.WebSocket({"type": "websocket"}, never, never)
    assert trio_ws.session(ws) is ws
    with pytest.raises(TypeError, match="already has its own"):
        trio_ws.session(ws, max_message_size=10)
