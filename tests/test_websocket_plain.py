"""Plain-mode parity: ``trio_ws.WebSocket`` against ``starlette.websockets.WebSocket`` 1.10.

Every scenario runs the same steps against both classes over the fakes in
``tests/asgi_fakes.py`` and compares the transcripts: what each step returned or raised (type
name, ``RuntimeError``/disconnect classification, ``str``, ``args``, ``code``/``reason``), both
states after each step, how often the server's ``receive`` and ``send`` were called, and every
message that reached the server.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import starlette.exceptions
import starlette.status
import starlette.websockets
import trio
from starlette.responses import JSONResponse, PlainTextResponse

import trio_ws
import trio_ws.status
from tests.asgi_fakes import (
    Message,
    Raise,
    RecordingSend,
    ScriptedReceive,
    ScriptExhausted,
    websocket_scope,
)

StarletteWebSocket = starlette.websockets.WebSocket
CLASSES = (StarletteWebSocket, trio_ws.WebSocket)

DISCONNECT_TYPES = (starlette.websockets.WebSocketDisconnect, trio_ws.WebSocketDisconnect)
DISCONNECTED_TYPES = (starlette.websockets.WebSocketDisconnected, trio_ws.WebSocketDisconnected)

CONNECT: Message = {"type": "websocket.connect"}


def text(data: str) -> Message:
    return {"type": "websocket.receive", "text": data}


def binary(data: bytes) -> Message:
    return {"type": "websocket.receive", "bytes": data}


def disconnect(code: int = 1000, reason: str | None = None) -> Message:
    message: Message = {"type": "websocket.disconnect", "code": code}
    if reason is not None:
        message["reason"] = reason
    return message


#: A scope override that removes the key.
DELETE = "<delete this key>"


def make_scope(overrides: dict[str, Any]) -> dict[str, Any]:
    scope = websocket_scope(**copy.deepcopy(overrides))
    for key, value in overrides.items():
        if value == DELETE:
            del scope[key]
    return scope


def oserror() -> Raise:
    return Raise(lambda: OSError("connection lost"))


START: Message = {"type": "websocket.http.response.start", "status": 403, "headers": []}


def body(data: bytes, more_body: bool = False) -> Message:
    return {"type": "websocket.http.response.body", "body": data, "more_body": more_body}


# ---------------------------------------------------------------------------------------------
# The harness


@dataclass(frozen=True)
class Step:
    """Call ``method(*args, **kwargs)`` on the WebSocket; ``iter_*`` methods are drained."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def call(method: str, *args: Any, **kwargs: Any) -> Step:
    return Step(method, args, kwargs)


@dataclass
class Scenario:
    id: str
    incoming: list[Message | Raise]
    steps: list[Step]
    scope: dict[str, Any] = field(default_factory=dict)
    fail_on: int | None = None
    fault: Raise | None = None
    #: What the last step does on Starlette ("ok" or an exception type name): a guard that
    #: the scenario exercises what its name says.
    expect: str | None = None


@dataclass
class Transcript:
    log: list[tuple[Any, ...]]
    sent: list[Message]

    def last_outcome(self) -> str:
        outcome = self.log[-1][1]
        return "ok" if "returned" in outcome else outcome["type"]


def describe(exc: BaseException) -> dict[str, Any]:
    info: dict[str, Any] = {
        "type": type(exc).__name__,
        "is_RuntimeError": isinstance(exc, RuntimeError),
        "is_WebSocketDisconnect": isinstance(exc, DISCONNECT_TYPES),
        "is_WebSocketDisconnected": isinstance(exc, DISCONNECTED_TYPES),
        "str": str(exc),
        "args": exc.args,
    }
    if isinstance(exc, DISCONNECT_TYPES):
        info["code"] = exc.code
        info["reason"] = exc.reason
    return info


def states(ws: Any) -> tuple[str, str]:
    return ws.client_state.name, ws.application_state.name


async def run_step(ws: Any, step: Step) -> Any:
    args, kwargs = copy.deepcopy((step.args, step.kwargs))
    method = getattr(ws, step.method)
    if step.method.startswith("iter_"):
        return [item async for item in method(*args, **kwargs)]
    return await method(*args, **kwargs)


async def run(cls: type[Any], scenario: Scenario) -> Transcript:
    receive = ScriptedReceive(scenario.incoming)
    send = RecordingSend(scenario.fail_on, scenario.fault)
    ws = cls(make_scope(scenario.scope), receive, send)
    log: list[tuple[Any, ...]] = [("init", {}, *states(ws))]
    with trio.fail_after(5):
        for step in scenario.steps:
            try:
                result = await run_step(ws, step)
            except ScriptExhausted:
                raise
            except Exception as exc:
                outcome = describe(exc)
            else:
                outcome = {"returned": result}
            log.append((step.method, outcome, *states(ws), receive.calls, send.attempts))
    return Transcript(log, send.sent)


#: Deliberate differences: where Starlette fails with a bare ``KeyError('text')`` or JSON's terse
#: message, trio_ws raises a subclass of the same exception whose message says what arrived.
#: Everything else (states, calls, messages sent, the exception's base type) must still match.
CLEARER_ERRORS = {"KeyError": "WebSocketMessageTypeError", "JSONDecodeError": "JSONDecodeError"}


