"""Responses (trio_ws._responses): bodies, headers, HTTP and WebSocket-denial messages."""

from __future__ import annotations

from typing import Any

import pytest

from tests.asgi_fakes import RecordingSend, ScriptedReceive
from trio_ws._responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

Message = dict[str, Any]


def http_scope(method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": "/", "headers": [], "query_string": b""}


async def sent_by(response: Response, scope: dict[str, Any] | None = None) -> list[Message]:
    send = RecordingSend()
    await response(http_scope() if scope is None else scope, ScriptedReceive([]), send)
    return send.sent


async def test_bytes_response_sends_start_and_body() -> None:
    sent = await sent_by(Response(b"\x00\x01", status_code=201, media_type="application/x-y"))
    assert sent == [
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-length", b"2"), (b"content-type", b"application/x-y")],
        },
        {"type": "http.response.body", "body": b"\x00\x01"},
    ]


async def test_default_response_is_empty_without_content_type() -> None:
    response = Response()
    assert response.body == b""
    assert response.status_code == 200
    assert response.raw_headers == [(b"content-length", b"0")]
    sent = await sent_by(response)
    assert sent[1]["body"] == b""


def test_text_is_utf8_and_text_types_get_a_charset() -> None:
    response = PlainTextResponse("héllo")
    assert response.body == "héllo".encode()
    assert response.headers["content-length"] == "6"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert HTMLResponse("<p>").headers["content-type"] == "text/html; charset=utf-8"
    # An explicit charset is kept; non-text types get none.
    kept = Response("x", media_type="text/csv; charset=latin-1")
    assert kept.headers["content-type"] == "text/csv; charset=latin-1"
    assert Response("x", media_type="image/svg+xml").headers["content-type"] == "image/svg+xml"


def test_json_response_is_compact_and_keeps_non_ascii() -> None:
    response = JSONResponse({"name": "Zoë", "tags": [1, 2.5, None, True]})
    assert response.body == '{"name":"Zoë","tags":[1,2.5,null,true]}'.encode()
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.body))
    assert JSONResponse(None).body == b"null"


def test_json_response_refuses_nan_and_unserialisable_values() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        JSONResponse({"x": float("nan")})
    with pytest.raises(TypeError):
        JSONResponse({"x": object()})


def test_plain_response_refuses_other_content() -> None:
    with pytest.raises(TypeError, match="use JSONResponse"):
        Response({"x": 1})  # type: ignore[arg-type]


def test_given_headers_replace_computed_ones_and_headers_are_live() -> None:
    response = PlainTextResponse(
        "abc", headers={"Content-Type": "text/x-custom", "X-Extra": "1", "Content-Length": "3"}
    )
    assert response.raw_headers == [
        (b"content-type", b"text/x-custom"),
        (b"x-extra", b"1"),
        (b"content-length", b"3"),
    ]
    response.headers["x-extra"] = "2"
    response.headers.append("set-cookie", "a=b")
    assert (b"x-extra", b"2") in response.raw_headers
    assert (b"set-cookie", b"a=b") in response.raw_headers


@pytest.mark.parametrize("status_code", [101, 204, 304])
def test_bodyless_statuses_get_no_content_length(status_code: int) -> None:
    assert "content-length" not in Response(status_code=status_code).headers


async def test_head_gets_the_headers_of_the_full_response_but_no_body() -> None:
    sent = await sent_by(PlainTextResponse("hello"), http_scope("HEAD"))
    assert (b"content-length", b"5") in sent[0]["headers"]
    assert sent[1] == {"type": "http.response.body", "body": b""}


async def test_websocket_scope_sends_a_denial_response() -> None:
    scope = {"type": "websocket", "path": "/", "headers": [], "query_string": b""}
    sent = await sent_by(PlainTextResponse("go away", status_code=401), scope)
    assert [m["type"] for m in sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert sent[0]["status"] == 401
    assert sent[1]["body"] == b"go away"


async def test_other_scopes_are_refused() -> None:
    with pytest.raises(ValueError, match="'lifespan'"):
        await sent_by(Response(), {"type": "lifespan"})


def test_repr() -> None:
    assert repr(PlainTextResponse("hi", 404)) == "PlainTextResponse(status_code=404, body=b'hi')"


@pytest.mark.parametrize(
    ("ours", "theirs", "args"),
    [
        ("Response", "Response", (b"x", 200, {"a": "b"}, "text/plain")),
        ("PlainTextResponse", "PlainTextResponse", ("héllo", 404, None, None)),
        ("HTMLResponse", "HTMLResponse", ("<b>", 200, None, None)),
        ("JSONResponse", "JSONResponse", ({"k": ["ü", 1.5]}, 200, None, None)),
        ("Response", "Response", (None, 204, None, None)),
    ],
)
def test_same_bytes_and_headers_as_starlette(ours: str, theirs: str, args: tuple[Any, ...]) -> None:
    """Parity oracle: Starlette 1.10 (Python 3.11+) renders the same body and headers."""
    starlette_responses = pytest.importorskip("starlette.responses")
    import trio_ws._responses as mine

    a = getattr(mine, ours)(*args)
    b = getattr(starlette_responses, theirs)(*args)
    assert a.body == b.body
    assert a.raw_headers == b.raw_headers
