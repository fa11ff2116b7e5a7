"""Pin Hypercorn's trio-worker WebSocket behaviour that trio_ws is built on (DESIGN.md section 3).

Every test drives a raw ASGI app (no trio_ws) and asserts what Hypercorn does *today*, so an
upstream change shows up here as a failing test. Each docstring names the DESIGN.md section 3
item it pins. The probe apps record what they see into lists and events; the assertions run in
the test body, because Hypercorn logs and swallows exceptions raised inside an app.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypercorn.config import Config
from trio_websocket import open_websocket_url
from wsproto import ConnectionType, WSConnection
from wsproto.events import CloseConnection, Event, Ping, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from tests.hypercorn_harness import hypercorn_memory, hypercorn_server, ws_connect

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

TIMEOUT = 5


def probe_app(handler: Handler) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    """A raw ASGI app: completes lifespan, runs ``handler`` for each WebSocket scope."""

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "websocket":
            await handler(scope, receive, send)
        else:
            raise NotImplementedError(scope["type"])

    return app


async def accept(receive: Receive, send: Send, **extra: Any) -> None:
    connect = await receive()
    if connect["type"] == "websocket.connect":
        await send({"type": "websocket.accept", **extra})


def text(data: str) -> Message:
    return {"type": "websocket.send", "text": data}


async def wait(event: trio.Event) -> None:
    with trio.fail_after(TIMEOUT):
        await event.wait()


def disconnect_recorder() -> tuple[Handler, list[Message], trio.Event]:
    """An app that accepts, then records the first message it receives."""
    received: list[Message] = []
    done = trio.Event()

    async def handler(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await accept(receive, send)
        received.append(await receive())
        done.set()

    return handler, received, done


# 1 ---------------------------------------------------------------------------------------------


async def test_hypercorn_reports_client_close_code_as_1006() -> None:
    """Item 1 (in memory, wsproto client): close 4001 "bye" reaches the app as 1006, no reason."""
    handler, received, done = disconnect_recorder()
    async with hypercorn_memory(probe_app(handler)) as connect:
        client = await connect()
        await client.close(4001, "bye")
        await wait(done)
        echo = await client.receive_event()
    assert received == [{"type": "websocket.disconnect", "code": 1006}]
    assert "reason" not in received[0]
    # The close handshake itself is fine: Hypercorn echoes the client's code.
    assert echo == CloseConnection(code=4001, reason="bye")


async def test_hypercorn_reports_client_close_code_as_1006_real_socket() -> None:
    """Item 1 (real socket, trio-websocket client): close 4001 "bye" reaches the app as 1006."""
    handler, received, done = disconnect_recorder()
    async with hypercorn_server(probe_app(handler)) as url:
        async with open_websocket_url(
            url + "/", connect_timeout=TIMEOUT, disconnect_timeout=TIMEOUT
        ) as ws:
            await ws.aclose(4001, "bye")
        await wait(done)
    assert received == [{"type": "websocket.disconnect", "code": 1006}]


# 2 ---------------------------------------------------------------------------------------------


async def test_hypercorn_send_after_client_left_returns_silently() -> None:
    """Item 2: after the client vanished, ``websocket.send`` and ``websocket.close`` return None."""
    outcomes: list[object] = []
    done = trio.Event()

    async def handler(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await accept(receive, send)
        outcomes.append(await receive())
        try:
            outcomes.append(await send(text("anyone there?")))  # type: ignore[func-returns-value]
            outcomes.append(await send({"type": "websocket.close", "code": 1000}))  # type: ignore[func-returns-value]
        except BaseException as exc:  # pragma: no cover - only on an upstream change
            outcomes.append(exc)
            raise
        finally:
            done.set()

    async with hypercorn_memory(probe_app(handler)) as connect:
        client = await connect()
        await client.abort()
        await wait(done)
    assert outcomes == [{"type": "websocket.disconnect", "code": 1006}, None, None]


# 3 ---------------------------------------------------------------------------------------------


async def test_hypercorn_closes_with_1011_when_app_returns_after_accept() -> None:
    """Item 3: an app that returns after accept without closing makes the client see 1011."""

    async def handler(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await accept(receive, send)
        await send(text("hi"))

    async with hypercorn_memory(probe_app(handler)) as connect:
        client = await connect()
        assert await client.receive_event() == TextMessage(data="hi")
        assert await client.receive_event() == CloseConnection(code=1011, reason="")
        assert client.server_finished is not None
        await wait(client.server_finished)


# 4 ---------------------------------------------------------------------------------------------


def _subprotocol_crash() -> pytest.RaisesGroup[AttributeError]:
    return pytest.RaisesGroup(
        pytest.RaisesExc(AttributeError, match="'WSStream' object has no attribute 'connection'"),
        flatten_subgroups=True,
    )


async def _accept_unoffered_subprotocol(
    scope: dict[str, Any], receive: Receive, send: Send
) -> None:
    await accept(receive, send, subprotocol="graphql-transport-ws")


async def test_hypercorn_crashes_on_accept_with_unoffered_subprotocol() -> None:
    """Item 4 (in memory): the connection's ``TCPServer`` task raises AttributeError."""
    with _subprotocol_crash():
        async with hypercorn_memory(probe_app(_accept_unoffered_subprotocol)) as connect:
            with trio.fail_after(TIMEOUT):
                with contextlib.suppress(trio.BrokenResourceError):
                    await connect()  # offers no subprotocol
                await trio.sleep_forever()  # until the crash cancels this block


