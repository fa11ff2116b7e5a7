"""Sessions (``async with websocket:``) over an in-memory ASGI server.

Every test runs twice: once with a trio-channel ``receive`` (the direct-read fast path, as under
Hypercorn's trio worker) and once with an opaque ``receive`` (the pump path).
"""

from __future__ import annotations

import json
import sys

import pytest
import trio
import trio.lowlevel
import trio.testing

from tests.session_fakes import FakeServer
from trio_ws import (
    WebSocket,
    WebSocketDisconnect,
    WebSocketDisconnected,
    WebSocketException,
    WebSocketMessageTypeError,
    WebSocketState,
)

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup


@pytest.fixture(params=["channel", "pump"])
def server(request: pytest.FixtureRequest) -> FakeServer:
    return FakeServer(channel_receive=request.param == "channel")


def make_ws(server: FakeServer, **options: object) -> WebSocket:
    return WebSocket(server.scope, server.receive, server.send, **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------- receiving


async def test_echo_round_trip_and_normal_exit_closes_1000(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        await server.client_text("a")
        await server.client_bytes(b"b")
        assert await ws.receive_text() == "a"
        assert await ws.receive_bytes() == b"b"
        await ws.send_text("A")
    assert server.data_sent() == ["A"]
    assert server.close_sent() == {"type": "websocket.close", "code": 1000, "reason": ""}
    assert ws.application_state is WebSocketState.DISCONNECTED
    assert ws.closed_by == "application"
    assert ws.close_code == 1000


async def test_cancelled_receive_loses_nothing(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        with trio.move_on_after(1) as scope:
            await ws.receive_text()
        assert scope.cancelled_caught
        await server.client_text("first")
        await server.client_text("second")
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.receive_text()  # cancelled before taking anything
        assert await ws.receive_text() == "first"
        assert await ws.receive_text() == "second"


async def test_messages_before_disconnect_come_first_then_disconnect(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        for text in ("1", "2", "3"):
            await server.client_text(text)
        await server.client_disconnect(4001, "bye")
        await ws.wait_disconnected()
        # The disconnect is known at once, queued data is still delivered in order.
        assert ws.client_state is WebSocketState.DISCONNECTED
        assert (ws.close_code, ws.close_reason, ws.closed_by) == (4001, "bye", "client")
        assert [t async for t in ws.iter_text()] == ["1", "2", "3"]
        with pytest.raises(WebSocketDisconnect) as info:
            await ws.receive_text()
        assert (info.value.code, info.value.reason) == (4001, "bye")
        with trio.testing.assert_checkpoints():
            message = await ws.receive()
        assert message["type"] == "websocket.disconnect"
    assert server.close_sent() is None


async def test_each_message_goes_to_exactly_one_of_many_receivers(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    got: list[str] = []
    finished: list[None] = []
    all_done = trio.Event()

    async def receiver(ws: WebSocket) -> None:
        async for text in ws.iter_text():
            got.append(text)
            await trio.lowlevel.checkpoint()
        finished.append(None)
        if len(finished) == 3:
            all_done.set()

    async with make_ws(server) as ws:
        await ws.accept()
        for _ in range(3):
            ws.start_soon(receiver, ws)
        for i in range(40):
            await server.client_text(str(i))
        await server.client_disconnect(1000)
        with trio.fail_after(5):
            await all_done.wait()
    assert sorted(got, key=int) == [str(i) for i in range(40)]


async def test_receive_after_disconnect_raises_at_once(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        await server.client_disconnect(1001)
        with pytest.raises(WebSocketDisconnect):
            await ws.receive_text()
        with trio.testing.assert_checkpoints(), pytest.raises(WebSocketDisconnect) as info:
            await ws.receive_text()
        assert info.value.code == 1001


async def test_receive_fast_path_checkpoints(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        await server.client_text("x")
        with trio.testing.assert_checkpoints():
            assert await ws.receive_text() == "x"


# ---------------------------------------------------------------- sending


async def test_send_after_client_left_raises_at_once(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    sent = 0
    async with make_ws(server) as ws:
        await ws.accept()
        await ws.send_text("before")
        await server.client_disconnect(1006)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(WebSocketDisconnect) as info:
            for _ in range(100):
                await ws.send_text("into the void")
                sent += 1
        assert info.value.code == 1006
        # Closing afterwards is a no-op, as is closing twice.
        await ws.close()
    assert sent == 0
    assert server.data_sent() == ["before"]
    assert server.close_sent() is None


async def test_send_only_handler_sees_disconnect_behind_client_data(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The client sends more than the app's queue holds and leaves; the app only sends.
    server = FakeServer(channel_receive=True, queue_size=10)
    async with make_ws(server, max_queued_messages=64) as ws:
        await ws.accept()

        async def client() -> None:
            for i in range(30):
                await server.client_text(str(i))
            await server.client_disconnect(1001)

        ws.start_soon(client)
        with pytest.raises(WebSocketDisconnect), trio.fail_after(5):
            for _ in range(1000):
                await ws.send_text("tick")
                await trio.lowlevel.checkpoint()
        # Only what had to be read ahead to find the disconnect waits in the inbox; the rest
        # stays in the server's channel. Every message still comes, in order.
        assert ws.statistics().queued_in <= 64
        assert [t async for t in ws.iter_text()] == [str(i) for i in range(30)]


async def test_inbox_is_bounded_and_pump_applies_backpressure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(channel_receive=False, queue_size=5)
    async with make_ws(server, max_queued_messages=4, on_inbox_full="block") as ws:
        await ws.accept()
        for i in range(9):
            await server.client_text(str(i))
        await trio.testing.wait_all_tasks_blocked()
        stats = ws.statistics()
        assert stats.queued_in == 4
        assert stats.pump_running
        assert [await ws.receive_text() for _ in range(9)] == [str(i) for i in range(9)]


@pytest.mark.parametrize("channel_receive", [True, False])
async def test_full_inbox_closes_1008_by_default(
    channel_receive: bool, autojump_clock: trio.testing.MockClock
) -> None:
    server = FakeServer(channel_receive=channel_receive, queue_size=10)
    async with make_ws(server, max_queued_messages=4) as ws:
        await ws.accept()
        for i in range(6):
            await server.client_text(str(i))
        with ws.cancel_on_disconnect() as scope:  # nobody receives: the pump reads ahead
            await trio.sleep_forever()
        assert scope.cancelled_caught
        assert (ws.close_code, ws.closed_by) == (1008, "application")
        with pytest.raises(WebSocketDisconnect) as info:
            await ws.send_text("late")
        assert (info.value.code, info.value.reason) == (1008, "too many unread messages")
        # What was queued before the overflow is still delivered, then the disconnect.
        assert [t async for t in ws.iter_text()] == ["0", "1", "2", "3"]
        assert ws.statistics().queued_in == 0
    assert server.close_sent() == {
        "type": "websocket.close",
        "code": 1008,
        "reason": "too many unread messages",
    }
    assert ws.client_state is WebSocketState.DISCONNECTED  # the client answered the close


async def test_send_only_handler_overflow_is_seen_on_send_after_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The client keeps sending, the app only sends: once the inbox has stayed full, with
    # nobody taking from it, for inbox_full_timeout, the next send sees close 1008.
    server = FakeServer(channel_receive=True, queue_size=4)
    server.echo_close = False  # the client below answers the close after its own messages
    async with make_ws(server, max_queued_messages=3, inbox_full_timeout=5) as ws:
        await ws.accept()

        async def client() -> None:
            for i in range(20):
                await server.client_text(str(i))
            await server.app_closed.wait()
            await server.client_disconnect(1000)

        ws.start_soon(client)
        await trio.testing.wait_all_tasks_blocked()
        await ws.send_text("tick")  # reads ahead until the inbox is full; the send goes out
        assert ws.statistics().queued_in == 3
        await trio.sleep(4.9)
        await ws.send_text("tock")  # full, but not yet for the timeout
        await trio.sleep(0.2)
        with pytest.raises(WebSocketDisconnect) as info:
            await ws.send_text("late")
        assert (info.value.code, info.value.reason) == (1008, "too many unread messages")
        assert ws.statistics().queued_in == 3
    assert server.data_sent() == ["tick", "tock"]


def test_on_inbox_full_is_checked() -> None:
    server = FakeServer()
    with pytest.raises(ValueError, match="'drop'"):
        WebSocket(server.scope, server.receive, server.send, on_inbox_full="drop")  # type: ignore[arg-type]


async def test_shielded_send_goes_out_whole_when_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer(headers=[(b"sec-websocket-extensions", b"permessage-deflate")])
    release = trio.Event()
    entered = trio.Event()

    async def slow(message: dict[str, object]) -> None:
        if message["type"] == "websocket.send":
            entered.set()
            await release.wait()

    async with make_ws(server) as ws:
        await ws.accept()
        server.send_hook = slow
        async with trio.open_nursery() as nursery:
            cancelled = trio.Event()

            async def sender() -> None:
                with trio.CancelScope() as scope:
                    nursery.cancel_scope.cancel  # noqa: B018
                    canceller.append(scope)
                    await ws.send_text("whole")
                    await trio.lowlevel.checkpoint()  # the cancellation lands here, after the send
                assert scope.cancelled_caught
                cancelled.set()

            canceller: list[trio.CancelScope] = []
            nursery.start_soon(sender)
            await entered.wait()
            canceller[0].cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert not cancelled.is_set()  # still inside the shielded send
            release.set()
        server.send_hook = None
    assert server.data_sent() == ["whole"]


async def test_unshielded_send_is_all_or_nothing_when_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = FakeServer()  # no permessage-deflate offered: sends are not shielded
    release = trio.Event()

    async def slow(message: dict[str, object]) -> None:
        if message["type"] == "websocket.send":
            await release.wait()

    async with make_ws(server) as ws:
        await ws.accept()
        server.send_hook = slow
        with trio.move_on_after(1) as scope:
            await ws.send_text("dropped")
        assert scope.cancelled_caught
        server.send_hook = None
        await ws.send_text("kept")
        assert ws.application_state is WebSocketState.CONNECTED
    assert server.data_sent() == ["kept"]


async def test_send_checkpoints(server: FakeServer, autojump_clock: trio.testing.MockClock) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        with trio.testing.assert_checkpoints():
            await ws.send_text("x")


# ---------------------------------------------------------------- structured lifetime


async def test_helpers_are_cancelled_when_the_session_ends(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    finished: list[str] = []

    async def forever(tag: str) -> None:
        try:
            await trio.sleep_forever()
        finally:
            finished.append(tag)

    async def started(task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started("ready")
        await forever("started")

    async with make_ws(server) as ws:
        await ws.accept()
        ws.start_soon(forever, "soon")
        assert await ws.start(started) == "ready"
    assert sorted(finished) == ["soon", "started"]
    assert server.close_sent() == {"type": "websocket.close", "code": 1000, "reason": ""}


async def test_cancel_on_disconnect_fires_and_is_absorbed(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    ticks = 0
    async with make_ws(server) as ws:
        await ws.accept()
        ws.start_soon(server.client_disconnect, 1000)
        with ws.cancel_on_disconnect() as scope:
            while True:
                await trio.sleep(1)
                ticks += 1
        assert scope.cancelled_caught
        # Entering again after the disconnect cancels at once.
        with ws.cancel_on_disconnect() as again:
            await trio.sleep_forever()
        assert again.cancelled_caught
    assert ticks == 0
    assert server.close_sent() is None


async def test_wait_disconnected(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        ws.start_soon(server.client_disconnect, 4000, "done")
        await ws.wait_disconnected()
        assert (ws.close_code, ws.close_reason) == (4000, "done")
        with trio.testing.assert_checkpoints():
            await ws.wait_disconnected()


@pytest.mark.parametrize("method", ["start_soon", "cancel_on_disconnect", "wait_disconnected"])
async def test_session_only_methods_need_a_session(
    method: str, server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    ws = make_ws(server)
    with pytest.raises(RuntimeError, match="needs a session"):
        if method == "start_soon":
            ws.start_soon(trio.sleep, 0)
        elif method == "cancel_on_disconnect":
            with ws.cancel_on_disconnect():
                pass
        else:
            await ws.wait_disconnected()


async def test_session_cannot_be_entered_twice(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    ws = make_ws(server)
    async with ws:
        await ws.accept()
        with pytest.raises(RuntimeError, match="already entered"):
            await ws.__aenter__()


# ---------------------------------------------------------------- exit paths


async def test_exit_before_accept_is_a_denial(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server):
        pass
    assert server.sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]


async def test_disconnect_ends_the_session_quietly(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        await server.client_disconnect(1001)
        await ws.receive_text()
        pytest.fail("unreachable")  # pragma: no cover
    assert server.close_sent() is None


async def test_websocket_exception_closes_with_its_code(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        raise WebSocketException(4003, "forbidden topic")
    assert server.close_sent() == {
        "type": "websocket.close",
        "code": 4003,
        "reason": "forbidden topic",
    }
    assert (ws.close_code, ws.closed_by) == (4003, "application")


async def test_error_closes_1011_and_propagates_bare(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    with pytest.raises(ZeroDivisionError) as info:
        async with make_ws(server) as ws:
            await ws.accept()
            1 / 0  # noqa: B018
    assert info.traceback[-1].name == "test_error_closes_1011_and_propagates_bare"
    assert server.close_sent() == {"type": "websocket.close", "code": 1011, "reason": ""}


async def test_helper_error_closes_1011_and_propagates_in_a_group(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async def broken() -> None:
        raise KeyError("helper")

    with pytest.raises(ExceptionGroup) as info:
        async with make_ws(server) as ws:
            await ws.accept()
            ws.start_soon(broken)
            await trio.sleep_forever()
    assert info.group_contains(KeyError)
    assert not info.group_contains(trio.Cancelled)
    assert server.close_sent() == {"type": "websocket.close", "code": 1011, "reason": ""}


async def test_helpers_seeing_the_disconnect_raise_no_group(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async def pusher(ws: WebSocket) -> None:
        while True:
            await ws.send_text("tick")
            await trio.sleep(1)

    async with make_ws(server) as ws:
        await ws.accept()
        for _ in range(3):
            ws.start_soon(pusher, ws)
        await trio.sleep(2.5)
        await server.client_disconnect(1001)
        await trio.sleep_forever()  # a helper's WebSocketDisconnect cancels the body
    assert server.close_sent() is None


async def test_outside_cancellation_closes_1012_and_propagates(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.move_on_after(5) as outer:
        async with make_ws(server) as ws:
            await ws.accept()
            await trio.sleep_forever()
    assert outer.cancelled_caught
    assert server.close_sent() == {"type": "websocket.close", "code": 1012, "reason": ""}


async def test_shutdown_close_code_is_configurable(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.move_on_after(5):
        async with make_ws(server, shutdown_close_code=1001) as ws:
            await ws.accept()
            await trio.sleep_forever()
    assert server.close_sent() == {"type": "websocket.close", "code": 1001, "reason": ""}


async def test_exit_waits_for_the_closing_handshake_time_boxed(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    server.echo_close = False
    start = trio.current_time()
    async with make_ws(server, close_timeout=3) as ws:
        await ws.accept()
    assert trio.current_time() - start == pytest.approx(3)
    assert server.close_sent() is not None


async def test_exit_drains_the_server_queue_until_the_disconnect(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    server.echo_close = False

    async def client() -> None:
        await server.app_closed.wait()
        for i in range(25):  # more than the server's queue holds
            await server.client_text(str(i))
        await server.client_disconnect(1000)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client)
        start = trio.current_time()
        async with make_ws(server, close_timeout=10) as ws:
            await ws.accept()
            await ws.close(4000)
    assert trio.current_time() - start < 10
    assert ws.client_state is WebSocketState.DISCONNECTED
    assert ws.close_code == 4000


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
async def test_unsendable_close_codes_are_refused(
    code: int, server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        with pytest.raises(ValueError, match=str(code)):
            await ws.close(code)
        assert ws.application_state is WebSocketState.CONNECTED


async def test_long_close_reason_is_refused(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        with pytest.raises(ValueError, match="124 bytes"):
            await ws.close(1000, "é" * 62)
        await ws.close(1000, "é" * 61 + "x")
    assert server.close_sent() == {
        "type": "websocket.close",
        "code": 1000,
        "reason": "é" * 61 + "x",
    }


async def test_subprotocol_must_have_been_offered(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer(subprotocols=["chat.v1"])
    async with make_ws(server) as ws:
        with pytest.raises(ValueError, match="graphql-transport-ws"):
            await ws.accept(subprotocol="graphql-transport-ws")
        with pytest.raises(ValueError, match="subprotocol argument"):
            await ws.accept(headers=[(b"Sec-WebSocket-Protocol", b"chat.v1")])
        assert ws.application_state is WebSocketState.CONNECTING
        await ws.accept(subprotocol="chat.v1")
    assert server.sent[0]["subprotocol"] == "chat.v1"


async def test_starlette_errors_still_apply_in_a_session(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        with pytest.raises(WebSocketDisconnected, match="Need to call"):
            await ws.receive_text()
        with pytest.raises(RuntimeError, match=r'Expected ASGI message "websocket\.accept"'):
            await ws.send_text("too early")
        await ws.accept()
        with pytest.raises(RuntimeError, match="mode"):
            await ws.receive_json(mode="yaml")


def test_non_websocket_scope_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="'http'"):
        WebSocket({"type": "http"}, FakeServer().receive, FakeServer().send)


# ---------------------------------------------------------------- statistics


async def test_statistics_count_messages_and_bytes(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        await server.client_text("héllo")
        await server.client_bytes(b"\x00\x01")
        await ws.receive_text()
        await ws.receive_bytes()
        await ws.send_json({"a": "é"})
        stats = ws.statistics()
    assert (stats.messages_received, stats.bytes_received) == (2, 8)
    assert (stats.messages_sent, stats.bytes_sent) == (1, len('{"a":"é"}'.encode()))
    assert stats.queued_in == 0
    assert stats.close_code is None


async def test_exception_group_made_only_of_disconnects_never_escapes(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async def reader(ws: WebSocket) -> None:
        await ws.receive_text()

    async with make_ws(server) as ws:
        await ws.accept()
        ws.start_soon(reader, ws)
        ws.start_soon(reader, ws)
        await server.client_disconnect(1000)
        await ws.receive_text()
    assert server.close_sent() is None


async def test_body_error_and_helper_error_both_propagate(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async def broken(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        raise KeyError("helper")

    with pytest.raises(BaseExceptionGroup) as info:
        async with make_ws(server) as ws:
            await ws.accept()
            await ws.start(broken)
            raise ValueError("body")  # raised before the helper's error cancels the body
    assert info.group_contains(KeyError)
    assert server.close_sent() == {"type": "websocket.close", "code": 1011, "reason": ""}


async def test_websocket_exception_in_a_helper_closes_with_its_code(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async def refuse() -> None:
        raise WebSocketException(4008, "quota")

    async with make_ws(server) as ws:
        await ws.accept()
        ws.start_soon(refuse)
        await trio.sleep_forever()
    assert server.close_sent() == {"type": "websocket.close", "code": 4008, "reason": "quota"}


async def test_websocket_exception_before_accept_is_a_denial(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server):
        raise WebSocketException(4003)
    assert server.sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]


# ---------------------------------------------------------------- bad input and denials


async def test_deny_sends_an_http_response(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.deny(401, b"unauthorized", [(b"www-authenticate", b"Bearer")])
        with pytest.raises(RuntimeError, match="before accept"):
            await ws.deny()
    assert server.sent == [
        {
            "type": "websocket.http.response.start",
            "status": 401,
            "headers": [(b"content-length", b"12"), (b"www-authenticate", b"Bearer")],
        },
        {"type": "websocket.http.response.body", "body": b"unauthorized"},
    ]


async def test_deny_without_the_extension_closes(autojump_clock: trio.testing.MockClock) -> None:
    server = FakeServer(extensions={})
    async with make_ws(server) as ws:
        await ws.deny(401, b"ignored")
    assert server.sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]


async def test_receive_text_on_a_binary_message_says_so(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        await server.client_bytes(b"abc")
        await server.client_text("")
        with pytest.raises(KeyError, match=r"receive_text\(\) got a binary message \(3 bytes\)"):
            await ws.receive_text()
        with pytest.raises(WebSocketMessageTypeError, match="got a text message"):
            await ws.receive_bytes()


async def test_empty_messages_round_trip(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        await server.client_text("")
        await server.client_bytes(b"")
        assert await ws.receive_text() == ""
        assert await ws.receive_bytes() == b""
        await ws.send_text("")
        await ws.send_bytes(b"")
    assert server.data_sent() == ["", b""]


@pytest.mark.parametrize("size", [1024, 1025])
async def test_max_message_size_closes_1009(
    size: int, server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server, max_message_size=1024) as ws:
        await ws.accept()
        await server.client_bytes(b"x" * size)
        if size <= 1024:
            assert len(await ws.receive_bytes()) == size
            return
        with pytest.raises(WebSocketDisconnect) as info:
            await ws.receive_bytes()
        assert info.value.code == 1009
    assert server.close_sent() == {
        "type": "websocket.close",
        "code": 1009,
        "reason": "message of 1025 bytes exceeds 1024",
    }


async def test_invalid_json_raises_a_clear_error_or_closes_1007(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    async with make_ws(server) as ws:
        await ws.accept()
        await server.client_text("{oops")
        with pytest.raises(json.JSONDecodeError, match=r"not valid JSON .*'\{oops'"):
            await ws.receive_json()
    other = FakeServer()
    async with make_ws(other, close_on_invalid_json=True) as ws:
        await ws.accept()
        await other.client_text("{oops")
        with pytest.raises(WebSocketDisconnect) as info:
            await ws.receive_json()
        assert info.value.code == 1007
    assert other.close_sent() == {"type": "websocket.close", "code": 1007, "reason": "invalid JSON"}


async def test_a_draining_server_sets_the_close_code(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    notice: dict[str, object] = {}
    server.scope["extensions"]["trio_ws.shutdown"] = notice
    with trio.move_on_after(5):
        async with make_ws(server) as ws:
            await ws.accept()
            notice.update(close_code=1001, reason="server shutting down")
            await trio.sleep_forever()
    assert server.close_sent() == {
        "type": "websocket.close",
        "code": 1001,
        "reason": "server shutting down",
    }


async def test_oversize_message_during_the_closing_handshake_is_discarded(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    """Regression: an oversize message read while closing (or after an earlier end) must not
    start a second close, nor a task in the session's finished nursery."""
    server.echo_close = False

    async def client() -> None:
        await server.app_closed.wait()
        await server.client_bytes(b"x" * 100)
        await server.client_disconnect(1000)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(client)
        async with make_ws(server, max_message_size=10) as ws:
            await ws.accept()
    assert server.close_sent() == {"type": "websocket.close", "code": 1000, "reason": ""}
    assert ws.client_state is WebSocketState.DISCONNECTED


async def test_a_second_oversize_message_does_not_close_twice(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    server.echo_close = False
    async with make_ws(server, max_message_size=10) as ws:
        await ws.accept()
        await server.client_bytes(b"x" * 11)
        await server.client_bytes(b"y" * 12)
        with pytest.raises(WebSocketDisconnect) as info:
            await ws.receive_bytes()
        assert info.value.code == 1009
        await server.app_closed.wait()
        await server.client_disconnect(1000)
    assert server.close_sent() == {  # close_sent() asserts there was exactly one close
        "type": "websocket.close",
        "code": 1009,
        "reason": "message of 11 bytes exceeds 10",
    }


async def test_subclass_overriding_receive_keeps_its_override_in_a_session(
    server: FakeServer, autojump_clock: trio.testing.MockClock
) -> None:
    # A session replaces WebSocket's own receive on the instance (one coroutine frame less per
    # message); a subclass's override must still run, and reach the session through super().
    seen: list[str] = []

    class Logged(WebSocket):
        async def receive(self) -> dict[str, object]:
            message = await super().receive()
            seen.append(message["type"])
            return message

    ws = Logged(server.scope, server.receive, server.send)  # type: ignore[arg-type]
    async with ws:
        await ws.accept()
        await server.client_text("a")
        assert await ws.receive_text() == "a"
    assert seen == ["websocket.connect", "websocket.receive"]
