"""The session core's kinds of guarantee, in process (issue 7): checkpoints whatever the server
does, pipelining without overflow, message shapes, argument checks, exits before accept.

The same kinds are tested against real Hypercorn with real clients in
``tests/test_session_traffic.py``.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import pytest
import trio
import trio.testing

import trio_ws
from tests.session_fakes import FakeServer, websocket_scope
from trio_ws import (
    Route,
    Router,
    WebSocket,
    WebSocketDisconnect,
    WebSocketException,
    WebSocketMessageTypeError,
    WebSocketRoute,
)

Message = dict[str, Any]


class NeverYieldingServer:
    """A server whose ``send`` (and, unless ``channel``, ``receive``) returns without yielding.

    Hypercorn's ``send`` does exactly this once it has processed the client's close; a trio
    application that loops over such a call starves every other task unless trio_ws adds the
    checkpoint itself.
    """

    def __init__(self, *, channel: bool, **scope: Any) -> None:
        self.scope = websocket_scope(**scope)
        self.sent: list[Message] = []
        self.queued: deque[Message] = deque([{"type": "websocket.connect"}])
        self._arrived = trio.Event()
        self._to_app, self._from_server = trio.open_memory_channel[Message](100)
        self._to_app.send_nowait({"type": "websocket.connect"})
        self.receive: Callable[[], Awaitable[Message]]
        if channel:
            self.queued.clear()
            self.receive = self._from_server.receive
        else:
            self.receive = self._receive_now

    def push(self, message: Message) -> None:
        if self.receive == self._receive_now:
            self.queued.append(message)
            self._arrived.set()
        else:
            self._to_app.send_nowait(message)

    async def _receive_now(self) -> Message:  # noqa: ASYNC910 (the point of this fake)
        # Returns at once when a message is queued; otherwise waits (the pump's idle state).
        while not self.queued:
            self._arrived = trio.Event()
            await self._arrived.wait()
        return self.queued.popleft()

    async def send(self, message: Message) -> None:  # noqa: ASYNC910 (the point of this fake)
        self.sent.append(message)


def text(value: str) -> Message:
    # Hypercorn's shape: both keys, one of them None.
    return {"type": "websocket.receive", "text": value, "bytes": None}


def binary(value: bytes) -> Message:
    return {"type": "websocket.receive", "text": None, "bytes": value}


# ---------------------------------------------------------------- 1. every method is a checkpoint


Step = Callable[[WebSocket, NeverYieldingServer], Awaitable[object]]

STEPS: dict[str, Step] = {
    "send_text": lambda ws, s: ws.send_text("x"),
    "send_bytes": lambda ws, s: ws.send_bytes(b"x"),
    "send_json": lambda ws, s: ws.send_json({"x": 1}),
    "send_json_binary": lambda ws, s: ws.send_json([1], mode="binary"),
    "send": lambda ws, s: ws.send({"type": "websocket.send", "text": "x"}),
    "receive_text": lambda ws, s: ws.receive_text(),
    "receive_bytes": lambda ws, s: ws.receive_bytes(),
    "receive_json": lambda ws, s: ws.receive_json(),
    "receive": lambda ws, s: ws.receive(),
    "close": lambda ws, s: ws.close(),
}
NEEDS = {"receive_text": text("t"), "receive_json": text("1"), "receive": text("t")}
NEEDS["receive_bytes"] = binary(b"b")


@pytest.mark.parametrize("session", [False, True], ids=["plain", "session"])
@pytest.mark.parametrize("channel", [False, True], ids=["opaque-receive", "channel-receive"])
@pytest.mark.parametrize("step", sorted(STEPS))
async def test_every_public_method_is_a_checkpoint_on_a_server_that_never_yields(
    step: str, channel: bool, session: bool
) -> None:
    server = NeverYieldingServer(channel=channel)
    ws = WebSocket(server.scope, server.receive, server.send)
    if step in NEEDS:
        server.push(NEEDS[step])
    if not session:
        with trio.testing.assert_checkpoints():
            await ws.accept()
        with trio.testing.assert_checkpoints():
            await STEPS[step](ws, server)
        return
    async with ws:
        with trio.testing.assert_checkpoints():
            await ws.accept()
        with trio.testing.assert_checkpoints():
            await STEPS[step](ws, server)
        server.push({"type": "websocket.disconnect", "code": 1000})


@pytest.mark.parametrize("channel", [False, True], ids=["opaque-receive", "channel-receive"])
async def test_session_only_paths_are_checkpoints_on_a_server_that_never_yields(
    channel: bool,
) -> None:
    server = NeverYieldingServer(channel=channel)
    async with WebSocket(server.scope, server.receive, server.send) as ws:
        await ws.accept()
        server.push({"type": "websocket.disconnect", "code": 1001})
        with trio.testing.assert_checkpoints():
            await ws.wait_disconnected()
        with trio.testing.assert_checkpoints(), pytest.raises(WebSocketDisconnect):
            await ws.send_text("after")  # raises at once, still a checkpoint
        with trio.testing.assert_checkpoints():
            await ws.close()  # a no-op after the client left, still a checkpoint
        with trio.testing.assert_checkpoints(), pytest.raises(WebSocketDisconnect):
            await ws.receive_text()


async def test_deny_and_session_entry_errors_are_checkpoints() -> None:
    server = NeverYieldingServer(channel=True)
    ws = WebSocket(server.scope, server.receive, server.send)
    with trio.testing.assert_checkpoints():
        await ws.deny(404)
    async with WebSocket(server.scope, server.receive, server.send) as entered:
        with trio.testing.assert_checkpoints(), pytest.raises(RuntimeError, match="already"):
            await entered.__aenter__()
        await entered.deny()


async def test_send_loop_on_a_server_that_stops_yielding_lets_its_reader_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Issue 7 item 1, in process: Hypercorn drops each send without yielding once it has
    processed the client's close; its reader task must still get to queue the disconnect, and
    cancel_on_disconnect must then end the loop."""
    server = NeverYieldingServer(channel=True)
    sends_before_the_close = 10

    async def hypercorn_reader() -> None:
        # The server's reader: it runs only when the application yields.
        while len(server.sent) < 1 + sends_before_the_close:  # accept + 10 sends
            await trio.lowlevel.checkpoint()
        server.push({"type": "websocket.disconnect", "code": 1000})

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(hypercorn_reader)
            async with WebSocket(server.scope, server.receive, server.send) as ws:
                await ws.accept()
                with ws.cancel_on_disconnect() as scope:
                    while True:
                        await ws.send_bytes(b"x" * 1000)
    assert scope.cancelled_caught
    assert (ws.close_code, ws.closed_by) == (1000, "client")
    after = len(server.sent) - 1 - sends_before_the_close
    assert after <= 2, f"{after} sends 'succeeded' after the client's close was queued"


