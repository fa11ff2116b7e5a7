"""``trio_ws.trio_websocket_app``: trio-websocket server handlers, unchanged, under Hypercorn.

Each handler here is written as trio-websocket documents its servers (its "Server Example"
echo server, ``examples/server.py``'s reversing handler, a handler that runs its replies in a
nursery). The differential tests run the *same* handler on trio-websocket's own
``serve_websocket`` (with a ``handler_nursery``) and, through the adapter, on plain Hypercorn and
on ``trio_ws.serve``, drive each with the same real clients (trio-websocket, ``websockets``), and
compare what the clients and the handler saw.

Real sockets, so the real clock: every wait is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from trio_websocket import (
    CloseReason,
    ConnectionClosed,
    Endpoint,
    WebSocketConnection,
    WebSocketRequest,
    serve_websocket,
)

import trio_ws
from tests.hypercorn_harness import hypercorn_server, ws_connect
from tests.test_interop import (
    Script,
    Seen,
    _serve_trio_ws,
    talk_trio_websocket,
    talk_websockets,
)

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

TIMEOUT = 5.0
Handler = Callable[[WebSocketRequest], Awaitable[None]]


# ----------------------------------------------------- handlers, in trio-websocket's documented style


async def echo_server(request: WebSocketRequest) -> None:
    """trio-websocket's "Server Example": an echo server."""
    ws = await request.accept()
    while True:
        try:
            message = await ws.get_message()
            await ws.send_message(message)
        except ConnectionClosed:
            break


async def reverse_handler(request: WebSocketRequest) -> None:
    """As trio-websocket's ``examples/server.py``: reverse each message and send it back."""
    logging.info('Handler starting on path "%s"', request.path)
    ws = await request.accept()
    while True:
        try:
            message = await ws.get_message()
            await ws.send_message(message[::-1])
        except ConnectionClosed:
            logging.info("Connection closed")
            break
    logging.info("Handler exiting")


async def nursery_handler(request: WebSocketRequest) -> None:
    """Replies run as tasks of the handler's own nursery, which ends with the connection."""
    ws = await request.accept()
    async with trio.open_nursery() as nursery:
        while True:
            try:
                message = await ws.get_message()
            except ConnectionClosed:
                break
            nursery.start_soon(shout, ws, message)


async def shout(ws: WebSocketConnection, message: str | bytes) -> None:
    await trio.sleep(0.01)
    try:  # noqa: SIM105 (trio-websocket's documented style)
        await ws.send_message(message.upper())
    except ConnectionClosed:
        pass


HANDLERS: dict[str, Handler] = {
    "echo": echo_server,
    "reverse": reverse_handler,
    "nursery": nursery_handler,
}


# ------------------------------------------------------------------------------------ servers

Serve = Callable[[Handler], AbstractAsyncContextManager[str]]


@asynccontextmanager
async def on_trio_websocket(handler: Handler) -> AsyncIterator[str]:
    """trio-websocket's own server, handlers in a ``handler_nursery`` as its docs allow."""
    async with trio.open_nursery() as nursery:
        serve = functools.partial(
            serve_websocket, handler, "127.0.0.1", 0, None, handler_nursery=nursery
        )
        with trio.fail_after(TIMEOUT):
            server = await nursery.start(serve)
        yield f"ws://127.0.0.1:{server.port}"
        nursery.cancel_scope.cancel()


def on_hypercorn(handler: Handler) -> AbstractAsyncContextManager[str]:
    return hypercorn_server(trio_ws.trio_websocket_app(handler))


def on_trio_ws_serve(handler: Handler) -> AbstractAsyncContextManager[str]:
    return _serve_trio_ws(trio_ws.trio_websocket_app(handler))


SERVERS: dict[str, Serve] = {
    "trio-websocket": on_trio_websocket,
    "hypercorn": on_hypercorn,
    "trio_ws.serve": on_trio_ws_serve,
}
TALKERS = {"trio-websocket": talk_trio_websocket, "websockets": talk_websockets}


