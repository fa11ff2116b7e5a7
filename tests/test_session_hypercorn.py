"""Sessions served by Hypercorn's trio worker: every exit path and session guarantee, end to end.

Part A runs Hypercorn's trio ``TCPServer`` over in-memory streams (``hypercorn_memory``) with a
wsproto client, under the ``autojump_clock``: deterministic, and virtual time makes the timeouts
free. Part B runs the real ``hypercorn.trio.serve`` on a socket (``hypercorn_server``) against the
two real clients, trio-websocket and the ``websockets`` library, with every wait bounded.

The exit paths and what each must look like are the table in ``WebSocket.__aexit__`` (and
``docs/cancellation.rst``); DESIGN.md section 2 lists the session guarantees and section 3 the
Hypercorn behaviours they are built on top of.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trio.testing
import websockets.exceptions
import websockets.sync.client
from trio_websocket import (
    ConnectionClosed,
)
from wsproto.events import CloseConnection, TextMessage

import trio_ws
from tests.hypercorn_harness import (
    Connect,
    Rejected,
    hypercorn_memory,
    hypercorn_server,
    trio_websocket_client,
    ws_connect,
)
from trio_ws import WebSocket, WebSocketDisconnect, WebSocketException

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]
Handler = Callable[[WebSocket], Awaitable[None]]

TIMEOUT = 5.0
"""Bound on every wait: virtual seconds in memory, real seconds on sockets."""


# ---------------------------------------------------------------------------------------- helpers


@dataclass(eq=False)
class Probe:
    """Records how each call of the wrapped app ended: ``None`` or the exception that escaped.

    What escapes the app is what Hypercorn gets (and logs, if it is an error).
    """

    outcomes: list[BaseException | None] = field(default_factory=list)
    ended: int = 0
    _changed: trio.Event = field(default_factory=trio.Event)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def probed(scope: dict[str, Any], receive: Receive, send: Send) -> None:
            if scope["type"] != "websocket":
                await app(scope, receive, send)
                return
            try:
                await app(scope, receive, send)
            except BaseException as exc:
                self._record(exc)
                raise
            self._record(None)

        return probed

    def _record(self, outcome: BaseException | None) -> None:
        self.outcomes.append(outcome)
        self.ended += 1
        self._changed.set()
        self._changed = trio.Event()

    async def wait_ended(self, count: int = 1) -> BaseException | None:
        """Wait until ``count`` connections have ended; return how the ``count``-th ended."""
        with trio.fail_after(TIMEOUT):
            while self.ended < count:
                await self._changed.wait()
        return self.outcomes[count - 1]


def probed_app(handler: Handler, **options: Any) -> tuple[ASGIApp, Probe]:
    """``websocket_app(handler)``, but path ``/echo`` runs :func:`echo`; and its probe."""

    async def route(ws: WebSocket) -> None:
        await (echo(ws) if ws.url.path == "/echo" else handler(ws))

    probe = Probe()
    return probe.wrap(trio_ws.websocket_app(route, **options)), probe


async def wait(event: trio.Event) -> None:
    with trio.fail_after(TIMEOUT):
        await event.wait()


def is_cancellation(exc: BaseException | None) -> bool:
    """``Cancelled``, or trio's own group made only of ``Cancelled``."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(trio.Cancelled)[1] is None
    return isinstance(exc, trio.Cancelled)


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    async for text in ws.iter_text():
        await ws.send_text(text)


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What Hypercorn logged at ERROR (it logs "Error in ASGI Framework" for an app error)."""
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


async def assert_memory_echo(connect: Connect) -> None:
    """A fresh connection to the same server echoes, and closes cleanly."""
    client = await connect("/echo")
    assert client.accepted is not None
    await client.send_text("still there?")
    assert await client.receive_event() == TextMessage(data="still there?")
    await client.close(1000)
    assert await client.receive_event() == CloseConnection(code=1000, reason="")
    assert client.server_finished is not None
    await wait(client.server_finished)


# ============================================================= A. in memory, under autojump_clock


async def test_memory_return_after_accept_closes_1000(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Returned after accept: close 1000, not the 1011 Hypercorn sends for a bare return."""

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("hi")

    app, probe = probed_app(handler)
    async with hypercorn_memory(app) as connect:
        client = await connect()
        assert await client.receive_event() == TextMessage(data="hi")
        assert await client.receive_event() == CloseConnection(code=1000, reason="")
        assert await probe.wait_ended() is None
        assert client.server_finished is not None
        await wait(client.server_finished)


