"""Pluggable JSON: ``JSONCodec`` and where it is chosen, typed ``receive_json``, 1007 on failures.

Codec and validation logic is tested directly; where a codec applies (session, route,
``websocket_app``, ``Router``, ``trio_ws.session``) through ``trio_ws.testing`` in memory and
through real Hypercorn with a real client.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import pytest
import trio

import trio_ws
from tests.hypercorn_harness import hypercorn_server
from tests.test_interop import Script, Seen, talk_trio_websocket
from trio_ws import JSONCodec, JSONValidationError
from trio_ws.testing import open_connection as connect

VALUES: list[Any] = [
    {"text": "héllo ✓", "n": 1, "ok": True, "none": None},
    [1, 2.5, -0.0, 1e300, "a\u2028b", "\x00"],
    "plain",
    {"nested": {"list": [{"k": "v"}] * 3}},
]

# An unmistakable codec: its output is indented, so a client can tell which codec wrote it.
INDENTED = JSONCodec(lambda value: json.dumps(value, indent=1), json.loads, name="indented")


def starlette_output(value: Any) -> str:
    """What ``starlette.websockets.WebSocket.send_json`` writes (its exact call)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# ------------------------------------------------------------------------------ codecs alone


@pytest.mark.parametrize("value", VALUES)
def test_standard_codec_writes_what_starlette_writes(value: Any) -> None:
    codec = JSONCodec.standard()
    assert codec.encode_text(value) == starlette_output(value)
    assert codec.encode_bytes(value) == starlette_output(value).encode()
    assert codec.decode(starlette_output(value)) == value
    assert codec.decode(starlette_output(value).encode()) == value


def test_standard_codec_is_shared_and_the_default() -> None:
    assert JSONCodec.standard() is JSONCodec.standard()
    ws = trio_ws.WebSocket({"type": "websocket"}, never, never)
    assert ws._json is JSONCodec.standard()


@pytest.mark.parametrize("make", [JSONCodec.orjson, JSONCodec.msgspec])
@pytest.mark.parametrize("value", VALUES)
def test_fast_codecs_round_trip(make: Any, value: Any) -> None:
    pytest.importorskip(make.__name__)
    codec = make()
    assert json.loads(codec.encode_text(value)) == value
    assert codec.decode(codec.encode_bytes(value)) == value
    assert codec.decode(codec.encode_text(value)) == value


@pytest.mark.parametrize(
    "make", [JSONCodec.standard, JSONCodec.orjson, JSONCodec.msgspec, lambda: INDENTED]
)
@pytest.mark.parametrize("bad", ["{", "nope", '{"a": }', b"[1,"])
def test_invalid_json_raises_json_decode_error_that_says_why(make: Any, bad: str | bytes) -> None:
    if getattr(make, "__name__", "") in ("orjson", "msgspec"):
        pytest.importorskip(make.__name__)
    with pytest.raises(json.JSONDecodeError, match="the message is not valid JSON") as caught:
        make().decode(bad)
    assert repr(bad if isinstance(bad, str) else bad.decode())[1:-1] in str(caught.value)


def test_long_messages_are_previewed() -> None:
    with pytest.raises(json.JSONDecodeError, match=r"message: '\{\"a\": 1, x{31}\.\.\.'"):
        JSONCodec.standard().decode('{"a": 1, ' + "x" * 100)


def test_binary_that_is_not_utf8_raises_unicode_decode_error_as_starlette() -> None:
    with pytest.raises(UnicodeDecodeError):
        JSONCodec.standard().decode(b"\xff")


def test_a_codec_needs_callables() -> None:
    with pytest.raises(TypeError, match="callable"):
        JSONCodec("dumps", json.loads)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="JSONCodec"):
        trio_ws.WebSocket({"type": "websocket"}, never, never, json_codec=json)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="JSONCodec"):
        trio_ws.Router([], json_codec=json)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["orjson", "msgspec"])
def test_missing_library_says_so(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ModuleNotFoundError, match=f"needs the {name} package"):
        getattr(JSONCodec, name)()