@pytest.fixture(params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(TALKERS))
def client(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ------------------------------------------------------------------- the documented handlers

SENT = ("hello", "héllo ✓", b"\x00\x01\xfe", "")


def expected_replies(name: str) -> list[str | bytes]:
    if name == "echo":
        return list(SENT)
    if name == "reverse":
        return [data[::-1] for data in SENT]
    return [data.upper() for data in SENT]


@pytest.mark.parametrize("name", list(HANDLERS))
async def test_documented_handlers_run_unchanged(name: str, server: str, client: str) -> None:
    """Same handler, same client script: the same replies and the same close on every server."""
    with trio.fail_after(3 * TIMEOUT):
        async with SERVERS[server](HANDLERS[name]) as url:
            seen = await TALKERS[client](url + "/", Script(SENT, echo=True, close=(1000, "")))
    assert seen == Seen(replies=expected_replies(name), code=1000, reason="")


async def test_the_served_app_also_answers_http_and_lifespan() -> None:
    """An ASGI app: Hypercorn runs its lifespan, and HTTP requests on the port get 404."""
    import httpx

    async with hypercorn_server(trio_ws.trio_websocket_app(echo_server)) as url:
        async with httpx.AsyncClient() as http:
            with trio.fail_after(TIMEOUT):
                response = await http.get("http://" + url.removeprefix("ws://") + "/")
    assert response.status_code == 404


# ------------------------------------------------------------------ what a handler observes


@dataclass
class Probe:
    """What the probing handler saw; ``done`` is set when it returned (or raised)."""

    seen: list[Any] = field(default_factory=list)
    done: trio.Event = field(default_factory=trio.Event)

    async def wait(self) -> list[Any]:
        with trio.fail_after(TIMEOUT):
            await self.done.wait()
        return self.seen


def probing(body: Callable[[WebSocketRequest, Probe], Awaitable[None]]) -> tuple[Handler, Probe]:
    probe = Probe()

    async def handler(request: WebSocketRequest) -> None:
        try:
            await body(request, probe)
        except BaseException as exc:
            probe.seen.append(("raised", type(exc).__name__))
            raise
        finally:
            probe.done.set()

    return handler, probe


def reason(closed: CloseReason | None) -> tuple[int, str | None] | None:
    return None if closed is None else (closed.code, closed.reason)


async def test_request_attributes_and_accept_options(server: str) -> None:
    async def body(request: WebSocketRequest, probe: Probe) -> None:
        probe.seen.append(request.path)
        probe.seen.append(request.proposed_subprotocols)
        probe.seen.append(dict(request.headers).get(b"x-token"))
        probe.seen.append((type(request.local).__name__, type(request.remote).__name__))
        ws = await request.accept(subprotocol="v2", extra_headers=[(b"x-served-by", b"probe")])
        probe.seen.append((ws.subprotocol, ws.path, ws.is_server, ws.is_client, ws.closed))
        await ws.send_message("ready")
        probe.seen.append(await ws.get_message())

    handler, probe = probing(body)
    async with SERVERS[server](handler) as url:
        async with ws_connect(
            url + "/chat/room?user=ann", subprotocols=["v1", "v2"], headers=[("x-token", "t0k")]
        ) as ws:
            assert ws.accepted is not None
            assert ws.accepted.subprotocol == "v2"
            assert (b"x-served-by", b"probe") in ws.accepted.extra_headers
            await ws.send_text("thanks")
            seen = await probe.wait()
    assert seen == [
        "/chat/room?user=ann",
        ("v1", "v2"),
        b"t0k",
        ("Endpoint", "Endpoint"),
        ("v2", "/chat/room?user=ann", True, False, None),
        "thanks",
    ]


async def test_local_and_remote_are_trio_websocket_endpoints() -> None:
    async def body(request: WebSocketRequest, probe: Probe) -> None:
        ws = await request.accept()
        probe.seen += [request.local, request.remote, ws.local, ws.remote]

    handler, probe = probing(body)
    async with on_hypercorn(handler) as url:
        seen = await talk_trio_websocket(url + "/", Script())
        local, remote, ws_local, ws_remote = await probe.wait()
    assert seen.code == 1000
    port = int(url.rsplit(":", 1)[1])
    for endpoint in (local, ws_local):
        assert isinstance(endpoint, Endpoint)
        assert (str(endpoint.address), endpoint.port, endpoint.is_ssl) == ("127.0.0.1", port, False)
    for endpoint in (remote, ws_remote):
        assert isinstance(endpoint, Endpoint)
        assert str(endpoint.address) == "127.0.0.1"


async def test_reject_sends_status_headers_and_body(server: str) -> None:
    async def body(request: WebSocketRequest, probe: Probe) -> None:
        await request.reject(401, extra_headers=[(b"www-authenticate", b"Bearer")], body=b"no")

    handler, probe = probing(body)
    async with SERVERS[server](handler) as url:
        async with ws_connect(url + "/") as ws:
            rejection = ws.rejection
        await probe.wait()
    assert rejection is not None
    assert (rejection.status_code, rejection.body) == (401, b"no")
    assert (b"www-authenticate", b"Bearer") in rejection.headers


async def test_reject_without_a_body() -> None:
    handler, probe = probing(lambda request, probe: request.reject(403))
    async with on_hypercorn(handler) as url:
        seen = await talk_websockets(url + "/", Script())
        await probe.wait()
    assert seen.status == 403


async def test_aclose_sends_code_and_reason_then_everything_raises(server: str) -> None:
    async def body(request: WebSocketRequest, probe: Probe) -> None:
        ws = await request.accept()
        await ws.aclose(4001, "bye")
        probe.seen.append(reason(ws.closed))
        for call in (ws.get_message, functools.partial(ws.send_message, "late")):
            try:
                await call()
            except ConnectionClosed as exc:
                probe.seen.append(("ConnectionClosed", reason(exc.reason)))
        await ws.aclose()  # idempotent
        probe.seen.append("closed twice")

    handler, probe = probing(body)
    async with SERVERS[server](handler) as url:
        seen = await talk_trio_websocket(url + "/", Script())
        saw = await probe.wait()
    assert seen == Seen(code=4001, reason="bye")
    assert saw == [
        (4001, "bye"),
        ("ConnectionClosed", (4001, "bye")),
        ("ConnectionClosed", (4001, "bye")),
        "closed twice",
    ]


async def test_client_close_delivers_pending_messages_then_connection_closed(server: str) -> None:
    """Messages sent before the client's close come first, then ConnectionClosed with the
    client's code (plain Hypercorn reports 1006 for every client close, its issue #127)."""
    started = trio.Event()

    async def body(request: WebSocketRequest, probe: Probe) -> None:
        ws = await request.accept()
        await started.wait()
        try:
            while True:
                probe.seen.append(await ws.get_message())
        except ConnectionClosed as exc:
            probe.seen.append(("ConnectionClosed", reason(exc.reason), reason(ws.closed)))
        try:
            await ws.send_message("too late")
        except ConnectionClosed:
            probe.seen.append("send raised")

    handler, probe = probing(body)
    async with SERVERS[server](handler) as url:
        async with trio.open_nursery() as nursery:
            script = Script(("a", "b"), close=(4000, "done"))
            nursery.start_soon(talk_trio_websocket, url + "/", script)
            await trio.sleep(0.2)  # let the client send and close before the handler reads
            started.set()
        saw = await probe.wait()
    code = (1006, None) if server == "hypercorn" else (4000, "done")
    assert saw == ["a", "b", ("ConnectionClosed", code, code), "send raised"]


async def test_ping_and_pong_say_what_asgi_cannot(server: str) -> None:
    if server == "trio-websocket":
        pytest.skip("trio-websocket's own server sends pings")

    async def body(request: WebSocketRequest, probe: Probe) -> None:
        ws = await request.accept()
        for call in (ws.ping, ws.pong):
            with pytest.raises(NotImplementedError, match="websocket_ping_interval"):
                await call()
        probe.seen.append("raised")

    handler, probe = probing(body)
    async with SERVERS[server](handler) as url:
        await talk_trio_websocket(url + "/", Script())
        assert await probe.wait() == ["raised"]


async def test_pings_skip_keeps_the_heartbeat_recipe_running() -> None:
    """trio-websocket's heartbeat recipe, with ``pings="skip"``: it runs until the connection
    closes, and then ping() raises ConnectionClosed."""

    async def heartbeat(
        ws: WebSocketConnection,
        timeout: float,  # noqa: ASYNC109 (the recipe's own signature)
        interval: float,
    ) -> None:
        while True:
            with trio.fail_after(timeout):
                await ws.ping()
            await trio.sleep(interval)

    async def body(request: WebSocketRequest, probe: Probe) -> None:
        ws = await request.accept()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(heartbeat, ws, 5, 0.01)
                probe.seen.append(await ws.get_message())
                await ws.send_message("bye")
                await ws.get_message()
        except BaseExceptionGroup as group:
            probe.seen.append([type(exc).__name__ for exc in group.exceptions])
        except ConnectionClosed:  # pragma: no cover - heartbeat raises first or not at all
            probe.seen.append("get_message raised")

    handler, probe = probing(body)
    app = trio_ws.trio_websocket_app(handler, pings="skip")
    async with hypercorn_server(app) as url:
        seen = await talk_trio_websocket(url + "/", Script(("hi",), echo=True, close=(1000, "")))
        saw = await probe.wait()
    assert seen.replies == ["bye"]
    assert saw[0] == "hi"
    assert saw[1] in (["ConnectionClosed"], ["ConnectionClosed", "ConnectionClosed"])


@dataclass
class Escapes:
    """What escaped the app to Hypercorn, per connection."""

    errors: list[BaseException | None] = field(default_factory=list)
    done: trio.Event = field(default_factory=trio.Event)


ASGI = Callable[[Any, Any, Any], Awaitable[None]]


def recording(app: ASGI, escapes: Escapes) -> ASGI:
    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await app(scope, receive, send)
            return
        try:
            await app(scope, receive, send)
        except BaseException as exc:
            escapes.errors.append(exc)
            raise
        else:
            escapes.errors.append(None)
        finally:
            escapes.done.set()

    return wrapper


async def careless_echo(ws: WebSocketConnection) -> None:
    while True:
        await ws.send_message(await ws.get_message())


async def careless(request: WebSocketRequest) -> None:
    await careless_echo(await request.accept())


async def careless_in_a_nursery(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(careless_echo, ws)


@pytest.mark.parametrize("handler", [careless, careless_in_a_nursery])
async def test_connection_closed_escaping_the_handler_ends_quietly(handler: Handler) -> None:
    """A handler that lets ConnectionClosed out (alone, or in its nursery's exception group) is
    not an error: nothing escapes to the server (trio-websocket's own server would crash)."""
    escapes = Escapes()
    app = recording(trio_ws.trio_websocket_app(handler), escapes)
    async with hypercorn_server(app) as url:
        seen = await talk_trio_websocket(url + "/", Script(("x",), echo=True, close=(1000, "")))
        with trio.fail_after(TIMEOUT):
            await escapes.done.wait()
    assert seen == Seen(replies=["x"], code=1000, reason="")
    assert escapes.errors == [None]


async def test_a_handler_error_closes_1011_and_reaches_the_server() -> None:
    async def broken(request: WebSocketRequest) -> None:
        await request.accept()
        raise ValueError("boom")

    escapes = Escapes()
    app = recording(trio_ws.trio_websocket_app(broken), escapes)
    async with hypercorn_server(app) as url:
        seen = await talk_websockets(url + "/", Script())
        with trio.fail_after(TIMEOUT):
            await escapes.done.wait()
    assert seen == Seen(code=1011, reason="")
    [error] = escapes.errors
    assert isinstance(error, ValueError)


async def test_a_handler_that_never_accepts_denies_the_handshake() -> None:
    async def silent(request: WebSocketRequest) -> None:
        await trio.lowlevel.checkpoint()

    async with hypercorn_server(trio_ws.trio_websocket_app(silent)) as url:
        seen = await talk_trio_websocket(url + "/", Script())
    assert seen.status == 403


async def test_send_message_refuses_other_types() -> None:
    async def body(request: WebSocketRequest, probe: Probe) -> None:
        ws = await request.accept()
        with pytest.raises(ValueError, match="str or bytes"):
            await ws.send_message(bytearray(b"x"))  # type: ignore[arg-type]
        probe.seen.append("refused")

    handler, probe = probing(body)
    async with on_hypercorn(handler) as url:
        await talk_trio_websocket(url + "/", Script())
        assert await probe.wait() == ["refused"]


async def test_session_options_apply() -> None:
    """``max_message_size`` closes 1009, which the handler sees as ConnectionClosed."""

    async def body(request: WebSocketRequest, probe: Probe) -> None:
        ws = await request.accept()
        try:
            await ws.get_message()
        except ConnectionClosed as exc:
            probe.seen.append(reason(exc.reason))

    handler, probe = probing(body)
    app = trio_ws.trio_websocket_app(handler, max_message_size=4)
    async with hypercorn_server(app) as url:
        seen = await talk_trio_websocket(url + "/", Script(("too long",)))
        saw = await probe.wait()
    assert seen.code == 1009
    assert saw == [(1009, "message of 8 bytes exceeds 4")]


def test_bad_arguments_fail_when_the_app_is_made() -> None:
    with pytest.raises(ValueError, match="pings"):
        trio_ws.trio_websocket_app(echo_server, pings="maybe")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        trio_ws.trio_websocket_app(echo_server, no_such_option=1)
    with pytest.raises(TypeError, match="callable"):
        trio_ws.trio_websocket_app(42)  # type: ignore[arg-type]


def test_missing_trio_websocket_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trio_websocket", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'trio_ws\[trio-websocket\]'"):
        trio_ws.trio_websocket_app(echo_server)


def test_importing_trio_ws_does_not_import_trio_websocket() -> None:
    import subprocess

    code = "import sys, trio_ws; print('trio_websocket' in sys.modules, 'starlette' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]
