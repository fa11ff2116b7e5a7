"""trio_ws.testing.open_connection and open_lifespan: the in-process ASGI client, against trio_ws handlers and raw apps.

Everything runs in memory, so tests that wait for a time limit use the ``autojump_clock``.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

import trio_ws
from trio_ws import WebSocket, WebSocketDisconnect, WebSocketMessageTypeError
from trio_ws.testing import (
    LifespanFailure,
    WebSocketDenied,
    WebSocketTestClient,
    open_connection,
    open_lifespan,
)

Scope = dict[str, Any]
Message = dict[str, Any]


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await ws.send_text(message["text"])
        else:
            await ws.send_bytes(message["bytes"])


echo_app = trio_ws.websocket_app(echo)


class Boom(Exception):
    """An application error with a type of its own, to check that it arrives unwrapped."""


# --------------------------------------------------------------------------- the scope


async def test_scope_is_a_websocket_handshake_as_hypercorn_builds_it() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(scope)
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})

    async with open_connection(
        app,
        "/chat/r%C3%BCm?x=1&y=2",
        subprotocols=["v2", "v1"],
        headers=[("X-Token", "abc"), (b"cookie", b"a=b")],
        client=("10.0.0.7", 1234),
        root_path="/api",
    ):
        pass
    (scope,) = seen
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert scope["server"] == ("testserver", 80)
    assert scope["client"] == ("10.0.0.7", 1234)
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/chat/rüm"
    assert scope["raw_path"] == b"/chat/r%C3%BCm"
    assert scope["query_string"] == b"x=1&y=2"
    assert scope["subprotocols"] == ["v2", "v1"]
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert scope["state"] == {}
    headers = scope["headers"]
    assert (b"host", b"testserver") in headers
    assert (b"sec-websocket-protocol", b"v2, v1") in headers
    assert (b"x-token", b"abc") in headers
    assert (b"cookie", b"a=b") in headers


async def test_full_url_sets_host_scheme_and_server() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json(
            {"url": str(ws.url), "server": list(ws.scope["server"]), "host": ws.headers["host"]}
        )

    async with open_connection(
        trio_ws.websocket_app(handler), "wss://example.com:8443/a?b=c"
    ) as client:
        assert await client.receive_json() == {
            "url": "wss://example.com:8443/a?b=c",
            "server": ["example.com", 8443],
            "host": "example.com:8443",
        }


async def test_app_receive_is_a_memory_channels_bound_receive_with_hypercorns_queue() -> None:
    # trio_ws sessions read such a channel directly, as they do under Hypercorn's trio worker.
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        channel = receive.__self__
        assert isinstance(channel, trio.MemoryReceiveChannel)
        assert receive.__func__ is trio.MemoryReceiveChannel.receive
        assert channel.statistics().max_buffer_size == 10
        await receive()
        await send({"type": "websocket.accept"})
        await receive()

    async with open_connection(app):
        pass


async def test_session_reads_directly_without_a_pump() -> None:
    stats: list[trio_ws.SessionStatistics] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()
        stats.append(ws.statistics())

    async with open_connection(trio_ws.websocket_app(handler)) as client:
        await client.send_text("x")
        await client.expect_close(1000)
    assert stats[0].pump_running is False
    assert stats[0].messages_received == 1


# --------------------------------------------------------------------------- messages


async def test_echo_text_bytes_and_empty_frames() -> None:
    async with open_connection(echo_app, "/echo") as client:
        assert isinstance(client, WebSocketTestClient)
        await client.send_text("héllo")
        assert await client.receive_text() == "héllo"
        await client.send_bytes(b"\x00\xff")
        assert await client.receive_bytes() == b"\x00\xff"
        await client.send_text("")
        assert await client.receive_text() == ""
        await client.send_bytes(b"")
        assert await client.receive_bytes() == b""
        await client.send_text("raw")
        assert await client.receive() == {"type": "websocket.send", "text": "raw"}


async def test_json_helpers_in_both_modes() -> None:
    async with open_connection(echo_app) as client:
        await client.send_json({"a": [1, "ü"]})
        assert await client.receive_text() == '{"a":[1,"ü"]}'
        await client.send_json({"a": 1}, mode="binary")
        assert await client.receive_bytes() == b'{"a":1}'
        await client.send_json([1, 2])
        assert await client.receive_json() == [1, 2]
        await client.send_json(None, mode="binary")
        assert await client.receive_json(mode="binary") is None
        with pytest.raises(ValueError, match="mode"):
            await client.send_json(1, mode="bogus")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="mode"):
            await client.receive_json(mode="bogus")  # type: ignore[arg-type]


async def test_json_from_the_app_reaches_the_client() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        data = await ws.receive_json()
        await ws.send_json({"got": data})
        await ws.send_json({"bin": True}, mode="binary")

    async with open_connection(trio_ws.websocket_app(handler)) as client:
        await client.send_json({"x": 1})
        assert await client.receive_json() == {"got": {"x": 1}}
        assert await client.receive_json(mode="binary") == {"bin": True}


async def test_wrong_frame_type_is_a_clear_error() -> None:
    async with open_connection(echo_app) as client:
        await client.send_bytes(b"abc")
        with pytest.raises(WebSocketMessageTypeError, match=r"receive_text\(\) got a binary"):
            await client.receive_text()
        await client.send_text("abc")
        with pytest.raises(WebSocketMessageTypeError, match=r"receive_bytes\(\) got a text"):
            await client.receive_bytes()
        await client.send_text("not json")
        with pytest.raises(json.JSONDecodeError):
            await client.receive_json()


# --------------------------------------------------------------------------- accept


async def test_subprotocol_and_accept_headers() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept(subprotocol="v1", headers=[(b"x-served-by", b"test")])

    async with open_connection(trio_ws.websocket_app(handler), subprotocols=["v2", "v1"]) as client:
        assert client.accepted_subprotocol == "v1"
        assert client.accept_headers == [(b"x-served-by", b"test")]
        await client.expect_close(1000)


async def test_no_subprotocol_when_none_is_chosen() -> None:
    async with open_connection(echo_app, subprotocols=["v1"]) as client:
        assert client.accepted_subprotocol is None
        assert client.accept_headers == []


async def test_raw_app_accepting_a_subprotocol_not_offered_fails_in_the_app() -> None:
    # Hypercorn crashes on this (DESIGN 3.4); the client makes it an error in the app.
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept", "subprotocol": "nope"})

    with pytest.raises(ValueError, match="'nope', which the client did not offer"):
        async with open_connection(app, subprotocols=["v1"]):
            pass  # pragma: no cover


# --------------------------------------------------------------------------- denial


async def test_close_before_accept_is_a_403_denial() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.close(1008, "go away")

    with pytest.raises(WebSocketDenied) as info:
        async with open_connection(trio_ws.websocket_app(handler)):
            pass  # pragma: no cover
    denied = info.value
    assert denied.status == 403
    assert denied.body == b""
    assert (denied.code, denied.reason) == (1008, "go away")
    assert isinstance(denied, WebSocketDisconnect)  # as Starlette's test client raises
    assert "HTTP 403" in str(denied)


async def test_handler_returning_before_accept_is_a_403_denial() -> None:
    async def handler(ws: WebSocket) -> None:
        pass

    with pytest.raises(WebSocketDenied) as info:
        async with open_connection(trio_ws.websocket_app(handler)):
            pass  # pragma: no cover
    assert info.value.status == 403


async def test_deny_with_status_body_and_headers() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.deny(401, b"no", headers=[(b"www-authenticate", b"Bearer")])

    with pytest.raises(WebSocketDenied) as info:
        async with open_connection(trio_ws.websocket_app(handler)):
            pass  # pragma: no cover
    assert info.value.status == 401
    assert info.value.body == b"no"
    assert (b"www-authenticate", b"Bearer") in info.value.headers
    assert "HTTP 401, body b'no'" in str(info.value)


async def test_deny_without_the_extension_falls_back_to_403() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.deny(401, b"no")

    with pytest.raises(WebSocketDenied) as info:
        async with open_connection(trio_ws.websocket_app(handler), extensions=()):
            pass  # pragma: no cover
    assert info.value.status == 403


async def test_send_denial_response_in_several_body_chunks() -> None:
    async def response(scope: Scope, receive: Any, send: Any) -> None:
        # Like Starlette's responses: under a WebSocket scope, the denial-response messages.
        prefix = "websocket." if scope["type"] == "websocket" else ""
        start = {"type": prefix + "http.response.start", "status": 418, "headers": [(b"a", b"b")]}
        await send(start)
        await send({"type": prefix + "http.response.body", "body": b"I'm a ", "more_body": True})
        await send({"type": prefix + "http.response.body", "body": b"teapot"})

    async def handler(ws: WebSocket) -> None:
        await ws.send_denial_response(response)

    with pytest.raises(WebSocketDenied) as info:
        async with open_connection(trio_ws.websocket_app(handler)):
            pass  # pragma: no cover
    assert (info.value.status, info.value.headers, info.value.body) == (
        418,
        [(b"a", b"b")],
        b"I'm a teapot",
    )


async def test_app_hears_the_disconnect_after_a_denial() -> None:
    after: list[Message] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close"})
        after.append(await receive())

    with pytest.raises(WebSocketDenied):
        async with open_connection(app):
            pass  # pragma: no cover
    assert after == [{"type": "websocket.disconnect", "code": 1000}]


async def test_raw_app_returning_without_an_answer_is_a_500_denial() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()

    with pytest.raises(WebSocketDenied) as info:
        async with open_connection(app):
            pass  # pragma: no cover
    assert info.value.status == 500


async def test_denial_response_needs_the_extension_in_the_scope() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 401, "headers": []})

    with pytest.raises(RuntimeError, match=r"needs the 'websocket\.http\.response' extension"):
        async with open_connection(app, extensions=()):
            pass  # pragma: no cover


# --------------------------------------------------------------------------- app errors


async def test_error_before_accept_is_reraised_unwrapped() -> None:
    async def handler(ws: WebSocket) -> None:
        raise Boom("before accept")

    with pytest.raises(Boom, match="before accept") as info:
        async with open_connection(trio_ws.websocket_app(handler)):
            pass  # pragma: no cover
    assert info.type is Boom
    assert any(entry.name == "handler" for entry in info.traceback)


async def test_error_after_accept_is_reraised_by_the_next_receive() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("first")
        text = await ws.receive_text()
        raise Boom(text)

    async with open_connection(trio_ws.websocket_app(handler)) as client:
        assert await client.receive_text() == "first"  # what came before the error comes first
        await client.send_text("second")
        # The session closes with 1011 on its way out; the client raises the error instead.
        with pytest.raises(Boom, match="second") as info:
            await client.receive_text()
        assert info.type is Boom
        # Reported once; after it the connection is closed with 1011, as Hypercorn does.
        with pytest.raises(WebSocketDisconnect) as closed:
            await client.receive_text()
        assert closed.value.code == 1011


async def test_error_is_reraised_on_exit_when_nobody_received() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()
        raise Boom("unnoticed")

    with pytest.raises(Boom, match="unnoticed") as info:
        async with open_connection(trio_ws.websocket_app(handler)) as client:
            await client.send_text("go")
    assert info.type is Boom


async def test_error_in_a_raw_app_is_reraised_by_send() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise Boom("raw")

    with pytest.raises(Boom, match="raw"):
        async with open_connection(app) as client:
            await trio.testing.wait_all_tasks_blocked()
            await client.send_text("too late")


async def test_error_after_a_denial_wins_over_the_denial() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close"})
        raise Boom("after denial")

    with pytest.raises(Boom, match="after denial"):
        async with open_connection(app):
            pass  # pragma: no cover


async def test_invalid_message_from_a_raw_app_fails_in_the_app() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.send", "text": "before accept"})

    with pytest.raises(RuntimeError, match=r"'websocket.send' before websocket.accept"):
        async with open_connection(app):
            pass  # pragma: no cover


async def test_the_tests_own_error_propagates_unwrapped_and_cancels_the_app() -> None:
    cancelled: list[bool] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.append(True)
            raise

    with pytest.raises(KeyError, match="from the test") as info:
        async with open_connection(trio_ws.websocket_app(handler)):
            await trio.testing.wait_all_tasks_blocked()
            raise KeyError("from the test")
    assert info.type is KeyError
    assert cancelled == [True]


async def test_cancellation_from_outside_cancels_the_app_and_is_absorbed_by_its_scope(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[bool] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.append(True)
            raise

    with trio.move_on_after(1) as scope:
        async with open_connection(trio_ws.websocket_app(handler)):
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert cancelled == [True]


async def test_test_error_and_unreported_app_error_are_grouped() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise Boom("app")

    with pytest.RaisesGroup(KeyError, Boom, match="both the test and the app failed"):
        async with open_connection(app):
            await trio.testing.wait_all_tasks_blocked()
            raise KeyError("test")


# --------------------------------------------------------------------------- closing


async def test_expect_close_returns_code_and_reason() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(4000, "done")

    async with open_connection(trio_ws.websocket_app(handler)) as client:
        assert await client.expect_close(4000) == (4000, "done")
        # Asking again answers from memory; receiving reports the close.
        assert await client.expect_close() == (4000, "done")
        with pytest.raises(WebSocketDisconnect) as info:
            await client.receive_text()
        assert (info.value.code, info.value.reason) == (4000, "done")


async def test_expect_close_with_the_wrong_code_fails() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(4001)

    async with open_connection(trio_ws.websocket_app(handler)) as client:
        with pytest.raises(AssertionError, match="close with 4000, but it closed with 4001"):
            await client.expect_close(4000)


async def test_expect_close_when_the_app_sends_data_fails() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("surprise")

    async with open_connection(trio_ws.websocket_app(handler)) as client:
        with pytest.raises(AssertionError, match="but it sent a text message 'surprise'"):
            await client.expect_close()


async def test_receive_after_the_app_closed_raises_disconnect() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("bye")
        raise trio_ws.WebSocketException(4003, "policy")

    async with open_connection(trio_ws.websocket_app(handler)) as client:
        assert await client.receive_text() == "bye"
        with pytest.raises(WebSocketDisconnect) as info:
            await client.receive_text()
        assert (info.value.code, info.value.reason) == (4003, "policy")
        with pytest.raises(WebSocketDisconnect):
            await client.receive()


async def test_raw_app_returning_without_close_leaves_1011_as_hypercorn_does() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})

    async with open_connection(app) as client:
        assert await client.receive() == {"type": "websocket.close", "code": 1011, "reason": ""}


async def test_send_after_the_app_closed_raises_disconnect() -> None:
    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        await ws.close(4002, "enough")

    async with open_connection(trio_ws.websocket_app(handler)) as client:
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(WebSocketDisconnect) as info:
            await client.send_text("hello?")
        assert (info.value.code, info.value.reason) == (4002, "enough")
        assert await client.expect_close(4002) == (4002, "enough")


async def test_client_close_code_and_reason_reach_the_app() -> None:
    seen: list[tuple[int | None, str, str | None]] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        async for _ in ws.iter_text():
            pass
        seen.append((ws.close_code, ws.close_reason, ws.closed_by))

    async with open_connection(trio_ws.websocket_app(handler)) as client:
        await client.send_text("hi")
        await client.close(4001, "bye")
        # close() waits for the app to return.
        assert seen == [(4001, "bye", "client")]
        with pytest.raises(trio.ClosedResourceError, match="already closed"):
            await client.send_text("after")
        with pytest.raises(trio.ClosedResourceError, match="already closed"):
            await client.receive()
        await client.close()  # closing again is harmless


async def test_leaving_the_block_disconnects_with_1000_and_waits_for_the_app() -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        seen.append(await receive())
        await trio.lowlevel.checkpoint()
        seen.append({"returned": True})

    async with open_connection(app):
        pass
    assert seen == [
        {"type": "websocket.disconnect", "code": 1000, "reason": ""},
        {"returned": True},
    ]


async def test_app_sends_after_the_client_closed_are_dropped_as_hypercorn_does() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        await send({"type": "websocket.send", "text": "into the void"})
        await send({"type": "websocket.close", "code": 1000})

    async with open_connection(app) as client:
        await client.close()


async def test_app_close_is_echoed_even_when_its_queue_is_full() -> None:
    filled = trio.Event()
    after_close: list[Message] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await filled.wait()
        await send({"type": "websocket.close", "code": 1000})
        after_close.extend([await receive() for _ in range(11)])

    async with open_connection(app) as client:
        for i in range(10):
            await client.send_text(str(i))
        filled.set()
        await client.expect_close(1000)
    assert after_close[:10] == [
        {"type": "websocket.receive", "bytes": None, "text": str(i)} for i in range(10)
    ]
    assert after_close[10] == {"type": "websocket.disconnect", "code": 1000}


# --------------------------------------------------------------------------- time limits


async def test_app_that_never_accepts_fails_fast_with_a_clear_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def handler(ws: WebSocket) -> None:
        await trio.sleep_forever()

    start = trio.current_time()
    with pytest.raises(trio.TooSlowError, match="did not accept or deny the connection within 5 s"):
        async with open_connection(trio_ws.websocket_app(handler)):
            pass  # pragma: no cover
    assert trio.current_time() - start == pytest.approx(5)


async def test_wait_limit_bounds_receive(autojump_clock: trio.testing.MockClock) -> None:
    async with open_connection(echo_app, wait_limit=0.5) as client:
        start = trio.current_time()
        with pytest.raises(trio.TooSlowError, match=r"the app sent nothing within 0\.5 s"):
            await client.receive_text()
        assert trio.current_time() - start == pytest.approx(0.5)
        client.wait_limit = 2
        with pytest.raises(trio.TooSlowError, match="within 2 s"):
            await client.expect_close()


async def test_app_that_stops_reading_blocks_the_eleventh_send(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await trio.sleep_forever()

    with pytest.raises(trio.TooSlowError, match="did not read the client's message"):
        async with open_connection(app) as client:
            for _ in range(10):
                await client.send_text("queued")
            await client.send_text("one too many")


async def test_app_that_ignores_the_disconnect_fails_the_exit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await receive()
        await trio.sleep_forever()

    with pytest.raises(trio.TooSlowError, match="did not return after the connection closed"):
        async with open_connection(app):
            pass


# --------------------------------------------------------------------------- lifespan


async def test_lifespan_runs_startup_and_shutdown_and_shares_state() -> None:
    events: list[str] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    scope["state"]["db"] = "ready"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        else:
            await trio_ws.websocket_app(report_state)(scope, receive, send)

    async def report_state(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(ws.scope["state"]["db"])

    async with open_lifespan(app) as state:
        assert state == {"db": "ready"}
        async with open_connection(app, state=state) as client:
            assert await client.receive_text() == "ready"
        assert events == ["lifespan.startup"]
    assert events == ["lifespan.startup", "lifespan.shutdown"]


async def test_lifespan_of_websocket_app() -> None:
    async with open_lifespan(echo_app) as state:
        assert state == {}


async def test_lifespan_startup_failure_is_raised() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})

    with pytest.raises(LifespanFailure, match="no database"):
        async with open_lifespan(app):
            pass  # pragma: no cover


async def test_lifespan_shutdown_failure_is_raised() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.failed", "message": "stuck"})

    with pytest.raises(LifespanFailure, match="stuck"):
        async with open_lifespan(app):
            pass


async def test_lifespan_app_error_is_reraised_unwrapped() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        raise Boom("no lifespan here")

    with pytest.raises(Boom, match="no lifespan here") as info:
        async with open_lifespan(app):
            pass  # pragma: no cover
    assert info.type is Boom


async def test_lifespan_app_returning_early_is_a_failure() -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()

    with pytest.raises(LifespanFailure, match="returned during lifespan startup"):
        async with open_lifespan(app):
            pass  # pragma: no cover


async def test_lifespan_startup_is_bounded(autojump_clock: trio.testing.MockClock) -> None:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await trio.sleep_forever()

    with pytest.raises(trio.TooSlowError, match="did not complete lifespan startup within 5 s"):
        async with open_lifespan(app):
            pass  # pragma: no cover


async def test_client_close_wakes_a_concurrent_receive() -> None:
    async with open_connection(echo_app) as client:
        async with trio.open_nursery() as nursery:

            async def receiver() -> None:
                with pytest.raises(trio.ClosedResourceError, match="already closed"):
                    await client.receive()

            nursery.start_soon(receiver)
            await trio.testing.wait_all_tasks_blocked()
            await client.close()


# --------------------------------------------------------------------------- docs/testing.rst


async def _docs_echo(ws: WebSocket) -> None:
    if ws.query_params.get("token") != "secret":
        await ws.deny(401, b"bad token")
        return
    await ws.accept()
    async for text in ws.iter_text():
        await ws.send_text(text)


docs_app = trio_ws.websocket_app(_docs_echo)


async def test_docs_first_example() -> None:
    async with open_connection(docs_app, "/echo?token=secret") as client:
        await client.send_text("hello")
        assert await client.receive_text() == "hello"
        await client.send_json({"n": 1})
        assert await client.receive_json() == {"n": 1}
    with pytest.raises(WebSocketDenied) as denied:
        async with open_connection(docs_app, "/echo?token=wrong"):
            pass  # pragma: no cover
    assert denied.value.status == 401
    assert denied.value.body == b"bad token"


async def test_docs_idle_example(autojump_clock: trio.testing.MockClock) -> None:
    async def idle_closer(ws: WebSocket) -> None:
        await ws.accept()
        with trio.move_on_after(60):
            await ws.receive_text()
            return  # pragma: no cover
        raise trio_ws.WebSocketException(1001, "idle")

    async with open_connection(trio_ws.websocket_app(idle_closer)) as client:
        client.wait_limit = 120
        assert await client.expect_close(1001) == (1001, "idle")


# --------------------------------------------------------------------------- the facade


def test_public_names_show_the_public_module() -> None:
    for name in trio_ws.testing.__all__:
        assert getattr(trio_ws.testing, name).__module__ == "trio_ws.testing", name


# --------------------------------------------------------------------------- deprecated names


async def test_connect_is_a_deprecated_alias_of_open_connection() -> None:
    with pytest.deprecated_call(match=r"trio_ws\.testing\.connect is deprecated.*open_connection"):
        manager = trio_ws.testing.connect(echo_app, "/echo")
    async with manager as client:
        await client.send_text("hi")
        assert await client.receive_text() == "hi"


async def test_lifespan_is_a_deprecated_alias_of_open_lifespan() -> None:
    with pytest.deprecated_call(match=r"trio_ws\.testing\.lifespan is deprecated.*open_lifespan"):
        manager = trio_ws.testing.lifespan(echo_app, state={"x": 1})
    async with manager as state:
        assert state == {"x": 1}


def test_deprecation_warnings_point_at_the_caller() -> None:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trio_ws.testing.connect(echo_app)
        trio_ws.testing.lifespan(echo_app)
    assert [(w.category, w.filename) for w in record] == [(DeprecationWarning, __file__)] * 2


def accept_then_record(seen: list[Message]) -> Any:
    """A raw app that accepts, then records the one message it receives next."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        seen.append(await receive())

    return app


async def test_close_without_a_code_reaches_the_app_as_1005() -> None:
    seen: list[Message] = []
    async with open_connection(accept_then_record(seen)) as client:
        with pytest.raises(ValueError, match="without a code cannot carry a reason"):
            await client.close(None, "why")
        await client.close(None)
    assert seen == [{"type": "websocket.disconnect", "code": 1005, "reason": ""}]


async def test_abort_reaches_the_app_as_1006_without_a_reason() -> None:
    seen: list[Message] = []
    async with open_connection(accept_then_record(seen)) as client:
        await client.abort()
        with pytest.raises(trio.ClosedResourceError):
            await client.send_text("after")
    assert seen == [{"type": "websocket.disconnect", "code": 1006}]