# ------------------------------------------------------------------------------ typed decoding


@dataclasses.dataclass
class Point:
    x: int
    y: int


def pydantic_model() -> Any:
    pydantic = pytest.importorskip("pydantic")

    class Chat(pydantic.BaseModel):
        room: str
        text: str

    return Chat


def msgspec_struct() -> Any:
    msgspec = pytest.importorskip("msgspec")

    class Move(msgspec.Struct):
        dx: int
        dy: int

    return Move


def test_typed_decode_with_pydantic_models() -> None:
    chat = pydantic_model()
    codec = JSONCodec.standard()
    message = codec.decode('{"room": "lobby", "text": "hi"}', chat)
    assert (type(message), message.room, message.text) == (chat, "lobby", "hi")
    with pytest.raises(
        JSONValidationError, match=r"does not match Chat \(text: Field required"
    ) as e:
        codec.decode('{"room": "lobby"}', chat)
    assert e.value.type is chat
    assert type(e.value.__cause__).__name__ == "ValidationError"
    assert e.value.close_reason == "JSON does not match Chat"
    with pytest.raises(json.JSONDecodeError, match="not valid JSON"):
        codec.decode('{"room": ', chat)


@pytest.mark.parametrize("make", [JSONCodec.standard, JSONCodec.msgspec])
def test_typed_decode_with_msgspec_types(make: Any) -> None:
    move = msgspec_struct()
    codec = make()
    assert codec.decode(b'{"dx": 1, "dy": -1}', move) == move(1, -1)
    assert codec.decode('{"x": 1, "y": 2}', Point) == Point(1, 2)
    assert codec.decode("[1, 2, 3]", list[int]) == [1, 2, 3]
    with pytest.raises(JSONValidationError, match=r"does not match Point \(Expected `int`"):
        codec.decode('{"x": "one", "y": 2}', Point)
    with pytest.raises(json.JSONDecodeError, match="not valid JSON"):
        codec.decode("[1, 2", list[int])


def test_typed_decode_falls_back_to_pydantic_type_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pydantic")
    monkeypatch.setitem(sys.modules, "msgspec", None)
    codec = JSONCodec(json.dumps, json.loads)  # a fresh cache of typed decoders
    assert codec.decode('{"x": 1, "y": 2}', Point) == Point(1, 2)
    with pytest.raises(JSONValidationError, match="does not match Point"):
        codec.decode('{"x": 1}', Point)


def test_typed_decode_without_pydantic_or_msgspec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "msgspec", None)
    monkeypatch.setitem(sys.modules, "pydantic", None)
    with pytest.raises(ModuleNotFoundError, match="msgspec or pydantic"):
        JSONCodec(json.dumps, json.loads).decode("{}", Point)


@pytest.mark.parametrize(
    ("expected", "name"),
    [
        (Point, "Point"),
        (list[int], "list[int]"),
        (Point | None, "Point | NoneType"),
        (dict, "dict"),
    ],
)
def test_errors_name_the_type_as_written(expected: Any, name: str) -> None:
    assert JSONValidationError(expected, "x", "{}").close_reason == f"JSON does not match {name}"


def test_close_reasons_fit_a_close_frame() -> None:
    long_name = type("M" * 200, (), {})
    error = JSONValidationError(long_name, "detail", "{}")
    assert len(error.close_reason.encode()) == 123


# ------------------------------------------------------------------------ where codecs apply


async def never(*args: object) -> Any:  # pragma: no cover - never called
    raise AssertionError


async def echo_json(ws: trio_ws.WebSocket) -> None:
    await ws.accept()
    async for value in ws.iter_json():
        await ws.send_json(value)


async def test_plain_mode_sends_exactly_what_starlette_sends() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    ws = trio_ws.WebSocket({"type": "websocket"}, receive, send)
    await ws.accept()
    for value in VALUES:
        await ws.send_json(value)
        await ws.send_json(value, mode="binary")
    data = [m.get("text", m.get("bytes")) for m in sent[1:]]
    expected = [starlette_output(v) for v in VALUES]
    assert data == [x for e in expected for x in (e, e.encode())]