def _clearer(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    return (
        isinstance(expected, dict)
        and isinstance(actual, dict)
        and CLEARER_ERRORS.get(expected.get("type", "")) == actual.get("type")
        and {k: v for k, v in expected.items() if k not in ("type", "str", "args")}
        == {k: v for k, v in actual.items() if k not in ("type", "str", "args")}
    )


async def assert_parity(scenario: Scenario) -> Transcript:
    expected = await run(StarletteWebSocket, scenario)
    actual = await run(trio_ws.WebSocket, scenario)
    for ours, theirs in zip(actual.log, expected.log, strict=True):
        if ours == theirs:
            continue
        # Allow only a clearer error in place of Starlette's, with the same states and calls.
        (our_step, our_outcome, *our_rest), (step, outcome, *rest) = ours, theirs
        assert (our_step, our_rest) == (step, rest)
        assert _clearer(outcome, our_outcome) or (
            # Hypercorn sends binary messages with "text": None: Starlette's receive_text then
            # returns None, trio_ws says that a binary message arrived.
            outcome == {"returned": None} and our_outcome.get("type") == "WebSocketMessageTypeError"
        ), (outcome, our_outcome)
    assert actual.sent == expected.sent
    if scenario.expect is not None:
        assert expected.last_outcome() == scenario.expect
    return expected


def ids(scenarios: list[Scenario]) -> list[str]:
    return [s.id for s in scenarios]


# ---------------------------------------------------------------------------------------------
# Every (state, message type) pair, through the real methods

MESSAGES: dict[str, Message] = {
    "websocket.connect": CONNECT,
    "websocket.receive": text("x"),
    "websocket.disconnect": disconnect(1001, "gone"),
    "websocket.accept": {"type": "websocket.accept", "subprotocol": None, "headers": []},
    "websocket.send": {"type": "websocket.send", "text": "x"},
    "websocket.close": {"type": "websocket.close", "code": 1000, "reason": ""},
    "websocket.http.response.start": START,
    "websocket.http.response.body": body(b"no"),
    "websocket.http.response.body+more": body(b"no", more_body=True),
    "http.request": {"type": "http.request", "body": b"", "more_body": False},
}

# How to bring the application side into each state: (incoming messages, steps).
APPLICATION_PREFIXES: dict[str, tuple[list[Message | Raise], list[Step]]] = {
    "CONNECTING": ([], []),
    "CONNECTED": ([CONNECT], [call("accept")]),
    "RESPONSE": ([], [call("send", START)]),
    "DISCONNECTED-denied": ([], [call("close")]),
    "DISCONNECTED-closed": ([CONNECT], [call("accept"), call("close")]),
    "DISCONNECTED-responded": ([], [call("send", START), call("send", body(b""))]),
}

SEND_MATRIX = [
    Scenario(
        f"send-{state}-{name}",
        list(incoming),
        [*prefix, call("send", message), call("send", message)],
    )
    for state, (incoming, prefix) in APPLICATION_PREFIXES.items()
    for name, message in MESSAGES.items()
]

# How to bring the client side into each state: (incoming messages, receive calls).
CLIENT_PREFIXES: dict[str, tuple[list[Message | Raise], int]] = {
    "CONNECTING": ([], 0),
    "CONNECTED": ([CONNECT], 1),
    "DISCONNECTED": ([CONNECT, disconnect()], 2),
}

# After the message under test, one more receive shows what the state machine now expects.
RECEIVE_MATRIX = [
    Scenario(
        f"receive-{state}-{name}",
        [*incoming, message, CONNECT],
        [call("receive")] * (count + 2),
    )
    for state, (incoming, count) in CLIENT_PREFIXES.items()
    for name, message in MESSAGES.items()
]


@pytest.mark.parametrize("scenario", SEND_MATRIX, ids=ids(SEND_MATRIX))
async def test_send_matrix(scenario: Scenario) -> None:
    await assert_parity(scenario)


@pytest.mark.parametrize("scenario", RECEIVE_MATRIX, ids=ids(RECEIVE_MATRIX))
async def test_receive_matrix(scenario: Scenario) -> None:
    await assert_parity(scenario)


# ---------------------------------------------------------------------------------------------
# Scenarios, by method

ACCEPT = [
    Scenario("plain", [CONNECT], [call("accept")], expect="ok"),
    Scenario(
        "subprotocol",
        [CONNECT],
        [call("accept", subprotocol="chat")],
        scope={"subprotocols": ["superchat", "chat"]},
        expect="ok",
    ),
    Scenario(
        "positional-subprotocol-and-headers",
        [CONNECT],
        [call("accept", "chat", [(b"x-token", b"1")])],
        scope={"subprotocols": ["chat"]},
    ),
    # Plain mode checks neither the subprotocol nor the headers, like Starlette.
    Scenario("subprotocol-not-offered", [CONNECT], [call("accept", subprotocol="nope")]),
    Scenario(
        "headers",
        [CONNECT],
        [call("accept", headers=[(b"x-token", b"1"), (b"Sec-WebSocket-Protocol", b"chat")])],
        expect="ok",
    ),
    Scenario("headers-none", [CONNECT], [call("accept", headers=None)]),
    Scenario("headers-empty", [CONNECT], [call("accept", headers=[])]),
    Scenario("connect-already-received", [CONNECT], [call("receive"), call("accept")]),
    Scenario("twice", [CONNECT], [call("accept"), call("accept")], expect="RuntimeError"),
    Scenario("first-message-not-connect", [text("x")], [call("accept")], expect="RuntimeError"),
    Scenario("first-message-disconnect", [disconnect()], [call("accept")]),
    Scenario(
        "after-denial", [CONNECT], [call("close"), call("accept")], expect="WebSocketDisconnected"
    ),
    Scenario(
        "after-client-disconnect",
        [CONNECT, disconnect(1001)],
        [call("receive"), call("receive"), call("accept"), call("send_text", "late")],
    ),
    Scenario("receive-raises", [oserror()], [call("accept")], expect="OSError"),
    Scenario("send-raises-oserror", [CONNECT], [call("accept")], fail_on=1, expect="OSError"),
]

RECEIVE = [
    Scenario("connect", [CONNECT], [call("receive")], expect="ok"),
    Scenario("text", [CONNECT, text("hi")], [call("receive"), call("receive")]),
    Scenario("bytes", [CONNECT, binary(b"\x00")], [call("receive"), call("receive")]),
    Scenario(
        "disconnect-then-again",
        [CONNECT, disconnect(1001, "bye")],
        [call("receive"), call("receive"), call("receive")],
        expect="WebSocketDisconnected",
    ),
    Scenario(
        "duplicate-disconnect-is-not-read",
        [CONNECT, disconnect(), disconnect()],
        [call("receive"), call("receive"), call("receive"), call("receive")],
    ),
    Scenario("message-without-type", [{"text": "x"}], [call("receive")], expect="KeyError"),
    Scenario("raises-oserror", [CONNECT, oserror()], [call("receive"), call("receive")]),
    Scenario(
        "raises-broken-resource",
        [Raise(lambda: trio.BrokenResourceError("gone")), CONNECT],
        [call("receive"), call("receive")],
    ),
    Scenario(
        "wrong-then-right",
        [text("early"), CONNECT, text("now")],
        [call("receive"), call("receive"), call("receive")],
        expect="ok",
    ),
]

RECEIVE_HELPERS = [
    Scenario("text", [CONNECT, text("hé")], [call("accept"), call("receive_text")], expect="ok"),
    Scenario(
        "bytes", [CONNECT, binary(b"\xff")], [call("accept"), call("receive_bytes")], expect="ok"
    ),
    Scenario(
        "json-text",
        [CONNECT, text('{"a": [1, 2], "é": null}')],
        [call("accept"), call("receive_json")],
        expect="ok",
    ),
    Scenario(
        "json-binary",
        [CONNECT, binary('{"é": 1.5}'.encode())],
        [call("accept"), call("receive_json", mode="binary")],
        expect="ok",
    ),
    Scenario(
        "json-binary-positional",
        [CONNECT, binary(b"[true]")],
        [call("accept"), call("receive_json", "binary")],
    ),
    Scenario(
        "json-bad-mode-before-accept",
        [],
        [call("receive_json", mode="xml")],
        expect="RuntimeError",
    ),
    Scenario(
        "json-bad-mode-after-accept",
        [CONNECT, text("1")],
        [call("accept"), call("receive_json", mode="bytes"), call("receive_json")],
    ),
    Scenario(
        "json-bad-mode-after-close",
        [CONNECT],
        [call("accept"), call("close"), call("receive_json", mode="Text")],
        expect="RuntimeError",
    ),
    *(
        Scenario(
            f"{method}-before-accept",
            [CONNECT, text("x")],
            [call(method)],
            expect="WebSocketDisconnected",
        )
        for method in ("receive_text", "receive_bytes", "receive_json")
    ),
    *(
        Scenario(
            f"{method}-after-connect-only",
            [CONNECT, text("x")],
            [call("receive"), call(method)],
            expect="WebSocketDisconnected",
        )
        for method in ("receive_text", "receive_bytes", "receive_json")
    ),
    *(
        Scenario(
            f"{method}-after-close",
            [CONNECT, text("x")],
            [call("accept"), call("close"), call(method)],
            expect="WebSocketDisconnected",
        )
        for method in ("receive_text", "receive_bytes", "receive_json")
    ),
    *(
        Scenario(
            f"{method}-during-response",
            [CONNECT],
            [call("send", START), call(method)],
            expect="WebSocketDisconnected",
        )
        for method in ("receive_text", "receive_bytes", "receive_json")
    ),
    *(
        Scenario(
            f"{method}-disconnect-with-reason",
            [CONNECT, disconnect(1001, "going away")],
            [call("accept"), call(method), call(method)],
            expect="WebSocketDisconnected",
        )
        for method in ("receive_text", "receive_bytes", "receive_json")
    ),
    *(
        Scenario(
            f"{method}-disconnect-without-reason",
            [CONNECT, disconnect(1005)],
            [call("accept"), call(method)],
            expect="WebSocketDisconnect",
        )
        for method in ("receive_text", "receive_bytes", "receive_json")
    ),
    Scenario(
        "disconnect-reason-none",
        [CONNECT, {"type": "websocket.disconnect", "code": 4000, "reason": None}],
        [call("accept"), call("receive_text")],
        expect="WebSocketDisconnect",
    ),
    Scenario(
        "disconnect-without-code",
        [CONNECT, {"type": "websocket.disconnect"}],
        [call("accept"), call("receive_text"), call("receive_text")],
    ),
    Scenario(
        "text-on-binary-frame",
        [CONNECT, binary(b"x")],
        [call("accept"), call("receive_text")],
        expect="KeyError",
    ),
    Scenario(
        "bytes-on-text-frame",
        [CONNECT, text("x")],
        [call("accept"), call("receive_bytes")],
        expect="KeyError",
    ),
    Scenario(
        "json-binary-on-text-frame",
        [CONNECT, text("1")],
        [call("accept"), call("receive_json", mode="binary")],
        expect="KeyError",
    ),
    Scenario(
        "text-none-on-binary-frame-with-both-keys",
        [CONNECT, {"type": "websocket.receive", "bytes": b"x", "text": None}],
        [call("accept"), call("receive_text")],
        expect="ok",
    ),
    Scenario(
        "json-invalid",
        [CONNECT, text("{not json"), text("2")],
        [call("accept"), call("receive_json"), call("receive_json")],
    ),
    Scenario(
        "json-binary-invalid-utf8",
        [CONNECT, binary(b"\xff\xfe")],
        [call("accept"), call("receive_json", mode="binary")],
        expect="UnicodeDecodeError",
    ),
    Scenario(
        "unexpected-connect-while-connected",
        [CONNECT, CONNECT],
        [call("accept"), call("receive_text")],
        expect="RuntimeError",
    ),
    Scenario(
        "receive-raises",
        [CONNECT, Raise(lambda: ValueError("server bug"))],
        [call("accept"), call("receive_text")],
        expect="ValueError",
    ),
]

ITERATORS = [
    Scenario(
        "text",
        [CONNECT, text("a"), text(""), text("é"), disconnect(1001, "bye")],
        [call("accept"), call("iter_text")],
        expect="ok",
    ),
    Scenario(
        "bytes",
        [CONNECT, binary(b"a"), binary(b""), disconnect()],
        [call("accept"), call("iter_bytes")],
        expect="ok",
    ),
    Scenario(
        "json",
        [CONNECT, text('{"n": 1}'), text("[]"), text("null"), disconnect(1000)],
        [call("accept"), call("iter_json")],
        expect="ok",
    ),
    Scenario("immediate-disconnect", [CONNECT, disconnect()], [call("accept"), call("iter_text")]),
    Scenario(
        "again-after-disconnect",
        [CONNECT, text("a"), disconnect()],
        [call("accept"), call("iter_text"), call("iter_text")],
        expect="WebSocketDisconnected",
    ),
    *(
        Scenario(
            f"{method}-before-accept",
            [CONNECT],
            [call(method)],
            expect="WebSocketDisconnected",
        )
        for method in ("iter_text", "iter_bytes", "iter_json")
    ),
    Scenario(
        "bytes-on-text-frame",
        [CONNECT, binary(b"a"), text("b")],
        [call("accept"), call("iter_bytes")],
        expect="KeyError",
    ),
    Scenario(
        "json-invalid",
        [CONNECT, text("1"), text("nope")],
        [call("accept"), call("iter_json")],
        expect="JSONDecodeError",
    ),
    Scenario(
        "then-close",
        [CONNECT, text("a"), disconnect(1001)],
        [call("accept"), call("iter_text"), call("close")],
        expect="ok",
    ),
]

SEND_HELPERS = [
    Scenario("text", [CONNECT], [call("accept"), call("send_text", "hé")], expect="ok"),
    Scenario("bytes", [CONNECT], [call("accept"), call("send_bytes", b"\x00\xff")], expect="ok"),
    Scenario(
        "json-compact-non-ascii",
        [CONNECT],
        [call("accept"), call("send_json", {"a": [1, 2.5, None], "é": "ü €", "emoji": "😀"})],
        expect="ok",
    ),
    Scenario(
        "json-binary",
        [CONNECT],
        [call("accept"), call("send_json", {"é": [True, False]}, mode="binary")],
        expect="ok",
    ),
    Scenario(
        "json-binary-positional",
        [CONNECT],
        [call("accept"), call("send_json", "ü", "binary")],
    ),
    Scenario("json-nan", [CONNECT], [call("accept"), call("send_json", [math.nan, math.inf])]),
    Scenario(
        "json-bad-mode",
        [CONNECT],
        [call("accept"), call("send_json", {}, mode="bytes")],
        expect="RuntimeError",
    ),
    Scenario(
        "json-bad-mode-before-accept",
        [],
        [call("send_json", {}, mode="xml")],
        expect="RuntimeError",
    ),
    Scenario(
        "json-bad-mode-after-close",
        [CONNECT],
        [call("accept"), call("close"), call("send_json", {}, mode="xml")],
        expect="RuntimeError",
    ),
    Scenario(
        "json-not-serialisable",
        [CONNECT],
        [call("accept"), call("send_json", {"s": {1, 2}}), call("send_json", {"ok": 1})],
    ),
    *(
        Scenario(
            f"{method}-before-accept",
            [],
            [call(method, *args)],
            expect="RuntimeError",
        )
        for method, args in (("send_text", ("x",)), ("send_bytes", (b"x",)), ("send_json", (1,)))
    ),
    *(
        Scenario(
            f"{method}-after-close",
            [CONNECT],
            [call("accept"), call("close"), call(method, *args)],
            expect="WebSocketDisconnected",
        )
        for method, args in (("send_text", ("x",)), ("send_bytes", (b"x",)), ("send_json", (1,)))
    ),
    *(
        Scenario(
            f"{method}-during-response",
            [],
            [call("send", START), call(method, *args)],
            expect="RuntimeError",
        )
        for method, args in (("send_text", ("x",)), ("send_bytes", (b"x",)), ("send_json", (1,)))
    ),
    # Plain mode sends after the client left; the server drops it (Starlette's behaviour).
    Scenario(
        "text-after-client-disconnect",
        [CONNECT, disconnect(1001)],
        [call("accept"), call("receive"), call("send_text", "late")],
        expect="ok",
    ),
]

CLOSE = [
    Scenario("default", [CONNECT], [call("accept"), call("close")], expect="ok"),
    Scenario("reason-none", [CONNECT], [call("accept"), call("close", reason=None)], expect="ok"),
    Scenario("code-and-reason", [CONNECT], [call("accept"), call("close", 1001, "bye")]),
    Scenario(
        "keywords-non-ascii", [CONNECT], [call("accept"), call("close", code=4000, reason="é€")]
    ),
    Scenario("before-accept", [], [call("close")], expect="ok"),
    Scenario("before-accept-with-code", [], [call("close", code=1008, reason="no")]),
    Scenario(
        "duplicate",
        [CONNECT],
        [call("accept"), call("close"), call("close")],
        expect="WebSocketDisconnected",
    ),
    Scenario(
        "duplicate-denial", [], [call("close"), call("close")], expect="WebSocketDisconnected"
    ),
    # Plain mode validates neither code nor reason, like Starlette.
    Scenario("reserved-code", [CONNECT], [call("accept"), call("close", code=1006)], expect="ok"),
    Scenario("unassigned-code", [CONNECT], [call("accept"), call("close", code=2000)]),
    Scenario("long-reason", [CONNECT], [call("accept"), call("close", reason="é" * 100)]),
    Scenario(
        "after-client-disconnect",
        [CONNECT, disconnect(1001)],
        [call("accept"), call("receive"), call("close")],
        expect="ok",
    ),
    Scenario(
        "after-response",
        [],
        [call("send", START), call("close")],
        expect="RuntimeError",
    ),
    Scenario(
        "raw-message-without-code",
        [CONNECT],
        [call("accept"), call("send", {"type": "websocket.close"}), call("send_text", "x")],
    ),
]

FAILING_SEND = [
    Scenario(
        "oserror-after-accept",
        [CONNECT, text("x")],
        [
            call("accept"),
            call("send_text", "x"),
            call("send_text", "y"),
            call("receive_text"),
            call("close"),
        ],
        fail_on=2,
    ),
    Scenario(
        "connection-reset-after-accept",
        [CONNECT],
        [call("accept"), call("send_bytes", b"x")],
        fail_on=2,
        fault=Raise(lambda: ConnectionResetError(104, "reset")),
        expect="WebSocketDisconnect",
    ),
    Scenario(
        "broken-pipe-on-send-json",
        [CONNECT],
        [call("accept"), call("send_json", {"a": 1})],
        fail_on=2,
        fault=Raise(lambda: BrokenPipeError()),
        expect="WebSocketDisconnect",
    ),
    Scenario(
        "oserror-on-close",
        [CONNECT],
        [call("accept"), call("close", 1001, "bye"), call("close")],
        fail_on=2,
    ),
    Scenario(
        "oserror-on-accept",
        [CONNECT],
        [call("accept"), call("send_text", "x")],
        fail_on=1,
    ),
    Scenario("oserror-on-denial-close", [], [call("close"), call("close")], fail_on=1),
    Scenario(
        "oserror-on-response-start",
        [],
        [call("send", START), call("send", body(b"x"))],
        fail_on=1,
    ),
    Scenario(
        "oserror-on-response-body",
        [],
        [call("send", START), call("send", body(b"x", more_body=True)), call("send", body(b""))],
        fail_on=2,
    ),
    Scenario(
        "runtime-error-after-accept",
        [CONNECT],
        [call("accept"), call("send_text", "x"), call("send_text", "y")],
        fail_on=2,
        fault=Raise(lambda: RuntimeError("server bug")),
    ),
    Scenario(
        "value-error-on-close",
        [CONNECT],
        [call("accept"), call("close"), call("close")],
        fail_on=2,
        fault=Raise(lambda: ValueError("server bug")),
    ),
    Scenario(
        "trio-broken-resource-after-accept",
        [CONNECT],
        [call("accept"), call("send_text", "x")],
        fail_on=2,
        fault=Raise(lambda: trio.BrokenResourceError("gone")),
        expect="BrokenResourceError",
    ),
]


async def chunked_denial(scope: Any, receive: Any, send: Any) -> None:
    """A plain ASGI callable that denies with a body in two chunks."""
    await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
    await send({"type": "websocket.http.response.body", "body": b"no", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"pe", "more_body": False})


async def unprefixed_denial(scope: Any, receive: Any, send: Any) -> None:
    """A plain ASGI callable that forgets the ``websocket.`` prefix."""
    await send({"type": "http.response.start", "status": 403, "headers": []})


async def reading_denial(scope: Any, receive: Any, send: Any) -> None:
    """A plain ASGI callable that reads the connect message before denying."""
    message = await receive()
    await send({"type": "websocket.http.response.start", "status": 400, "headers": []})
    await send({"type": "websocket.http.response.body", "body": message["type"].encode()})


async def half_denial(scope: Any, receive: Any, send: Any) -> None:
    """A plain ASGI callable that leaves the response unfinished."""
    await send({"type": "websocket.http.response.start", "status": 403, "headers": []})
    await send({"type": "websocket.http.response.body", "body": b"a", "more_body": True})


NO_EXTENSION: dict[str, Any] = {"extensions": {}}
DENIAL = [
    Scenario(
        "plain-text-response",
        [CONNECT],
        [call("send_denial_response", PlainTextResponse("go away", status_code=403))],
        expect="ok",
    ),
    Scenario(
        "response-with-headers",
        [CONNECT],
        [
            call(
                "send_denial_response",
                PlainTextResponse(
                    "who?", status_code=401, headers={"WWW-Authenticate": 'Bearer realm="x"'}
                ),
            )
        ],
    ),
    Scenario(
        "json-response",
        [],
        [call("send_denial_response", JSONResponse({"error": "é"}, status_code=429))],
    ),
    Scenario(
        "without-extension",
        [],
        [call("send_denial_response", PlainTextResponse("x")), call("close")],
        scope=NO_EXTENSION,
    ),
    Scenario(
        "without-extensions-key",
        [],
        [call("send_denial_response", PlainTextResponse("x"))],
        scope={"extensions": DELETE},
        expect="RuntimeError",
    ),
    Scenario(
        "extensions-none",
        [],
        [call("send_denial_response", PlainTextResponse("x"))],
        scope={"extensions": None},
        expect="TypeError",  # `in None`, on both
    ),
    Scenario(
        "asgi-callable-chunked",
        [],
        [call("send_denial_response", chunked_denial), call("send", body(b"more"))],
    ),
    Scenario(
        "asgi-callable-chunked-without-extension",
        [],
        [call("send_denial_response", chunked_denial)],
        scope=NO_EXTENSION,
        expect="RuntimeError",
    ),
    Scenario(
        "asgi-callable-unprefixed",
        [],
        [call("send_denial_response", unprefixed_denial)],
        expect="RuntimeError",
    ),
    Scenario(
        "asgi-callable-reads-connect",
        [CONNECT],
        [call("send_denial_response", reading_denial)],
        expect="ok",
    ),
    Scenario(
        "asgi-callable-unfinished",
        [],
        [call("send_denial_response", half_denial), call("send", body(b"b")), call("close")],
    ),
    Scenario(
        "after-accept",
        [CONNECT],
        [call("accept"), call("send_denial_response", PlainTextResponse("x"))],
        expect="RuntimeError",
    ),
    Scenario(
        "twice",
        [],
        [
            call("send_denial_response", PlainTextResponse("x")),
            call("send_denial_response", PlainTextResponse("x")),
        ],
        expect="WebSocketDisconnected",
    ),
    Scenario(
        "body-more-then-done-then-again",
        [],
        [
            call("send", START),
            call("send", body(b"a", more_body=True)),
            call("send", body(b"b", more_body=True)),
            call("send", body(b"c", more_body=False)),
            call("send", body(b"d")),
        ],
        expect="WebSocketDisconnected",
    ),
    Scenario(
        "body-without-more-body-key",
        [],
        [
            call("send", START),
            call("send", {"type": "websocket.http.response.body", "body": b"x"}),
        ],
    ),
    Scenario(
        "more-body-truthiness",
        [],
        [
            call("send", START),
            call("send", {**body(b"a"), "more_body": 1}),
            call("send", {**body(b"b"), "more_body": None}),
        ],
    ),
    Scenario(
        "start-twice",
        [],
        [call("send", START), call("send", START)],
        expect="RuntimeError",
    ),
]

MALFORMED = [
    Scenario("send-without-type-connecting", [], [call("send", {})], expect="KeyError"),
    Scenario(
        "send-without-type-connected", [CONNECT], [call("accept"), call("send", {"text": "x"})]
    ),
    Scenario("send-without-type-response", [], [call("send", START), call("send", {})]),
    Scenario("send-type-none", [], [call("send", {"type": None})], expect="RuntimeError"),
    Scenario("send-type-unhashable", [], [call("send", {"type": ["x"]})], expect="TypeError"),
    # Starlette compares with != in CONNECTING (receive) and RESPONSE (send), `in {...}` elsewhere.
    Scenario(
        "receive-type-unhashable-connecting",
        [{"type": ["x"]}],
        [call("receive")],
        expect="RuntimeError",
    ),
    Scenario(
        "receive-type-unhashable-connected",
        [CONNECT, {"type": ["x"]}],
        [call("receive"), call("receive")],
        expect="TypeError",
    ),
    Scenario(
        "send-type-unhashable-response",
        [],
        [call("send", START), call("send", {"type": ["x"]})],
        expect="RuntimeError",
    ),
    Scenario(
        "receive-type-none",
        [CONNECT, {"type": None}],
        [call("receive"), call("receive")],
        expect="RuntimeError",
    ),
    # Starlette checks the finished state before reading the message's type.
    Scenario(
        "send-without-type-after-close",
        [CONNECT],
        [call("accept"), call("close"), call("send", {})],
        expect="WebSocketDisconnected",
    ),
    Scenario(
        "send-without-type-after-denial",
        [],
        [call("close"), call("send", {"text": "x"})],
        expect="WebSocketDisconnected",
    ),
]

GROUPS = {
    "accept": ACCEPT,
    "receive": RECEIVE,
    "receive_helpers": RECEIVE_HELPERS,
    "iter": ITERATORS,
    "send_helpers": SEND_HELPERS,
    "close": CLOSE,
    "failing_send": FAILING_SEND,
    "denial": DENIAL,
    "malformed": MALFORMED,
}
SCENARIOS = [
    Scenario(f"{group}-{s.id}", s.incoming, s.steps, s.scope, s.fail_on, s.fault, s.expect)
    for group, scenarios in GROUPS.items()
    for s in scenarios
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=ids(SCENARIOS))
async def test_parity(scenario: Scenario) -> None:
    await assert_parity(scenario)


def test_scenario_ids_are_unique() -> None:
    all_ids = ids(SCENARIOS + SEND_MATRIX + RECEIVE_MATRIX)
    assert len(all_ids) == len(set(all_ids))


# ---------------------------------------------------------------------------------------------
# Spot checks: the transcripts say what the scenario claims (on both classes, via parity)


async def test_oserror_after_accept_is_a_1006_disconnect() -> None:
    (scenario,) = [s for s in FAILING_SEND if s.id == "oserror-after-accept"]
    transcript = await assert_parity(scenario)
    method, outcome, client, application, *_ = transcript.log[2]
    assert method == "send_text"
    assert outcome["type"] == "WebSocketDisconnect"
    assert (outcome["code"], outcome["reason"]) == (1006, "")
    assert (client, application) == ("CONNECTED", "DISCONNECTED")
    assert transcript.log[3][1]["type"] == "WebSocketDisconnected"  # the next send


async def test_oserror_before_accept_propagates_raw() -> None:
    (scenario,) = [s for s in FAILING_SEND if s.id == "oserror-on-accept"]
    transcript = await assert_parity(scenario)
    assert transcript.log[1][1]["type"] == "OSError"
    assert transcript.log[1][3] == "CONNECTED"  # the state changed before the send failed
    assert transcript.sent == [{"type": "websocket.send", "text": "x"}]


@pytest.mark.parametrize("cls", CLASSES, ids=["starlette", "trio_ws"])
async def test_disconnect_from_oserror_chains_the_oserror(cls: type[Any]) -> None:
    ws = cls(websocket_scope(), ScriptedReceive([CONNECT]), RecordingSend(fail_on=2))
    await ws.accept()
    with pytest.raises(DISCONNECT_TYPES) as info:
        await ws.send_text("x")
    assert isinstance(info.value.__context__, OSError)
    assert info.value.__cause__ is None


async def test_disconnect_from_oserror_shows_the_oserror_in_tracebacks() -> None:
    # Starlette raises inside ``except OSError:`` without ``from``, so tracebacks show
    # "During handling of the above exception, another exception occurred" with the OSError.
    flags = []
    for cls in CLASSES:
        ws = cls(websocket_scope(), ScriptedReceive([CONNECT]), RecordingSend(fail_on=2))
        await ws.accept()
        with pytest.raises(DISCONNECT_TYPES) as info:
            await ws.send_text("x")
        flags.append(info.value.__suppress_context__)
    assert flags[1] == flags[0]


async def test_send_json_is_compact_and_keeps_non_ascii() -> None:
    (scenario,) = [s for s in SEND_HELPERS if s.id == "json-compact-non-ascii"]
    transcript = await assert_parity(scenario)
    assert transcript.sent[-1] == {
        "type": "websocket.send",
        "text": '{"a":[1,2.5,null],"é":"ü €","emoji":"😀"}',
    }


async def test_close_reason_none_becomes_empty() -> None:
    (scenario,) = [s for s in CLOSE if s.id == "reason-none"]
    transcript = await assert_parity(scenario)
    assert transcript.sent[-1] == {"type": "websocket.close", "code": 1000, "reason": ""}


async def test_receive_text_on_binary_frame_is_a_clearer_key_error() -> None:
    (scenario,) = [s for s in RECEIVE_HELPERS if s.id == "text-on-binary-frame"]
    starlette_transcript = await assert_parity(scenario)
    assert starlette_transcript.log[-1][1]["args"] == ("text",)
    ours = await run(trio_ws.WebSocket, scenario)
    outcome = ours.log[-1][1]
    assert outcome["type"] == "WebSocketMessageTypeError"
    assert outcome["str"] == (
        "receive_text() got a binary message (1 bytes); use receive() or receive_bytes() "
        "to accept it"
    )


async def test_invalid_json_error_names_the_problem() -> None:
    (scenario,) = [s for s in RECEIVE_HELPERS if s.id == "json-invalid"]
    await assert_parity(scenario)
    outcome = (await run(trio_ws.WebSocket, scenario)).log[-2][1]
    assert outcome["type"] == "JSONDecodeError"
    assert "not valid JSON" in outcome["str"]
    assert "'{not json'" in outcome["str"]


async def test_denial_response_messages() -> None:
    (scenario,) = [s for s in DENIAL if s.id == "plain-text-response"]
    transcript = await assert_parity(scenario)
    assert [m["type"] for m in transcript.sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert transcript.sent[0]["status"] == 403
    assert transcript.sent[1]["body"] == b"go away"
    assert transcript.log[-1][2:4] == ("CONNECTING", "DISCONNECTED")


# ---------------------------------------------------------------------------------------------
# Construction with a non-WebSocket scope: a deliberate difference


@pytest.mark.parametrize("scope_type", ["http", "lifespan"])
def test_non_websocket_scope(scope_type: str) -> None:
    scope = websocket_scope(type=scope_type)
    receive, send = ScriptedReceive([]), RecordingSend()
    # Starlette asserts (HTTPConnection first, so "lifespan" fails there).
    with pytest.raises(AssertionError):
        StarletteWebSocket(scope, receive, send)
    # trio_ws raises ValueError, which survives ``python -O``.
    with pytest.raises(ValueError, match=f"not '{scope_type}'"):
        trio_ws.WebSocket(scope, receive, send)


def test_scope_without_type() -> None:
    scope = websocket_scope()
    del scope["type"]
    with pytest.raises(KeyError):
        StarletteWebSocket(scope, ScriptedReceive([]), RecordingSend())
    with pytest.raises(ValueError, match="None"):
        trio_ws.WebSocket(scope, ScriptedReceive([]), RecordingSend())


# ---------------------------------------------------------------------------------------------
# HTTPConnection through WebSocket


def hypercorn_scope() -> dict[str, Any]:
    return websocket_scope(
        scheme="wss",
        server=("10.0.0.1", 443),
        client=("203.0.113.5", 54321),
        root_path="/api",
        path="/api/chat/lobby",
        raw_path=b"/api/chat/lobby",
        query_string=b"user=bob&tag=a&tag=b&empty=&q=caf%C3%A9+au+lait",
        headers=[
            (b"host", b"chat.example.com"),
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
            (b"sec-websocket-version", b"13"),
            (b"sec-websocket-protocol", b"chat, superchat"),
            (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
            (b"origin", b"https://chat.example.com"),
            (b"cookie", b"session=abc123; theme=dark"),
            (b"cookie", b"lang=fr"),
            (b"user-agent", b"Mozilla/5.0"),
        ],
        subprotocols=["chat", "superchat"],
        path_params={"room": "lobby"},
        state={"db": "pool"},
    )


def connection_view(ws: Any) -> dict[str, Any]:
    url = ws.url
    return {
        "url": str(url),
        "url_parts": (url.scheme, url.netloc, url.hostname, url.port, url.path, url.query),
        "url_is_secure": url.is_secure,
        "base_url": str(ws.base_url),
        "headers": ws.headers.items(),
        "headers_raw": ws.headers.raw,
        "header_get": (ws.headers["Host"], ws.headers.get("x-missing")),
        "header_list": ws.headers.getlist("cookie"),
        "query_params": ws.query_params.multi_items(),
        "query_get": (ws.query_params["tag"], ws.query_params.getlist("tag"), ws.query_params["q"]),
        "query_str": str(ws.query_params),
        "path_params": ws.path_params,
        "client": (tuple(ws.client), ws.client.host, ws.client.port),
        "cookies": ws.cookies,
        "state_db": ws.state.db,
        "mapping": (ws["path"], len(ws), sorted(ws), "type" in ws),
    }


async def test_connection_basics_match_starlette() -> None:
    views = [
        connection_view(cls(hypercorn_scope(), ScriptedReceive([]), RecordingSend()))
        for cls in CLASSES
    ]
    assert views[1] == views[0]
    assert (
        views[0]["url"]
        == "wss://chat.example.com/api/chat/lobby?user=bob&tag=a&tag=b&empty=&q=caf%C3%A9+au+lait"
    )
    assert views[0]["cookies"] == {"session": "abc123", "theme": "dark", "lang": "fr"}


async def test_state_writes_through_to_the_scope() -> None:
    for cls in CLASSES:
        scope = hypercorn_scope()
        ws = cls(scope, ScriptedReceive([]), RecordingSend())
        ws.state.user = "bob"
        assert scope["state"] == {"db": "pool", "user": "bob"}
        assert ws.state is ws.state


async def test_state_created_when_missing() -> None:
    for cls in CLASSES:
        scope = hypercorn_scope()
        del scope["state"]
        ws = cls(scope, ScriptedReceive([]), RecordingSend())
        ws.state.n = 1
        assert scope["state"] == {"n": 1}


async def test_client_none_and_no_path_params() -> None:
    views = []
    for cls in CLASSES:
        scope = websocket_scope(client=None)
        ws = cls(scope, ScriptedReceive([]), RecordingSend())
        views.append((ws.client, ws.path_params, ws.cookies, str(ws.url), str(ws.base_url)))
    assert views[1] == views[0]


# ---------------------------------------------------------------------------------------------
# The exceptions


def exception_view(exc: BaseException) -> dict[str, Any]:
    """Everything but ``repr`` and ``args``, which have their own tests below."""
    return {
        "type": type(exc).__name__,
        "bases": [base.__name__ for base in type(exc).__mro__[1:]],
        "str": str(exc),
        "code": getattr(exc, "code", "-"),
        "reason": getattr(exc, "reason", "-"),
    }


CONSTRUCTOR_CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((), {}),
    ((1001,), {}),
    ((1001, "bye"), {}),
    ((1001, None), {}),
    ((), {"code": 1006}),
    ((), {"code": 4000, "reason": "é"}),
    ((1000,), {"reason": ""}),
]
# WebSocketException has no default code, and (a deliberate difference, issue 7 item 4) it
# refuses a code that cannot be sent in a close frame, such as 1006, when it is raised.
EXCEPTION_CALLS = [
    c for c in CONSTRUCTOR_CALLS if (c[0] or "code" in c[1]) and c[1].get("code") != 1006
]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((1006,), ValueError),
        ((999, "x"), ValueError),
        ((1000, "x" * 124), ValueError),
        ((1008, [{"msg": "field required"}]), TypeError),
        (("1000",), TypeError),
        ((True,), TypeError),
    ],
    ids=str,
)
def test_websocket_exception_checks_its_arguments_where_starlette_does_not(
    args: tuple[Any, ...], error: type[Exception]
) -> None:
    starlette.exceptions.WebSocketException(*args)  # Starlette accepts them all
    with pytest.raises(error, match="WebSocketException"):
        trio_ws.WebSocketException(*args)