async def test_bounded_send_loop_raises_once_the_disconnect_is_queued(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = NeverYieldingServer(channel=True)
    async with WebSocket(server.scope, server.receive, server.send) as ws:
        await ws.accept()
        sent = 0
        with pytest.raises(WebSocketDisconnect) as info:
            for _ in range(5000):
                await ws.send_bytes(b"x")
                sent += 1
                if sent == 10:
                    server.push({"type": "websocket.disconnect", "code": 1009, "reason": "big"})
        assert (info.value.code, info.value.reason) == (1009, "big")
        assert sent == 10


# ---------------------------------------------------------------- 2. pipelining


async def echo_pipelined(
    answers: int, receivers: int, messages: int, *, channel: bool = True
) -> tuple[list[str], WebSocket]:
    """A client that sends everything before reading; the app answers each message."""
    server = FakeServer(channel_receive=channel, queue_size=10)
    server.echo_close = False
    got: list[str] = []

    async def client() -> None:
        await server.accepted.wait()
        for i in range(messages):
            await server.client_text(str(i))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client)
        async with WebSocket(server.scope, server.receive, server.send) as ws:
            await ws.accept()

            async def receiver() -> None:
                while len(got) < messages:
                    with trio.move_on_after(1):
                        message = await ws.receive_text()
                        got.append(message)
                        for k in range(answers):
                            await ws.send_text(f"{message}.{k}")

            async with trio.open_nursery() as receivers_nursery:
                for _ in range(receivers):
                    receivers_nursery.start_soon(receiver)
            assert ws.close_code is None, f"closed with {ws.close_code} {ws.close_reason!r}"
            await server.client_disconnect(1000)
    return got, ws