async def test_memory_return_before_accept_denies_403(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Returned before accept: the handshake is refused with HTTP 403."""

    async def handler(ws: WebSocket) -> None:
        return

    app, probe = probed_app(handler)
    async with hypercorn_memory(app) as connect:
        client = await connect()
        assert client.accepted is None
        assert client.rejection is not None
        assert client.rejection.status_code == 403
        assert await probe.wait_ended() is None


async def test_memory_client_close_ends_quietly(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """``WebSocketDisconnect`` (the client closed first) is a normal end: nothing escapes."""
    seen: list[WebSocketDisconnect] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await ws.receive_text()  # the disconnect propagates out of the handler
        except WebSocketDisconnect as exc:
            seen.append(exc)
            raise

    app, probe = probed_app(handler)
    async with hypercorn_memory(app) as connect:
        client = await connect()
        await client.close(1000)
        assert await client.receive_event() == CloseConnection(code=1000, reason="")
        assert await probe.wait_ended() is None
        assert client.server_finished is not None
        await wait(client.server_finished)
    assert [exc.code for exc in seen] == [1006]  # DESIGN 3 item 1: the client's code is lost
    assert errors_logged(caplog) == []


async def test_memory_websocket_exception_closes_with_its_code(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """``WebSocketException(4001, "bye")``: the client sees 4001 "bye"; nothing escapes."""

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        raise WebSocketException(4001, "bye")

    app, probe = probed_app(handler)
    async with hypercorn_memory(app) as connect:
        client = await connect()
        assert await client.receive_event() == CloseConnection(code=4001, reason="bye")
        assert await probe.wait_ended() is None
        assert client.server_finished is not None
        await wait(client.server_finished)
    assert errors_logged(caplog) == []


async def test_memory_error_closes_1011_and_propagates(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Any other exception: close 1011, and the exception itself escapes to Hypercorn, once."""
    boom = RuntimeError("boom")

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        raise boom

    app, probe = probed_app(handler)
    async with hypercorn_memory(app) as connect:
        client = await connect()
        assert await client.receive_event() == CloseConnection(code=1011, reason="")
        assert await probe.wait_ended() is boom  # not wrapped in an exception group
        assert boom.__traceback__ is not None
        assert client.server_finished is not None
        await wait(client.server_finished)
        await assert_memory_echo(connect)  # Hypercorn logged it and keeps serving
    [logged] = errors_logged(caplog)
    assert logged.getMessage() == "Error in ASGI Framework"
    assert logged.exc_info is not None
    assert logged.exc_info[1] is boom


@pytest.mark.parametrize(
    ("options", "code"),
    [({}, 1012), ({"shutdown_close_code": 1001}, 1001)],
    ids=["default", "1001"],
)
async def test_memory_cancelled_from_outside_closes_with_shutdown_code(
    autojump_clock: trio.testing.MockClock, options: dict[str, Any], code: int
) -> None:
    """Cancelled from outside (an application timeout around the app): close 1012, or
    ``shutdown_close_code``; the cancellation propagates (to the timeout, which absorbs it)."""
    waiting = trio.Event()
    timed_out: list[bool] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        waiting.set()
        await ws.receive_text()

    inner, probe = probed_app(handler, **options)

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        with trio.move_on_after(10) as timeout:
            await inner(scope, receive, send)
        timed_out.append(timeout.cancelled_caught)

    async with hypercorn_memory(app) as connect:
        client = await connect()
        await wait(waiting)
        start = trio.current_time()
        client.wait_limit = 20
        assert await client.receive_event() == CloseConnection(code=code, reason="")
        assert trio.current_time() - start == pytest.approx(10)
        assert is_cancellation(await probe.wait_ended())
        assert client.server_finished is not None
        await wait(client.server_finished)
    assert timed_out == [True]


async def test_memory_helper_error_closes_1011(autojump_clock: trio.testing.MockClock) -> None:
    """A helper task (``ws.start_soon``) that raises: close 1011; its error escapes in a group."""
    body_cancelled: list[bool] = []

    async def failing_helper() -> None:
        await trio.sleep(1)
        raise RuntimeError("helper failed")

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        ws.start_soon(failing_helper)
        try:
            await ws.receive_text()
        except trio.Cancelled:
            body_cancelled.append(True)
            raise

    app, probe = probed_app(handler)
    async with hypercorn_memory(app) as connect:
        client = await connect()
        assert await client.receive_event() == CloseConnection(code=1011, reason="")
        outcome = await probe.wait_ended()
        assert client.server_finished is not None
        await wait(client.server_finished)
        await assert_memory_echo(connect)
    assert pytest.RaisesGroup(
        pytest.RaisesExc(RuntimeError, match="helper failed"), flatten_subgroups=True
    ).matches(outcome)
    assert body_cancelled == [True]


async def test_memory_send_only_handler_learns_of_disconnect_on_next_send(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A handler that only sends gets ``WebSocketDisconnect`` from its first send after the
    client left (Hypercorn alone swallows such sends: DESIGN 3 item 2)."""
    sent: list[float] = []
    raised_at: list[float] = []
    errors: list[WebSocketDisconnect] = []

    async def ticker(ws: WebSocket) -> None:
        await ws.accept()
        try:
            for i in range(1000):
                await ws.send_text(f"tick {i}")
                sent.append(trio.current_time())
                await trio.sleep(1)
        except WebSocketDisconnect as exc:
            raised_at.append(trio.current_time())
            errors.append(exc)
            raise

    app, probe = probed_app(ticker)
    async with hypercorn_memory(app) as connect:
        client = await connect()
        for i in range(3):
            assert await client.receive_event() == TextMessage(data=f"tick {i}")
        await client.close(1000)
        assert await client.receive_event() == CloseConnection(code=1000, reason="")
        # Hypercorn has queued the disconnect for the app; the ticker still sleeps.
        await trio.testing.wait_all_tasks_blocked()
        closed_at = trio.current_time()
        sends_before = len(sent)
        assert await probe.wait_ended() is None
        assert client.server_finished is not None
        await wait(client.server_finished)
    assert len(sent) - sends_before == 0  # no send "succeeded" into the void
    assert raised_at[0] - closed_at <= 1  # at the very next send
    assert errors[0].code == 1006
    assert sends_before == 3


async def test_memory_cancel_on_disconnect_ends_ticker(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``cancel_on_disconnect`` ends a slow ticker loop as soon as the client leaves, and is
    absorbed at the end of the ``with`` block."""
    after: list[tuple[bool, float, int | None, str | None]] = []
    started = trio.Event()

    async def ticker(ws: WebSocket) -> None:
        await ws.accept()
        with ws.cancel_on_disconnect() as scope:
            started.set()
            while True:
                await ws.send_text("tick")
                await trio.sleep(100)
        after.append((scope.cancelled_caught, trio.current_time(), ws.close_code, ws.closed_by))

    app, probe = probed_app(ticker)
    async with hypercorn_memory(app) as connect:
        client = await connect()
        await wait(started)
        assert await client.receive_event() == TextMessage(data="tick")
        await trio.sleep(5)
        closed_at = trio.current_time()
        await client.close(1000)
        assert await client.receive_event() == CloseConnection(code=1000, reason="")
        assert await probe.wait_ended() is None
        assert client.server_finished is not None
        await wait(client.server_finished)
    assert after == [(True, closed_at, 1006, "client")]


@pytest.mark.parametrize("how", ["send", "wait_disconnected", "return"])
async def test_memory_unread_messages_do_not_wedge_hypercorn(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    """An app that never receives while the client sends 30 messages and closes: Hypercorn's
    queue holds 10 (DESIGN 3 item 6), yet the session still ends and the connection with it."""
    finished = trio.Event()
    stats: list[trio_ws.SessionStatistics] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await finished.wait()  # the client has sent everything and closed
        if how == "send":
            while True:
                await ws.send_text("tick")
                await trio.sleep(1)
        elif how == "wait_disconnected":
            await ws.wait_disconnected()
            stats.append(ws.statistics())

    app, probe = probed_app(handler)
    async with hypercorn_memory(app) as connect:
        client = await connect()
        for i in range(30):
            await client.send_text(f"message {i}")
        await client.close(1000)
        await trio.testing.wait_all_tasks_blocked()
        finished.set()
        assert await probe.wait_ended() is None
        assert client.server_finished is not None
        await wait(client.server_finished)
        events = []
        while not isinstance(event := await client.receive_event(), CloseConnection):
            events.append(event)
        assert event.code == 1000
        assert all(e == TextMessage(data="tick") for e in events)
    if how == "wait_disconnected":
        assert stats[0].messages_received == 30
        assert stats[0].close_code == 1006
        assert stats[0].closed_by == "client"


async def test_memory_application_timeout_with_unread_messages_does_not_wedge_hypercorn(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Cancelled from outside by an application timeout while 30 messages wait unread: the
    client gets 1012 and answers it, and the connection must still end. Hypercorn's reader is
    alive here (unlike at server shutdown) but blocked on its full queue of 10 (DESIGN 3 item 6),
    so somebody has to drain it for the client's answer to get through."""
    waiting = trio.Event()

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        waiting.set()
        await trio.sleep_forever()

    inner, probe = probed_app(handler)

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        with trio.move_on_after(10):
            await inner(scope, receive, send)

    async with hypercorn_memory(app) as connect:
        client = await connect()
        await wait(waiting)
        for i in range(30):
            await client.send_text(f"message {i}")
        client.wait_limit = 20
        assert await client.receive_event() == CloseConnection(code=1012, reason="")
        assert is_cancellation(await probe.wait_ended())
        assert client.server_finished is not None
        with trio.move_on_after(TIMEOUT):
            await client.server_finished.wait()
        assert client.server_finished.is_set(), "Hypercorn's connection is wedged until shutdown"


@pytest.mark.parametrize("watch", ["wait_disconnected", "cancel_on_disconnect"])
async def test_memory_disconnect_is_seen_past_a_full_inbox(
    autojump_clock: trio.testing.MockClock, watch: str
) -> None:
    """A handler busy elsewhere still learns that the client left (DESIGN 2: "a disconnect never
    queues behind data"; docs/hypercorn.rst on the slow reader).

    The client sends 40 messages and closes while the handler waits for the disconnect. The
    inbox holds 32 (``max_queued_messages``); the rest, disconnect included, already sits in
    Hypercorn's queue (9 of 10), so only the session's own limit could stand in the way.
    """
    go = trio.Event()
    learned: list[bool] = []
    stats: list[trio_ws.SessionStatistics] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await go.wait()
        with trio.move_on_after(3) as timeout:
            if watch == "wait_disconnected":
                await ws.wait_disconnected()
            else:
                with ws.cancel_on_disconnect():
                    await trio.sleep_forever()
        learned.append(not timeout.cancelled_caught)
        stats.append(ws.statistics())

    app, probe = probed_app(handler)
    async with hypercorn_memory(app) as connect:
        client = await connect()
        for i in range(40):
            await client.send_text(f"m{i}")
        await client.close(1000)
        await trio.testing.wait_all_tasks_blocked()
        go.set()
        assert await probe.wait_ended() is None
    assert stats[0].max_queued_in == 32
    assert learned == [True], f"the disconnect stayed behind the full inbox: {stats[0]}"


async def test_memory_send_only_handler_keeps_the_inbox_bounded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A handler that only sends, to a client that keeps sending: each send moves what Hypercorn
    has queued into the session's inbox, which must stay within ``max_queued_messages``
    (DESIGN 2: "bounded memory everywhere"; docs: a bounded inbox)."""
    go = trio.Event()
    queued: list[int] = []

    async def ticker(ws: WebSocket) -> None:
        await ws.accept()
        await go.wait()
        for _ in range(100):
            await ws.send_text("tick")
            queued.append(ws.statistics().queued_in)

    app, probe = probed_app(ticker)
    async with hypercorn_memory(app) as connect:
        client = await connect()
        for i in range(100):
            await client.send_text(f"m{i}")
        await trio.testing.wait_all_tasks_blocked()
        go.set()
        assert await probe.wait_ended() is None
    assert max(queued) <= 32, f"the inbox held up to {max(queued)} messages (limit 32)"


async def test_memory_disconnect_in_helpers_ends_quietly(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """``WebSocketDisconnect`` in helper tasks (two of them receiving) is a normal end: no
    exception group made only of disconnects escapes, and nothing is sent."""
    disconnects: list[int] = []

    async def receiver(ws: WebSocket) -> None:
        try:
            await ws.receive_text()
        except WebSocketDisconnect as exc:
            disconnects.append(exc.code)
            raise

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        ws.start_soon(receiver, ws)
        ws.start_soon(receiver, ws)
        await trio.sleep_forever()

    app, probe = probed_app(handler)
    async with hypercorn_memory(app) as connect:
        client = await connect()
        await trio.testing.wait_all_tasks_blocked()
        await client.close(1000)
        assert await client.receive_event() == CloseConnection(code=1000, reason="")
        assert await probe.wait_ended() is None
        assert client.server_finished is not None
        await wait(client.server_finished)
    assert disconnects
    assert set(disconnects) == {1006}
    assert errors_logged(caplog) == []


async def test_memory_websocket_exception_in_helper_closes_with_its_code(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """``WebSocketException`` in a helper task closes with its code and reason; nothing escapes."""

    async def closer(ws: WebSocket) -> None:
        await trio.sleep(1)
        raise WebSocketException(4002, "from a helper")

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        ws.start_soon(closer, ws)
        await ws.receive_text()

    app, probe = probed_app(handler)
    async with hypercorn_memory(app) as connect:
        client = await connect()
        assert await client.receive_event() == CloseConnection(code=4002, reason="from a helper")
        assert await probe.wait_ended() is None
        assert client.server_finished is not None
        await wait(client.server_finished)


async def test_memory_unoffered_subprotocol_raises_before_hypercorn_sees_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Accepting with a subprotocol the client did not offer raises ``ValueError`` in the app
    before anything reaches Hypercorn (which would crash: DESIGN 3 item 4); the client is denied
    and the server keeps serving."""
    errors: list[BaseException] = []

    async def handler(ws: WebSocket) -> None:
        try:
            await ws.accept(subprotocol="graphql-transport-ws")
        except ValueError as exc:
            errors.append(exc)
            raise

    app, probe = probed_app(handler)
    async with hypercorn_memory(app) as connect:
        client = await connect("/bad", subprotocols=["chat"])
        assert client.accepted is None
        assert client.rejection is not None
        assert client.rejection.status_code == 500  # an error before accept (issue 7 item 5)
        outcome = await probe.wait_ended()
        assert outcome is errors[0]
        assert "graphql-transport-ws" in str(outcome)
        await assert_memory_echo(connect)


async def test_memory_plain_websocket_unoffered_subprotocol_crashes_server(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The contrast: used plainly (Starlette's behaviour, no validation), the same accept
    reaches Hypercorn, whose connection task crashes (DESIGN 3 item 4)."""

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive, send)
        await ws.accept(subprotocol="graphql-transport-ws")

    with pytest.RaisesGroup(
        pytest.RaisesExc(AttributeError, match="'WSStream' object has no attribute 'connection'"),
        flatten_subgroups=True,
    ):
        async with hypercorn_memory(app) as connect:
            with trio.fail_after(TIMEOUT):
                with suppress(trio.BrokenResourceError):
                    await connect("/", subprotocols=["chat"])
                await trio.sleep_forever()  # until the crash cancels this block


@pytest.mark.parametrize("first", ["receive", "wait_disconnected"])
async def test_memory_messages_before_close_are_delivered_before_disconnect(
    autojump_clock: trio.testing.MockClock, first: str
) -> None:
    """Every message the client sent before closing is received, in order, then the disconnect."""
    go = trio.Event()
    received: list[str] = []
    ends: list[tuple[int, str | None]] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await go.wait()
        if first == "wait_disconnected":
            await ws.wait_disconnected()  # the disconnect is known before the data is read
        try:
            while True:
                received.append(await ws.receive_text())
        except WebSocketDisconnect as exc:
            ends.append((exc.code, ws.closed_by))
            raise

    app, probe = probed_app(handler)
    async with hypercorn_memory(app) as connect:
        client = await connect()
        for i in range(25):
            await client.send_text(f"m{i}")
        await client.close(1000)
        await trio.testing.wait_all_tasks_blocked()
        go.set()
        assert await probe.wait_ended() is None
        assert await client.receive_event() == CloseConnection(code=1000, reason="")
    assert received == [f"m{i}" for i in range(25)]
    assert ends == [(1006, "client")]


# ====================================================== B. real sockets, real clients, real clock

GRACE = 0.5


@dataclass
class Seen:
    """What a client saw: the messages, then the close frame (1006 when there was none)."""

    messages: list[str] = field(default_factory=list)
    code: int | None = None
    reason: str | None = None


async def _talk_trio_websocket(url: str, close: tuple[int, str] | None) -> Seen:
    seen = Seen()
    with trio.fail_after(TIMEOUT):
        async with trio_websocket_client(url) as ws:
            if close is not None:
                await ws.aclose(*close)
            try:
                while True:
                    message = await ws.get_message()
                    assert isinstance(message, str)
                    seen.messages.append(message)
            except ConnectionClosed as exc:
                seen.code, seen.reason = exc.reason.code, exc.reason.reason or ""
    return seen


def _talk_websockets_sync(url: str, close: tuple[int, str] | None) -> Seen:
    seen = Seen()
    try:
        with websockets.sync.client.connect(
            url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, proxy=None
        ) as ws:
            if close is not None:
                ws.close(*close)
            try:
                while True:
                    message = ws.recv(timeout=TIMEOUT)
                    assert isinstance(message, str)
                    seen.messages.append(message)
            except websockets.exceptions.ConnectionClosed as exc:
                received = exc.rcvd
                seen.code = 1006 if received is None else received.code
                seen.reason = "" if received is None else received.reason
    except websockets.exceptions.InvalidStatus as exc:
        raise Rejected(exc.response.status_code) from None
    return seen


async def _talk_websockets(url: str, close: tuple[int, str] | None) -> Seen:
    # The asyncio client cannot run in trio: the sync client runs in a thread, every call
    # bounded by its own timeout (a thread cannot be cancelled).
    return await trio.to_thread.run_sync(_talk_websockets_sync, url, close)


Talk = Callable[[str, "tuple[int, str] | None"], Awaitable[Seen]]


@pytest.fixture(params=["trio-websocket", "websockets"])
def talk(request: pytest.FixtureRequest) -> Talk:
    """One conversation with a real client: optionally close with a code, then read to the end."""
    return _talk_trio_websocket if request.param == "trio-websocket" else _talk_websockets


def scenario_app() -> tuple[ASGIApp, Probe, dict[str, Any]]:
    """One ``websocket_app`` whose handler picks the exit path from the request path."""
    app_saw: dict[str, Any] = {}

    async def handler(ws: WebSocket) -> None:
        path = ws.url.path
        if path == "/deny":
            return
        await ws.accept()
        if path == "/normal":
            await ws.send_text("bye soon")
        elif path == "/exception":
            raise WebSocketException(4001, "bye")
        elif path == "/error":
            raise RuntimeError("boom")
        elif path == "/client-close":
            try:
                await ws.receive_text()
            except WebSocketDisconnect as exc:
                app_saw[path] = (exc.code, exc.reason, ws.close_code, ws.closed_by)
                raise

    app, probe = probed_app(handler)
    return app, probe, app_saw


async def assert_real_echo(talk: Talk, url: str) -> None:
    """A fresh connection to the same server echoes a message back."""
    if talk is _talk_trio_websocket:
        with trio.fail_after(TIMEOUT):
            async with trio_websocket_client(url + "/echo") as ws:
                await ws.send_message("still there?")
                reply = await ws.get_message()
    else:

        def round_trip() -> str | bytes:
            with websockets.sync.client.connect(
                url + "/echo", open_timeout=TIMEOUT, close_timeout=TIMEOUT, proxy=None
            ) as ws:
                ws.send("still there?")
                return ws.recv(timeout=TIMEOUT)

        reply = await trio.to_thread.run_sync(round_trip)
    assert reply == "still there?"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/normal", Seen(["bye soon"], 1000, "")),
        ("/exception", Seen([], 4001, "bye")),
        ("/error", Seen([], 1011, "")),
    ],
    ids=["return", "WebSocketException", "error"],
)
async def test_real_exit_path_close_code(talk: Talk, path: str, expected: Seen) -> None:
    """Each exit path after accept, seen by a real client over a real socket; the server still
    serves afterwards."""
    app, probe, _ = scenario_app()
    async with hypercorn_server(app) as url:
        assert await talk(url + path, None) == expected
        outcome = await probe.wait_ended()
        if path == "/error":
            assert isinstance(outcome, RuntimeError)
            assert str(outcome) == "boom"
        else:
            assert outcome is None
        await assert_real_echo(talk, url)
        assert await probe.wait_ended(2) is None


async def test_real_return_before_accept_is_denied_403(talk: Talk) -> None:
    """Returned before accept: trio-websocket raises ``ConnectionRejected``, ``websockets``
    ``InvalidStatus``, both with 403."""
    app, probe, _ = scenario_app()
    async with hypercorn_server(app) as url:
        with pytest.raises(Rejected) as rejected:
            await talk(url + "/deny", None)
        assert rejected.value.status == 403
        assert await probe.wait_ended() is None
        await assert_real_echo(talk, url)


async def test_real_client_close_code_reaches_app_as_1006(talk: Talk) -> None:
    """The client closes with 4000: the app ends quietly, but sees 1006 and no reason
    (Hypercorn issue #127, DESIGN 3 item 1; pinned so a fix shows up here)."""
    app, probe, app_saw = scenario_app()
    async with hypercorn_server(app) as url:
        seen = await talk(url + "/client-close", (4000, "client leaving"))
        assert seen.messages == []
        assert await probe.wait_ended() is None
        assert app_saw["/client-close"] == (1006, "", 1006, "client")
        await assert_real_echo(talk, url)


async def test_real_shutdown_cancels_at_graceful_deadline_and_client_sees_1012(
    talk: Talk,
) -> None:
    """Server shutdown: Hypercorn cancels the handler at its graceful deadline and the session
    says goodbye with 1012 (Hypercorn alone gives 1006: DESIGN 3 item 8)."""
    waiting = trio.Event()
    cancelled_at: list[float] = []
    seen: list[Seen] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        waiting.set()
        try:
            await ws.receive_text()
        except trio.Cancelled:
            cancelled_at.append(trio.current_time())
            raise

    app, probe = probed_app(handler)
    shutdown = trio.Event()
    async with hypercorn_server(app, graceful_timeout=GRACE, shutdown=shutdown) as url:
        async with trio.open_nursery() as nursery:

            async def converse() -> None:
                seen.append(await talk(url + "/", None))

            nursery.start_soon(converse)
            await wait(waiting)
            start = trio.current_time()
            shutdown.set()
    assert seen == [Seen([], 1012, "")]
    assert cancelled_at[0] - start >= GRACE * 0.9
    assert is_cancellation(probe.outcomes[0])


async def test_real_shutdown_ends_soon_after_the_graceful_deadline() -> None:
    """Server shutdown with a well-behaved client, which answers the 1012 close frame at once:
    the connection and ``serve`` should end right after the graceful deadline, not
    ``close_timeout`` (2 s) later.

    Hypercorn cancels its own readers at the deadline too, so the client's answer never
    reaches the session: an exit that waited for it would hold every connection, and
    ``serve``, until ``close_timeout`` ran out.
    """
    waiting = trio.Event()

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        waiting.set()
        await ws.receive_text()

    app, probe = probed_app(handler)
    shutdown = trio.Event()
    async with hypercorn_server(app, graceful_timeout=GRACE, shutdown=shutdown) as url:
        async with ws_connect(url + "/") as client:
            await wait(waiting)
            start = trio.current_time()
            shutdown.set()
            assert await client.receive_event() == CloseConnection(code=1012, reason="")
            close_frame = trio.current_time() - start
            with pytest.raises(trio.EndOfChannel):
                await client.receive_event()  # answers the close, then waits for the TCP close
            connection_ended = trio.current_time() - start
    serve_ended = trio.current_time() - start
    assert is_cancellation(probe.outcomes[0])
    assert GRACE * 0.9 <= close_frame < GRACE + 0.5
    assert connection_ended < GRACE + 0.5
    assert serve_ended < GRACE + 0.5