async def test_hypercorn_serve_crashes_on_accept_with_unoffered_subprotocol() -> None:
    """Item 4 (real socket): one bad accept makes ``hypercorn.trio.serve`` itself raise."""
    with _subprotocol_crash():
        async with hypercorn_server(probe_app(_accept_unoffered_subprotocol)) as url:
            host, port = url.removeprefix("ws://").rsplit(":", 1)
            with trio.fail_after(TIMEOUT):
                async with await trio.open_tcp_stream(host, int(port)) as stream:
                    ws = WSConnection(ConnectionType.CLIENT)
                    await stream.send_all(ws.send(Request(host=host, target="/")))
                    assert await stream.receive_some() == b""  # no response at all
                await trio.sleep_forever()  # until the crash cancels this block


# 5 ---------------------------------------------------------------------------------------------


async def test_hypercorn_second_receive_after_disconnect_blocks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Item 5: a ``receive()`` after ``websocket.disconnect`` never returns (100 s virtual)."""
    received: list[Message] = []
    still_blocked: list[bool] = []
    done = trio.Event()

    async def handler(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await accept(receive, send)
        received.append(await receive())
        with trio.move_on_after(100) as cs:
            received.append(await receive())
        still_blocked.append(cs.cancelled_caught)
        done.set()

    async with hypercorn_memory(probe_app(handler)) as connect:
        client = await connect()
        await client.close(1000)
        with trio.fail_after(200):
            await done.wait()
    assert received == [{"type": "websocket.disconnect", "code": 1006}]
    assert still_blocked == [True]


# 6 ---------------------------------------------------------------------------------------------


async def test_hypercorn_app_queue_of_10_wedges_reader_until_shutdown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Item 6: the app queue holds 10 messages; a full queue blocks Hypercorn's reader.

    The client sends 30 messages and a close frame to an app that never calls ``receive``
    after the connect event: the close is never processed (no reply), and after the app
    returns the connection still never ends (Hypercorn blocks putting ``websocket.disconnect``
    into the full queue) until it is cancelled, i.e. until shutdown.
    """
    receives: list[Receive] = []
    release = trio.Event()
    app_returned = trio.Event()

    async def handler(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await accept(receive, send)
        receives.append(receive)
        await release.wait()
        app_returned.set()

    config = Config()
    assert config.max_app_queue_size == 10
    async with hypercorn_memory(probe_app(handler), config) as connect:
        client = await connect()
        for i in range(30):
            await client.send_text(f"message {i}")
        await client.close(1000)
        await trio.testing.wait_all_tasks_blocked()

        # Hypercorn hands the app a memory channel's bound ``receive``.
        queue = receives[0].__self__.statistics()  # type: ignore[attr-defined]
        assert (queue.max_buffer_size, queue.current_buffer_used) == (10, 10)
        assert queue.tasks_waiting_send == 1  # the reader, stuck on message 11

        # The client's close frame is never answered.
        client.wait_limit = 100
        with pytest.raises(trio.TooSlowError):
            await client.receive_event()
        client.wait_limit = TIMEOUT

        # The app returns: Hypercorn sends 1011, then blocks queueing the disconnect.
        release.set()
        await wait(app_returned)
        assert await client.receive_event() == CloseConnection(code=1011, reason="")
        assert client.server_finished is not None
        with trio.move_on_after(100) as cs:
            await client.server_finished.wait()
        assert cs.cancelled_caught
    # Leaving the harness cancels the servers (shutdown) and that does end the connection.
    assert client.server_finished.is_set()


# 7 ---------------------------------------------------------------------------------------------


async def test_hypercorn_send_to_stalled_reader_ignores_app_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Item 7: a send to a client that stopped reading cannot be cancelled by ``move_on_after``.

    ``lockstep_stream_pair`` makes each server write wait until the client reads it, and the
    client never reads after the handshake. The app's ``move_on_after(1)`` around ``send``
    is still blocked after 10 s; only aborting the client's stream releases it.
    """
    sending = trio.Event()
    send_returned = trio.Event()
    returned_at: list[float] = []

    async def handler(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await accept(receive, send)
        sending.set()
        try:
            with trio.move_on_after(1):
                await send(text("x" * 100))
        finally:
            returned_at.append(trio.current_time())
            send_returned.set()

    async with hypercorn_memory(probe_app(handler)) as connect:
        client = await connect(stream_pair=trio.testing.lockstep_stream_pair)
        await wait(sending)
        start = trio.current_time()
        with trio.move_on_after(10):
            await send_returned.wait()
        assert not send_returned.is_set()
        await client.abort()
        await wait(send_returned)
    assert returned_at[0] - start >= 10


# 8 ---------------------------------------------------------------------------------------------

GRACE = 0.5


async def _shutdown_and_read_close(handler: Handler) -> tuple[list[Event], float]:
    """Open a connection, trigger shutdown, return every event the client then sees."""
    shutdown = trio.Event()
    events: list[Event] = []
    async with hypercorn_server(
        probe_app(handler), graceful_timeout=GRACE, shutdown=shutdown
    ) as url:
        async with ws_connect(url + "/") as client:
            shutdown.set()
            start = trio.current_time()
            with contextlib.suppress(trio.EndOfChannel):
                while True:
                    events.append(await client.receive_event())
            elapsed = trio.current_time() - start
    return events, elapsed


async def test_hypercorn_shutdown_cancels_app_after_grace_and_client_sees_1006() -> None:
    """Item 8: no close frame on shutdown; after ``graceful_timeout`` the app is cancelled and
    the client sees 1006 (the TCP connection ends without a close frame)."""
    seen: list[str] = []

    async def handler(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await accept(receive, send)
        try:
            seen.append((await receive())["type"])
        except trio.Cancelled:
            seen.append("cancelled")
            raise

    events, elapsed = await _shutdown_and_read_close(handler)
    assert events == [CloseConnection(code=1006, reason=None)]
    assert elapsed >= GRACE * 0.9  # nothing happened before the graceful deadline
    assert seen == ["cancelled"]  # and the app got no websocket.disconnect


async def test_hypercorn_shutdown_shielded_close_from_cancelled_app_reaches_client() -> None:
    """Item 8: a shielded, time-boxed ``websocket.close`` 1012 sent on cancellation arrives."""

    async def handler(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await accept(receive, send)
        try:
            await receive()
        except trio.Cancelled:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await send({"type": "websocket.close", "code": 1012, "reason": "service restart"})
            raise

    events, elapsed = await _shutdown_and_read_close(handler)
    assert events == [CloseConnection(code=1012, reason="service restart")]
    assert elapsed >= GRACE * 0.9


# 9 ---------------------------------------------------------------------------------------------


async def test_hypercorn_max_message_size_closes_1009_and_app_sees_1006() -> None:
    """Item 9: a message over ``websocket_max_message_size`` closes with 1009; the app sees 1006."""
    handler, received, done = disconnect_recorder()
    config = Config()
    config.websocket_max_message_size = 1024
    async with hypercorn_memory(probe_app(handler), config) as connect:
        client = await connect()
        await client.send_bytes(b"x" * 2048)
        assert await client.receive_event() == CloseConnection(code=1009, reason="")
        await wait(done)  # receive_event answered the close; that answer ends the app's wait
    assert received == [{"type": "websocket.disconnect", "code": 1006}]


async def test_hypercorn_ping_interval_never_checks_pongs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Item 9: ``websocket_ping_interval`` sends pings but never checks for pongs."""
    handler, received, _done = disconnect_recorder()
    config = Config()
    config.websocket_ping_interval = 1
    async with hypercorn_memory(probe_app(handler), config) as connect:
        client = await connect()
        start = trio.current_time()
        events = [await client.receive_event() for _ in range(30)]  # never answered
        elapsed = trio.current_time() - start
        assert all(isinstance(event, Ping) for event in events)
        assert elapsed >= 29
        assert received == []  # still connected, 30 unanswered pings later
        assert client.server_finished is not None
        assert not client.server_finished.is_set()


# 10 --------------------------------------------------------------------------------------------


async def test_hypercorn_scope_advertises_http_response_extension_and_spec_2_3() -> None:
    """Item 10: WebSocket scopes carry ``websocket.http.response`` and ASGI spec 2.3."""
    scopes: list[dict[str, Any]] = []

    async def handler(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await accept(receive, send)

    async with hypercorn_memory(probe_app(handler)) as connect:
        await connect()
    assert scopes[0]["extensions"] == {"websocket.http.response": {}}
    assert scopes[0]["asgi"] == {"spec_version": "2.3", "version": "3.0"}


async def test_hypercorn_denial_response_reaches_client() -> None:
    """Item 10: a ``websocket.http.response`` denial (401 with a body) reaches the client."""

    async def handler(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"unauthorized"})

    async with hypercorn_memory(probe_app(handler)) as connect:
        client = await connect()
    assert client.accepted is None
    assert client.rejection is not None
    assert client.rejection.status_code == 401
    assert (b"content-type", b"text/plain") in client.rejection.headers
    assert client.rejection.body == b"unauthorized"


async def test_hypercorn_close_before_accept_is_http_403() -> None:
    """Item 10: ``websocket.close`` before accept is an empty HTTP 403 (code 4403 ignored)."""

    async def handler(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 4403, "reason": "nope"})

    async with hypercorn_memory(probe_app(handler)) as connect:
        client = await connect()
    assert client.rejection is not None
    assert (client.rejection.status_code, client.rejection.body) == (403, b"")