@pytest.mark.parametrize("channel", [True, False], ids=["channel", "pump"])
@pytest.mark.parametrize(("answers", "receivers"), [(1, 1), (3, 1), (0, 1), (1, 3)])
async def test_pipelining_client_is_never_closed_while_the_app_receives(
    answers: int, receivers: int, channel: bool, autojump_clock: trio.testing.MockClock
) -> None:
    got, ws = await echo_pipelined(answers, receivers, 2000, channel=channel)
    assert sorted(got, key=int) == [str(i) for i in range(2000)]
    if receivers == 1:
        assert got == [str(i) for i in range(2000)]
    assert ws.close_code == 1000


async def test_pipelining_with_a_disconnect_watcher_is_never_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(channel_receive=True, queue_size=10)
    async with WebSocket(server.scope, server.receive, server.send) as ws:
        await ws.accept()

        async def client() -> None:
            for i in range(500):
                await server.client_text(str(i))
            while len(server.data_sent()) < 500:  # noqa: ASYNC110 (reads every echo, then leaves)
                await trio.sleep(0.01)
            await server.client_disconnect(1000)

        ws.start_soon(client)
        ws.start_soon(ws.wait_disconnected)  # a watcher: the pump reads ahead meanwhile
        got: list[str] = []
        async for message in ws.iter_text():
            got.append(message)
            await ws.send_text(message)
        assert got == [str(i) for i in range(500)]
        assert (ws.close_code, ws.closed_by) == (1000, "client")


async def test_inbox_full_closes_1008_only_after_nobody_took_a_message_for_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(channel_receive=True, queue_size=4)
    server.echo_close = False
    async with WebSocket(
        server.scope, server.receive, server.send, max_queued_messages=4, inbox_full_timeout=3
    ) as ws:
        await ws.accept()

        async def client() -> None:
            for i in range(100):
                await server.client_text(str(i))
            await server.client_disconnect(1000)  # the answer to the 1008

        ws.start_soon(client)
        with ws.cancel_on_disconnect() as scope:
            # A slow reader: one message every 2.5 s keeps the session open; the last one is
            # taken at 12.5 s, so the inbox stays full from then on and closes at 15.5 s.
            for expected in range(6):
                assert await ws.receive_text() == str(expected)
                await trio.sleep(2.5)
            assert ws.close_code is None
            await trio.sleep_forever()  # then it stops reading
        assert scope.cancelled_caught
        assert (ws.close_code, ws.close_reason) == (1008, "too many unread messages")
        assert trio.current_time() == pytest.approx(5 * 2.5 + 3, abs=0.3)


# ---------------------------------------------------------------- 3. message shapes


