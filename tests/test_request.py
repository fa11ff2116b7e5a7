"""Request (trio_ws._request): method, body, stream and json, and client disconnects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.asgi_fakes import ScriptedReceive
from trio_ws._http import HTTPConnection
from trio_ws._request import ClientDisconnect, Request


def http_scope(method: str = "POST", **overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "path": "/items",
        "root_path": "",
        "query_string": b"q=1",
        "headers": [(b"host", b"example.test"), (b"content-type", b"application/json")],
    }
    scope.update(overrides)
    return scope


def chunks(*parts: bytes) -> ScriptedReceive:
    """``http.request`` messages carrying ``parts``, the last one ending the body."""
    return ScriptedReceive(
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
        for index, part in enumerate(parts)
    )


def test_request_is_an_http_connection_of_http_scopes_only() -> None:
    request: Request = Request(http_scope("GET"))
    assert isinstance(request, HTTPConnection)
    assert request.method == "GET"
    assert request.url == "http://example.test/items?q=1"
    assert request.query_params["q"] == "1"
    assert request.headers["content-type"] == "application/json"
    with pytest.raises(ValueError, match="'websocket'"):
        Request({"type": "websocket", "path": "/", "headers": []})


async def test_body_joins_chunks_and_is_cached() -> None:
    receive = chunks(b"hel", b"", b"lo")
    request: Request = Request(http_scope(), receive)
    assert request.receive is receive
    assert await request.body() == b"hello"
    assert await request.body() == b"hello"
    assert receive.calls == 3
    # After body(), stream() replays the cached body.
    assert [chunk async for chunk in request.stream()] == [b"hello"]


async def test_body_of_a_single_message_without_more_body() -> None:
    request: Request = Request(http_scope(), ScriptedReceive([{"type": "http.request"}]))
    assert await request.body() == b""


async def test_stream_yields_chunks_as_they_come_and_only_once() -> None:
    request: Request = Request(http_scope(), chunks(b"a", b"", b"bc", b""))
    assert [chunk async for chunk in request.stream()] == [b"a", b"bc"]
    with pytest.raises(RuntimeError, match="already consumed"):
        [chunk async for chunk in request.stream()]
    with pytest.raises(RuntimeError, match="already consumed"):
        await request.body()


async def test_json_decodes_the_body_once() -> None:
    receive = chunks(b'{"name": "Zo', '\u00eb"}'.encode())
    request: Request = Request(http_scope(), receive)
    first = await request.json()
    assert first == {"name": "Zoë"}
    assert await request.json() is first


async def test_json_raises_on_invalid_json() -> None:
    request: Request = Request(http_scope(), chunks(b"{nope"))
    with pytest.raises(json.JSONDecodeError):
        await request.json()


async def test_disconnect_before_the_end_of_the_body_raises_client_disconnect() -> None:
    receive = ScriptedReceive(
        [
            {"type": "http.request", "body": b"part", "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    request: Request = Request(http_scope(), receive)
    with pytest.raises(ClientDisconnect, match="disconnected before the request body ended"):
        await request.body()


async def test_unexpected_message_is_an_error() -> None:
    request: Request = Request(http_scope(), ScriptedReceive([{"type": "websocket.connect"}]))
    with pytest.raises(RuntimeError, match=r"unexpected ASGI message 'websocket\.connect'"):
        await request.body()


async def test_request_without_receive_says_so() -> None:
    request: Request = Request(http_scope())
    with pytest.raises(RuntimeError, match="without a receive callable"):
        await request.body()


async def test_same_body_as_starlette() -> None:
    """Parity oracle: Starlette 1.10 (Python 3.11+) reads the same body and method."""
    starlette_requests = pytest.importorskip("starlette.requests")
    parts = (b"x" * 10, b"", b"y")
    theirs = starlette_requests.Request(http_scope(), chunks(*parts))
    ours: Request = Request(http_scope(), chunks(*parts))
    assert await ours.body() == await theirs.body()
    assert ours.method == theirs.method
    assert ours.url == theirs.url