# 11 --------------------------------------------------------------------------------------------


async def test_hypercorn_cancelled_send_desynchronises_permessage_deflate() -> None:
    """Item 11: ``send`` compresses before waiting on the send lock, so cancelling it there
    drops a frame that already advanced the deflate context; the client cannot decode the next.

    A holds the lock (its write waits for the lockstep client to read), B is cancelled while
    waiting for the lock, then C repeats B's text: the server's compressor encodes C as a
    back-reference into B, which the client never received, so the client's inflater fails
    (close 1007).
    """
    unique = "".join(chr(ord("a") + (i * 7 + i // 26) % 26) for i in range(300))
    second_cancelled: list[bool] = []
    b_cancelled = trio.Event()
    first_sent = trio.Event()

    async def handler(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        await accept(receive, send)
        b_scope = trio.CancelScope()

        async def send_b() -> None:
            with b_scope:
                await send(text(unique))
            second_cancelled.append(b_scope.cancelled_caught)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send, text("first"))
            await trio.testing.wait_all_tasks_blocked()  # A holds the lock, writing
            nursery.start_soon(send_b)
            await trio.testing.wait_all_tasks_blocked()  # B waits for the lock
            b_scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            b_cancelled.set()
        first_sent.set()
        await send(text(unique))  # C

    async with hypercorn_memory(probe_app(handler)) as connect:
        client = await connect(
            extensions=[PerMessageDeflate()], stream_pair=trio.testing.lockstep_stream_pair
        )
        assert client.accepted is not None
        assert [ext.name for ext in client.accepted.extensions] == ["permessage-deflate"]
        await wait(b_cancelled)
        assert second_cancelled == [True]
        assert await client.receive_event() == TextMessage(data="first")
        await wait(first_sent)
        after = await client.receive_event()
    assert isinstance(after, CloseConnection)
    assert after.code == 1007  # INVALID_FRAME_PAYLOAD_DATA: "invalid distance too far back"