@pytest.mark.parametrize("session", [False, True], ids=["plain", "session"])
@pytest.mark.parametrize(
    ("message", "call"),
    [
        (binary(b"[1]"), lambda ws: ws.receive_json()),
        (text("[1]"), lambda ws: ws.receive_json(mode="binary")),
        (binary(b"b"), lambda ws: ws.receive_text()),
        (text("t"), lambda ws: ws.receive_bytes()),
        ({"type": "websocket.receive", "bytes": b"b"}, lambda ws: ws.receive_json()),
        ({"type": "websocket.receive", "text": "t"}, lambda ws: ws.receive_bytes()),
    ],
    ids=[
        "json-got-binary",
        "binary-json-got-text",
        "text-got-binary",
        "bytes-got-text",
        "json-got-binary-one-key",
        "bytes-got-text-one-key",
    ],
)
async def test_the_wrong_frame_type_is_one_clear_error_whatever_the_message_shape(
    message: Message, call: Callable[[WebSocket], Awaitable[object]], session: bool
) -> None:
    server = NeverYieldingServer(channel=True)
    server.push(message)
    ws = WebSocket(server.scope, server.receive, server.send)
    if session:
        await ws.__aenter__()
    await ws.accept()
    with pytest.raises(WebSocketMessageTypeError) as info:
        await call(ws)
    # Whatever a Starlette program catches there (KeyError or TypeError) still catches it.
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, TypeError)
    assert "got a" in str(info.value)
    if session:
        server.push({"type": "websocket.disconnect", "code": 1000})
        await ws.__aexit__(None, None, None)


async def test_hypercorn_shaped_messages_with_none_read_as_absent() -> None:
    server = NeverYieldingServer(channel=True)
    for message in (text("a"), binary(b"b"), text('{"j": 1}'), binary(b"[2]")):
        server.push(message)
    async with WebSocket(server.scope, server.receive, server.send) as ws:
        await ws.accept()
        assert await ws.receive_text() == "a"
        assert await ws.receive_bytes() == b"b"
        assert await ws.receive_json() == {"j": 1}
        assert await ws.receive_json(mode="binary") == [2]
        assert ws.statistics().bytes_received == 1 + 1 + 8 + 3
        server.push({"type": "websocket.disconnect", "code": 1000})


# ---------------------------------------------------------------- 4. arguments


def _noop_receive() -> Any:
    return None


@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"max_message_size": "big"}, TypeError, "max_message_size"),
        ({"max_message_size": -1}, ValueError, "max_message_size"),
        ({"close_timeout": -1}, ValueError, "close_timeout"),
        ({"close_timeout": "2"}, TypeError, "close_timeout"),
        ({"max_queued_messages": 0}, ValueError, "max_queued_messages"),
        ({"max_queued_messages": 2.5}, TypeError, "max_queued_messages"),
        ({"inbox_full_timeout": 0}, ValueError, "inbox_full_timeout"),
        ({"send_timeout": float("nan")}, ValueError, "send_timeout"),
        ({"close_on_invalid_json": "yes"}, TypeError, "close_on_invalid_json"),
        ({"shield_sends": 1}, TypeError, "shield_sends"),
        ({"shutdown_close_code": 1006}, ValueError, "1006"),
        ({"on_inbox_full": "drop"}, ValueError, "on_inbox_full"),
    ],
)
def test_options_are_checked_at_construction_with_the_argument_named(
    options: dict[str, Any], error: type[Exception], names: str
) -> None:
    server = FakeServer()
    with pytest.raises(error, match=names):
        WebSocket(server.scope, server.receive, server.send, **options)
    with pytest.raises(error, match=names):
        trio_ws.websocket_app(lambda ws: None, **options)  # type: ignore[arg-type,return-value]
    with pytest.raises(error, match=names):
        WebSocketRoute("/ws", _endpoint, **options)


async def _endpoint(ws: WebSocket) -> None:
    await ws.accept()