@pytest.mark.parametrize(("args", "kwargs"), CONSTRUCTOR_CALLS, ids=str)
def test_websocket_disconnect_matches_starlette(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    expected = starlette.websockets.WebSocketDisconnect(*args, **kwargs)
    actual = trio_ws.WebSocketDisconnect(*args, **kwargs)
    assert exception_view(actual) == exception_view(expected)
    assert actual.args == expected.args


@pytest.mark.parametrize(("args", "kwargs"), EXCEPTION_CALLS, ids=str)
def test_websocket_exception_matches_starlette(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    expected = starlette.exceptions.WebSocketException(*args, **kwargs)
    actual = trio_ws.WebSocketException(*args, **kwargs)
    assert exception_view(actual) == exception_view(expected)
    assert repr(actual) == repr(expected)


def test_websocket_disconnect_repr_matches_starlette() -> None:
    # Starlette's class has no __repr__: BaseException's shows the positional args.
    mismatches = [
        (
            repr(trio_ws.WebSocketDisconnect(*a, **k)),
            repr(starlette.websockets.WebSocketDisconnect(*a, **k)),
        )
        for a, k in CONSTRUCTOR_CALLS
    ]
    assert [m for m in mismatches if m[0] != m[1]] == []


def test_websocket_exception_args_match_starlette() -> None:
    # Starlette's __init__ does not call Exception.__init__: args are the positional arguments.
    mismatches = [
        (
            trio_ws.WebSocketException(*a, **k).args,
            starlette.exceptions.WebSocketException(*a, **k).args,
        )
        for a, k in EXCEPTION_CALLS
    ]
    assert [m for m in mismatches if m[0] != m[1]] == []


@pytest.mark.parametrize(
    "args", [(), ('Cannot call "receive" once a disconnect message has been received.',)]
)
def test_websocket_disconnected_matches_starlette(args: tuple[str, ...]) -> None:
    expected = starlette.websockets.WebSocketDisconnected(*args)
    actual = trio_ws.WebSocketDisconnected(*args)
    assert exception_view(actual) == exception_view(expected)
    assert (repr(actual), actual.args) == (repr(expected), expected.args)
    assert isinstance(actual, RuntimeError)


def test_exception_classes_are_not_starlettes() -> None:
    # Code that moves to trio_ws must import trio_ws's classes: Starlette's do not catch them.
    assert not issubclass(trio_ws.WebSocketDisconnect, starlette.websockets.WebSocketDisconnect)
    assert not issubclass(trio_ws.WebSocketDisconnected, starlette.websockets.WebSocketDisconnected)


# ---------------------------------------------------------------------------------------------
# Starlette programs run unchanged (apart from the import)

STARLETTE_API = SimpleNamespace(
    WebSocket=starlette.websockets.WebSocket,
    WebSocketDisconnect=starlette.websockets.WebSocketDisconnect,
    status=starlette.status,
)
TRIO_WS_API = SimpleNamespace(
    WebSocket=trio_ws.WebSocket,
    WebSocketDisconnect=trio_ws.WebSocketDisconnect,
    status=trio_ws.status,
)
Endpoint = Callable[[Any, Any, Any, SimpleNamespace], Awaitable[Any]]


async def chat_echo(scope: Any, receive: Any, send: Any, api: SimpleNamespace) -> Any:
    """Echo JSON chat messages back, tagged with the user from the query string."""
    websocket = api.WebSocket(scope, receive=receive, send=send)
    await websocket.accept(subprotocol="chat")
    user = websocket.query_params.get("user", "anonymous")
    count = 0
    async for message in websocket.iter_json():
        count += 1
        await websocket.send_json({"from": user, "n": count, "echo": message})
    return count


async def deny_without_token(scope: Any, receive: Any, send: Any, api: SimpleNamespace) -> Any:
    """Refuse (close 1008 before accept) unless the right token is in the query string."""
    websocket = api.WebSocket(scope, receive=receive, send=send)
    if websocket.query_params.get("token") != "secret":
        await websocket.close(code=api.status.WS_1008_POLICY_VIOLATION)
        return "denied"
    await websocket.accept()
    await websocket.send_text("welcome")
    await websocket.close()
    return "accepted"


async def ping_pong(scope: Any, receive: Any, send: Any, api: SimpleNamespace) -> Any:
    """Answer JSON pings; a "bye" closes with a reason; a disconnect ends the loop."""
    websocket = api.WebSocket(scope, receive=receive, send=send)
    await websocket.accept()
    pings = 0
    try:
        while True:
            data = await websocket.receive_json()
            if data.get("type") == "ping":
                pings += 1
                await websocket.send_json({"type": "pong", "seq": data.get("seq")})
            elif data.get("type") == "bye":
                await websocket.close(code=1000, reason="see you")
                return ("closed", pings)
            else:
                await websocket.send_json({"type": "error", "detail": f"unknown {data!r}"})
    except api.WebSocketDisconnect as exc:
        return ("client left", pings, exc.code, exc.reason)


PROGRAMS: list[tuple[str, Endpoint, list[Message | Raise], dict[str, Any]]] = [
    (
        "chat-echo",
        chat_echo,
        [CONNECT, text('{"msg": "hi"}'), text('{"msg": "ça va?"}'), disconnect(1001)],
        {"query_string": b"user=z%C3%B6e", "subprotocols": ["chat"]},
    ),
    ("deny-without-token", deny_without_token, [CONNECT], {"query_string": b"token=wrong"}),
    (
        "deny-with-token",
        deny_without_token,
        [CONNECT, disconnect()],
        {"query_string": b"token=secret"},
    ),
    (
        "ping-pong-bye",
        ping_pong,
        [
            CONNECT,
            *(text(json.dumps({"type": "ping", "seq": n})) for n in range(3)),
            text('{"type": "bye"}'),
        ],
        {},
    ),
    (
        "ping-pong-client-leaves",
        ping_pong,
        [
            CONNECT,
            text('{"type": "ping", "seq": 1}'),
            text('{"type": "?"}'),
            disconnect(1001, "tab closed"),
        ],
        {},
    ),
]


async def run_program(
    endpoint: Endpoint, api: SimpleNamespace, incoming: list[Message | Raise], scope: dict[str, Any]
) -> tuple[Any, list[Message], int]:
    receive, send = ScriptedReceive(incoming), RecordingSend()
    with trio.fail_after(5):
        result = await endpoint(make_scope(scope), receive, send, api)
    return result, send.sent, receive.calls


@pytest.mark.parametrize(
    ("endpoint", "incoming", "scope"),
    [p[1:] for p in PROGRAMS],
    ids=[p[0] for p in PROGRAMS],
)
async def test_starlette_program_runs_unchanged(
    endpoint: Endpoint, incoming: list[Message | Raise], scope: dict[str, Any]
) -> None:
    expected = await run_program(endpoint, STARLETTE_API, incoming, scope)
    actual = await run_program(endpoint, TRIO_WS_API, incoming, scope)
    assert actual == expected
    assert expected[1], "the program sent nothing"


@pytest.mark.parametrize(
    ("method", "data"),
    [("send_text", b"raw"), ("send_bytes", "text"), ("send_text", None), ("send_bytes", 3)],
)
async def test_send_helpers_check_the_payload_type_where_starlette_does_not(
    method: str, data: object
) -> None:
    # Deliberate difference (issue 7 item 4): Starlette hands a wrong payload to the server,
    # which chokes on it (Hypercorn: TypeError inside, the client sees 1011); trio_ws raises
    # TypeError at the call and sends nothing.
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    ws = trio_ws.WebSocket(websocket_scope(), receive, send)
    await ws.accept()
    with pytest.raises(TypeError, match=method):
        await getattr(ws, method)(data)
    assert [m["type"] for m in sent] == ["websocket.accept"]