@pytest.mark.parametrize(
    ("app", "indented"),
    [
        (trio_ws.websocket_app(echo_json), False),
        (trio_ws.websocket_app(echo_json, json_codec=INDENTED), True),
        (trio_ws.Router([trio_ws.WebSocketRoute("/", echo_json, json_codec=INDENTED)]), True),
        (trio_ws.Router([trio_ws.WebSocketRoute("/", echo_json)], json_codec=INDENTED), True),
        # The innermost router's codec wins over an outer one's...
        (
            trio_ws.Router(
                [trio_ws.Mount("", trio_ws.Router([trio_ws.WebSocketRoute("/", echo_json)]))],
                json_codec=INDENTED,
            ),
            True,
        ),
        # ... and a route's own option over the router's.
        (
            trio_ws.Router(
                [trio_ws.WebSocketRoute("/", echo_json, json_codec=JSONCodec.standard())],
                json_codec=INDENTED,
            ),
            False,
        ),
    ],
)
async def test_where_the_codec_is_chosen(app: Any, indented: bool) -> None:
    async with connect(app, "/") as client:
        await client.send_text('{"a": [1, 2]}')
        text = await client.receive_text()
    assert text == (json.dumps({"a": [1, 2]}, indent=1) if indented else '{"a":[1,2]}')


async def typed_room(ws: trio_ws.WebSocket) -> None:
    await ws.accept()
    async for move in ws.iter_json(type=Point):
        await ws.send_json({"x": move.x + 1, "y": move.y + 1})


async def test_typed_iter_json_and_1007_on_a_mismatch_in_memory() -> None:
    app = trio_ws.websocket_app(typed_room, close_on_invalid_json=True)
    async with connect(app, "/") as client:
        await client.send_json({"x": 1, "y": 2})
        assert await client.receive_json() == {"x": 2, "y": 3}
        await client.send_json({"x": "far"})
        assert await client.expect_close(1007) == (1007, "JSON does not match Point")


async def test_a_mismatch_raises_json_validation_error_without_the_option() -> None:
    caught: list[BaseException] = []

    async def handler(ws: trio_ws.WebSocket) -> None:
        await ws.accept()
        try:
            await ws.receive_json(type=Point)
        except JSONValidationError as exc:
            caught.append(exc)
            await ws.send_text("bad point")

    async with connect(trio_ws.websocket_app(handler), "/") as client:
        await client.send_text('{"x": 1}')
        assert await client.receive_text() == "bad point"
    [error] = caught
    assert isinstance(error, ValueError)
    assert "does not match Point" in str(error)


@pytest.mark.parametrize("make", [JSONCodec.orjson, JSONCodec.msgspec])
async def test_fast_codecs_under_hypercorn_with_a_real_client(make: Any) -> None:
    pytest.importorskip(make.__name__)
    app = trio_ws.websocket_app(typed_room, json_codec=make(), close_on_invalid_json=True)
    with trio.fail_after(10):
        async with hypercorn_server(app) as url:
            seen = await talk_trio_websocket(
                url + "/", Script(('{"x": 1, "y": 1}', '{"x": []}'), echo=True)
            )
            broken = await talk_trio_websocket(url + "/", Script(("{",)))
    assert seen == Seen(replies=['{"x":2,"y":2}'], code=1007, reason="JSON does not match Point")
    assert broken == Seen(code=1007, reason="invalid JSON")


async def test_starlette_session_takes_a_codec() -> None:
    starlette_websockets = pytest.importorskip("starlette.websockets")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        websocket = starlette_websockets.WebSocket(scope, receive, send)
        async with trio_ws.session(websocket, json_codec=INDENTED) as ws:
            await echo_json(ws)

    async with connect(app, "/") as client:
        await client.send_text("[1]")
        assert await client.receive_text() == json.dumps([1], indent=1)