@pytest.mark.parametrize(
    ("build", "error", "names"),
    [
        (lambda: Route("/", _endpoint, methods="POST"), TypeError, "methods"),
        (lambda: Route("/", _endpoint, methods=[b"POST"]), TypeError, "methods"),
        (lambda: Route(b"/", _endpoint), TypeError, "path"),
        (lambda: Route("/", "not callable"), TypeError, "endpoint"),
        (lambda: WebSocketRoute("/ws", None), TypeError, "endpoint"),
        (lambda: WebSocketRoute("/ws", _endpoint, name=3), TypeError, "name"),
        (lambda: Router(WebSocketRoute("/ws", _endpoint)), TypeError, "routes"),
        (lambda: Router(["/ws"]), TypeError, "routes"),
        (lambda: trio_ws.Mount(3, routes=[]), TypeError, "path"),
        (lambda: WebSocket({"type": "websocket"}, None, None), TypeError, "receive"),
    ],
)
def test_constructors_refuse_wrong_types_with_the_argument_named(
    build: Callable[[], object], error: type[Exception], names: str
) -> None:
    with pytest.raises(error, match=names):
        build()


async def test_unsendable_exit_code_closes_1011_and_says_why(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    class Sloppy(WebSocketException):
        def __init__(self) -> None:  # skips WebSocketException's checks
            self.code, self.reason = 999, "x"

    server = FakeServer()
    with caplog.at_level(logging.WARNING, logger="trio_ws"):
        async with WebSocket(server.scope, server.receive, server.send) as ws:
            await ws.accept()
            raise Sloppy
    assert server.close_sent() == {"type": "websocket.close", "code": 1011, "reason": ""}
    assert ["999" in r.getMessage() and "1011" in r.getMessage() for r in caplog.records] == [True]


async def test_websocket_exception_with_a_list_reason_fails_at_the_raise() -> None:
    with pytest.raises(TypeError, match=r"json\.dumps"):
        raise WebSocketException(1008, [{"msg": "field required"}])  # type: ignore[arg-type]
    assert json.dumps([{"msg": "field required"}])  # what the message suggests instead


# ---------------------------------------------------------------- 5. exits before accept


def _status_sent(server: FakeServer) -> int | None:
    for message in server.sent:
        if message["type"] == "websocket.http.response.start":
            return int(message["status"])
        if message["type"] == "websocket.close":
            return 403  # what servers answer a close before accept with
    return None


@pytest.mark.parametrize(
    ("ending", "status"),
    [("return", 403), ("exception", 403), ("error", 500), ("cancelled", 503)],
)
@pytest.mark.parametrize("extension", [True, False], ids=["denial-extension", "no-extension"])
async def test_exit_before_accept_answers_the_status_its_cause_calls_for(
    ending: str, status: int, extension: bool, autojump_clock: trio.testing.MockClock
) -> None:
    server = FakeServer(extensions=None if extension else {})
    with trio.CancelScope() as outside:
        try:
            async with WebSocket(server.scope, server.receive, server.send):
                if ending == "exception":
                    raise WebSocketException(4000, "no")
                if ending == "error":
                    raise RuntimeError("boom")
                if ending == "cancelled":
                    outside.cancel()
                    await trio.sleep_forever()
        except RuntimeError:
            assert ending == "error"
    assert _status_sent(server) == (status if extension else 403)


async def test_accepting_a_subprotocol_the_server_lost_from_a_repeated_header_says_why() -> None:
    # Hypercorn keeps only the last Sec-WebSocket-Protocol header in the scope (DESIGN 3 item
    # 15) and would refuse (crash on) an accept of the first one: the session says why.
    server = FakeServer(
        subprotocols=["chat.v2"],
        headers=[(b"sec-websocket-protocol", b"chat.v1"), (b"sec-websocket-protocol", b"chat.v2")],
    )
    async with WebSocket(server.scope, server.receive, server.send) as ws:
        with pytest.raises(ValueError, match=r"several Sec-WebSocket-Protocol headers"):
            await ws.accept("chat.v1")
        await ws.accept("chat.v2")
        await ws.close()
    assert server.sent[0]["subprotocol"] == "chat.v2"


def test_a_session_or_router_outside_trio_says_it_needs_the_trio_worker() -> None:
    # hypercorn without -k trio calls the app from asyncio; say so instead of failing deep inside.
    import asyncio

    async def enter_session() -> None:
        server_scope = websocket_scope()

        async def receive() -> Message:
            return {"type": "websocket.connect"}

        async def send(message: Message) -> None:
            return None

        async with WebSocket(server_scope, receive, send):
            pass  # pragma: no cover

    with pytest.raises(RuntimeError, match="trio worker"):
        asyncio.run(enter_session())

    sent: list[Message] = []

    async def lifespan() -> None:
        async def receive() -> Message:
            return {"type": "lifespan.startup"}

        async def send(message: Message) -> None:
            sent.append(message)

        await Router([])({"type": "lifespan", "state": {}}, receive, send)

    asyncio.run(lifespan())
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "hypercorn -k trio" in sent[0]["message"]


async def test_a_session_keeps_the_instance_a_websocket_in_name_and_isinstance(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Entering moves the instance to a subclass with the session's receive and send (no extra
    # frame per message, no memory per connection); nothing else may notice.
    server = FakeServer()
    ws = WebSocket(server.scope, server.receive, server.send)
    shown = repr(ws).split(" at ")[0]
    async with ws:
        assert isinstance(ws, WebSocket)
        assert type(ws).__name__ == "WebSocket"
        assert type(ws).__qualname__ == WebSocket.__qualname__
        assert repr(ws).split(" at ")[0] == shown
        assert not hasattr(ws, "__dict__") or "receive" not in vars(ws)
        await ws.accept()


async def test_a_disconnect_seen_at_the_end_of_the_queue_leaves_the_client_disconnected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer()
    async with WebSocket(server.scope, server.receive, server.send) as ws:
        await ws.accept()
        await server.client_text("unread")
        await server.client_disconnect(1001)
        with pytest.raises(WebSocketDisconnect):
            await ws.send_text("tick")  # sees the disconnect behind the unread message
        assert ws.client_state is trio_ws.WebSocketState.CONNECTED  # "unread" is still there
    assert ws.client_state is trio_ws.WebSocketState.DISCONNECTED
    assert (ws.close_code, ws.closed_by) == (1001, "client")


async def test_a_send_the_server_refuses_reports_the_disconnect_it_queued(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # serve's data plane, like the ASGI spec asks, raises OSError from send once the connection
    # is over, having queued the client's disconnect meanwhile: the session reports that one
    # (here 1000 from the client), not a made-up 1006.
    server = FakeServer()

    async def closing(message: dict[str, object]) -> None:
        if message["type"] == "websocket.send":
            await server.client_disconnect(1000, "bye")
            raise ConnectionResetError("closed")

    async with WebSocket(server.scope, server.receive, server.send) as ws:
        await ws.accept()
        server.send_hook = closing
        with pytest.raises(WebSocketDisconnect) as info:
            await ws.send_text("late")
        server.send_hook = None
    assert (info.value.code, info.value.reason) == (1000, "bye")
    assert (ws.close_code, ws.closed_by) == (1000, "client")


async def test_a_refused_send_reports_the_disconnect_the_server_could_not_queue_yet(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The same, when the app's channel is full so the disconnect is not in it yet: serve's
    # data plane puts the disconnect it decided on the refusal (``disconnect``), and the
    # session reports that; the message itself arrives later, after what the client sent.
    server = FakeServer()

    class Refused(ConnectionError):
        disconnect: ClassVar[dict[str, object]] = {
            "type": "websocket.disconnect",
            "code": 4001,
            "reason": "gone",
        }

    async def refusing(message: dict[str, object]) -> None:
        if message["type"] == "websocket.send":
            raise Refused("closed")

    async with WebSocket(server.scope, server.receive, server.send) as ws:
        await ws.accept()
        server.send_hook = refusing
        with pytest.raises(WebSocketDisconnect) as info:
            await ws.send_text("late")
        # The attributes agree at once, before the disconnect message is read.
        assert (ws.close_code, ws.close_reason, ws.closed_by) == (4001, "gone", "client")
        server.send_hook = None
    assert (info.value.code, info.value.reason) == (4001, "gone")
