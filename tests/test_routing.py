"""Routing (trio_ws._routing), in memory: matching, convertors, 404/405, url_for, Mount, lifespan.

HTTP requests are driven by a scripted ``receive`` and a recording ``send``; WebSockets by the
``FakeServer`` of ``tests.session_fakes`` (the server's side of one connection).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from tests.asgi_fakes import RecordingSend, ScriptedReceive
from tests.session_fakes import FakeServer
from trio_ws import WebSocket
from trio_ws._request import Request
from trio_ws._responses import JSONResponse, PlainTextResponse, Response
from trio_ws._routing import Match, Mount, NoMatchFound, Route, Router, WebSocketRoute

Message = dict[str, Any]


@dataclass
class HTTPResult:
    status: int
    headers: dict[str, str]
    body: bytes
    scope: dict[str, Any]


async def http_call(
    app: Any,
    path: str,
    method: str = "GET",
    *,
    body: bytes = b"",
    scheme: str = "http",
    root_path: str = "",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> HTTPResult:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "root_path": root_path,
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "query_string": b"",
        "headers": [(b"host", b"example.test"), *(headers or [])],
    }
    receive = ScriptedReceive([{"type": "http.request", "body": body}, {"type": "http.disconnect"}])
    send = RecordingSend()
    await app(scope, receive, send)
    start, *bodies = send.sent
    assert start["type"] == "http.response.start"
    return HTTPResult(
        start["status"],
        {k.decode(): v.decode() for k, v in start["headers"]},
        b"".join(m["body"] for m in bodies),
        scope,
    )


async def ws_call(app: Any, path: str, **scope: Any) -> FakeServer:
    """Run one WebSocket connection to its end; return the server's record of it."""
    server = FakeServer(path=path)
    server.scope.update(scope)
    with trio.fail_after(5):
        await app(server.scope, server.receive, server.send)
    return server


# ------------------------------------------------------------------------------- endpoints


async def echo_params(request: Request) -> Response:
    return JSONResponse({key: repr(value) for key, value in request.path_params.items()})


async def hello(request: Request) -> Response:
    return PlainTextResponse(f"hello {request.method}")


async def create(request: Request) -> Response:
    return JSONResponse({"got": (await request.body()).decode()}, status_code=201)


async def tell_url(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text(str(ws.url_for("room", room=ws.path_params["room"])))


# -------------------------------------------------------------------- matching and convertors


async def test_path_params_are_converted() -> None:
    app = Router(
        [
            Route("/s/{name}", echo_params),
            Route("/i/{n:int}", echo_params),
            Route("/f/{x:float}", echo_params),
            Route("/u/{id:uuid}", echo_params),
            Route("/p/{rest:path}", echo_params),
            Route("/two/{a}/{b:int}", echo_params),
        ]
    )
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    cases = {
        "/s/zoë": {"name": "'zoë'"},
        "/i/042": {"n": "42"},
        "/f/1.5": {"x": "1.5"},
        "/f/3": {"x": "3.0"},
        f"/u/{u}": {"id": repr(u)},
        f"/u/{u.hex}": {"id": repr(u)},
        "/p/a/b/c.txt": {"rest": "'a/b/c.txt'"},
        "/p/": {"rest": "''"},
        "/two/x/7": {"a": "'x'", "b": "7"},
    }
    for path, expected in cases.items():
        result = await http_call(app, path)
        assert result.status == 200, path
        assert JSONResponse(expected).body == result.body, path


@pytest.mark.parametrize(
    "path",
    [
        "/i/abc",
        "/i/-1",
        "/i/1.5",
        "/i/",
        "/f/1.",
        "/f/.5",
        "/f/nan",
        "/u/not-a-uuid",
        "/u/12345678-1234-5678-1234-56781234567",
        "/s/",
        "/s/a/b",
        "/s/a/",  # no trailing-slash redirect: another path
        "/nothing",
    ],
)
async def test_values_that_do_not_fit_their_convertor_are_404(path: str) -> None:
    app = Router(
        [
            Route("/i/{n:int}", echo_params),
            Route("/f/{x:float}", echo_params),
            Route("/u/{id:uuid}", echo_params),
            Route("/s/{name}", echo_params),
        ]
    )
    result = await http_call(app, path)
    assert (result.status, result.body) == (404, b"Not Found")
    assert result.headers["content-type"] == "text/plain; charset=utf-8"


def test_bad_route_definitions_are_refused() -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        Route("items", hello)
    with pytest.raises(ValueError, match="must start with '/'"):
        WebSocketRoute("ws", tell_url)
    with pytest.raises(ValueError, match="unknown path convertor 'number'"):
        Route("/{n:number}", hello)
    with pytest.raises(ValueError, match="'a' appears twice"):
        Route("/{a}/{a:int}", hello)
    with pytest.raises(ValueError, match="exactly one of"):
        Mount("/x")
    with pytest.raises(ValueError, match="exactly one of"):
        Mount("/x", app=hello, routes=[])
    with pytest.raises(ValueError, match="mount path"):
        Mount("x", routes=[])


async def test_first_full_match_wins() -> None:
    async def first(request: Request) -> Response:
        return PlainTextResponse("first")

    async def second(request: Request) -> Response:
        return PlainTextResponse("second")

    app = Router([Route("/users/me", first), Route("/users/{name}", second)])
    assert (await http_call(app, "/users/me")).body == b"first"
    assert (await http_call(app, "/users/you")).body == b"second"


# ------------------------------------------------------------------------------ HTTP routes


async def test_405_with_allow_header_and_head_where_get_is() -> None:
    app = Router([Route("/hello", hello), Route("/items", create, methods=["post"])])
    get = await http_call(app, "/hello")
    assert (get.status, get.body) == (200, b"hello GET")
    head = await http_call(app, "/hello", "HEAD")
    assert (head.status, head.body, head.headers["content-length"]) == (200, b"", "10")

    refused = await http_call(app, "/hello", "POST")
    assert (refused.status, refused.body) == (405, b"Method Not Allowed")
    assert refused.headers["allow"] == "GET, HEAD"

    posted = await http_call(app, "/items", "POST", body=b"abc")
    assert (posted.status, posted.body) == (201, b'{"got":"abc"}')
    refused = await http_call(app, "/items")
    assert (refused.status, refused.headers["allow"]) == (405, "POST")


async def test_a_full_match_later_beats_an_earlier_partial_one() -> None:
    app = Router([Route("/x", hello, methods=["GET"]), Route("/x", create, methods=["POST"])])
    assert (await http_call(app, "/x", "POST", body=b"1")).status == 201


async def test_route_sets_scope_keys() -> None:
    app = Router([Route("/i/{n:int}", echo_params)])
    result = await http_call(app, "/i/3")
    assert result.scope["router"] is app
    assert result.scope["app"] is app
    assert result.scope["endpoint"] is echo_params
    assert result.scope["route"] is app.routes[0]
    assert result.scope["path_params"] == {"n": 3}


async def test_router_keeps_an_app_already_in_the_scope() -> None:
    app = Router([Route("/", hello)])
    outer = object()
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "app": outer}
    await app(scope, ScriptedReceive([]), RecordingSend())
    assert scope["app"] is outer
    assert scope["router"] is app


async def test_endpoint_errors_propagate() -> None:
    async def broken(request: Request) -> Response:
        raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError, match="boom"):
        await http_call(Router([Route("/", broken)]), "/")


async def test_starlette_style_endpoints() -> None:
    """Class instances are ASGI apps (any method), partials and sync functions are endpoints,
    and an endpoint may return any ASGI response."""

    class Raw:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await PlainTextResponse(f"raw {scope['method']}")(scope, receive, send)

    def sync_endpoint(request: Request) -> Response:
        return PlainTextResponse("sync")

    async def greet(request: Request, greeting: str) -> Response:
        return PlainTextResponse(greeting)

    app = Router(
        [
            Route("/raw", Raw()),
            Route("/sync", sync_endpoint),
            Route("/partial", functools.partial(greet, greeting="hi")),
        ]
    )
    assert (await http_call(app, "/raw", "DELETE")).body == b"raw DELETE"
    assert (await http_call(app, "/sync")).body == b"sync"
    assert (await http_call(app, "/partial")).body == b"hi"
    assert app.routes[2].name == "partial"  # type: ignore[attr-defined]


async def test_endpoint_may_return_a_starlette_response() -> None:
    responses = pytest.importorskip("starlette.responses")

    async def endpoint(request: Request) -> Any:
        return responses.JSONResponse({"from": "starlette"})

    result = await http_call(Router([Route("/", endpoint)]), "/")
    assert (result.status, result.body) == (200, b'{"from":"starlette"}')


async def test_routes_are_asgi_apps_on_their_own() -> None:
    route = Route("/i/{n:int}", echo_params)
    assert (await http_call(route, "/i/5")).body == b'{"n":"5"}'
    assert (await http_call(route, "/i/x")).status == 404
    server = await ws_call(WebSocketRoute("/rooms/{room}", tell_url, name="room"), "/nope")
    assert server.sent[0]["status"] == 404


async def test_default_app_gets_what_no_route_matches() -> None:
    async def fallback(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("fallback", 418)(scope, receive, send)

    result = await http_call(Router([Route("/", hello)], default=fallback), "/x")
    assert (result.status, result.body) == (418, b"fallback")


async def test_unknown_scope_type_is_refused() -> None:
    with pytest.raises(ValueError, match="'weird'"):
        await Router()({"type": "weird"}, ScriptedReceive([]), RecordingSend())


def test_matches_and_repr() -> None:
    route = Route("/x", hello)
    assert route.matches({"type": "websocket", "path": "/x"}) == (Match.NONE, {})
    assert repr(route) == "Route(path='/x', name='hello', methods=['GET', 'HEAD'])"
    assert repr(WebSocketRoute("/ws", tell_url)) == "WebSocketRoute(path='/ws', name='tell_url')"
    assert "Mount(path='/m', name='m'" in repr(Mount("/m", routes=[], name="m"))


# -------------------------------------------------------------------------- WebSocket routes


async def test_websocket_route_runs_the_endpoint_in_a_session() -> None:
    sessions: list[WebSocket] = []

    async def endpoint(ws: WebSocket) -> None:
        sessions.append(ws)
        await ws.accept()
        ws.start_soon(trio.sleep_forever)  # only possible inside a session
        await ws.send_json(ws.path_params)

    server = await ws_call(Router([WebSocketRoute("/rooms/{n:int}", endpoint)]), "/rooms/7")
    assert server.data_sent() == ['{"n":7}']
    assert server.close_sent() == {"type": "websocket.close", "code": 1000, "reason": ""}
    assert sessions[0].statistics().helper_tasks == 0


async def test_websocket_no_match_is_denied_with_404_where_the_server_can() -> None:
    app = Router([WebSocketRoute("/ws", tell_url), Route("/http", hello)])
    for path in ("/nope", "/http"):
        server = await ws_call(app, path)
        start, body = server.sent
        assert start["type"] == "websocket.http.response.start"
        assert start["status"] == 404
        assert body == {"type": "websocket.http.response.body", "body": b"Not Found"}


async def test_websocket_no_match_without_the_extension_closes_before_accept() -> None:
    server = await ws_call(Router([]), "/nope", extensions={})
    assert server.sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]


async def test_http_request_to_a_websocket_path_is_404() -> None:
    assert (await http_call(Router([WebSocketRoute("/ws", tell_url)]), "/ws")).status == 404


async def test_per_route_max_message_size_closes_with_1009() -> None:
    received: list[str] = []

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        async for text in ws.iter_text():
            received.append(text)

    app = Router(
        [
            WebSocketRoute("/small", endpoint, max_message_size=4),
            WebSocketRoute("/big", endpoint),
        ]
    )
    server = FakeServer(path="/small")
    await server.client_text("1234")
    await server.client_text("12345")
    with trio.fail_after(5):
        await app(server.scope, server.receive, server.send)
    assert received == ["1234"]
    close = server.close_sent()
    assert close is not None
    assert close["code"] == 1009

    received.clear()
    server = FakeServer(path="/big")
    await server.client_text("12345")
    await server.client_disconnect()
    with trio.fail_after(5):
        await app(server.scope, server.receive, server.send)
    assert received == ["12345"]


def test_session_options_are_checked_when_the_route_is_made() -> None:
    with pytest.raises(TypeError, match="no_such_option"):
        WebSocketRoute("/ws", tell_url, no_such_option=1)
    with pytest.raises(ValueError, match="max_queued_messages"):
        WebSocketRoute("/ws", tell_url, max_queued_messages=0)

    async def raw(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError  # pragma: no cover

    class Raw:
        __call__ = raw

    with pytest.raises(ValueError, match="need an endpoint function"):
        WebSocketRoute("/ws", Raw(), max_message_size=1)


async def test_websocket_asgi_app_endpoint_gets_the_raw_connection() -> None:
    class Raw:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            ws = WebSocket(scope, receive, send)
            await ws.accept()
            await ws.send_text(scope["path_params"]["x"])
            await ws.close()

    server = await ws_call(Router([WebSocketRoute("/{x}", Raw())]), "/hi")
    assert server.data_sent() == ["hi"]


async def test_origin_denied_before_the_endpoint_runs() -> None:
    ran: list[str] = []

    async def endpoint(ws: WebSocket) -> None:
        ran.append(ws.headers.get("origin", "-"))
        await ws.accept()

    app = Router(
        [
            WebSocketRoute("/ws", endpoint, allowed_origins=["https://example.com"]),
            WebSocketRoute(
                "/strict",
                endpoint,
                allowed_origins=["https://*.example.com"],
                allow_missing_origin=False,
            ),
        ]
    )

    def origin(value: str) -> list[tuple[bytes, bytes]]:
        return [(b"host", b"127.0.0.1:8000"), (b"origin", value.encode())]

    denied = await ws_call(app, "/ws", headers=origin("https://evil.test"))
    assert denied.sent[0]["type"] == "websocket.http.response.start"
    assert denied.sent[0]["status"] == 403
    assert denied.sent[1]["body"] == b"Origin not allowed"
    denied = await ws_call(app, "/ws", headers=origin("https://evil.test"), extensions={})
    assert denied.sent == [{"type": "websocket.close", "code": 1000, "reason": ""}]
    denied = await ws_call(app, "/strict")  # no Origin header
    assert denied.sent[0]["status"] == 403
    assert ran == []

    allowed = await ws_call(app, "/ws", headers=origin("HTTPS://EXAMPLE.COM:443"))
    assert allowed.sent[0]["type"] == "websocket.accept"
    allowed = await ws_call(app, "/ws")  # no Origin header: allowed by default
    assert allowed.sent[0]["type"] == "websocket.accept"
    allowed = await ws_call(app, "/strict", headers=origin("https://a.example.com"))
    assert allowed.sent[0]["type"] == "websocket.accept"
    assert ran == ["HTTPS://EXAMPLE.COM:443", "-", "https://a.example.com"]


# ----------------------------------------------------------------------- url_path_for / url_for


def reversing_app() -> Router:
    async def raw(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError  # pragma: no cover

    return Router(
        [
            Route("/", hello, name="home"),
            Route("/items/{id:int}", echo_params, name="item"),
            WebSocketRoute("/rooms/{room}", tell_url, name="room"),
            Mount(
                "/api/{version:int}",
                name="api",
                routes=[
                    Route("/users/{name}", echo_params, name="user"),
                    WebSocketRoute("/live", tell_url, name="live"),
                    Mount("/files", name="files", app=raw),
                ],
            ),
            Mount("/plain", routes=[Route("/about", hello, name="about")]),
        ]
    )


@pytest.mark.parametrize(
    ("name", "params", "path", "protocol"),
    [
        ("home", {}, "/", "http"),
        ("item", {"id": 5}, "/items/5", "http"),
        ("item", {"id": "12"}, "/items/12", "http"),
        ("room", {"room": "lobby"}, "/rooms/lobby", "websocket"),
        ("api:user", {"version": 2, "name": "zoë"}, "/api/2/users/zoë", "http"),
        ("api:live", {"version": 1}, "/api/1/live", "websocket"),
        ("api:files", {"version": 1, "path": "/a/b.txt"}, "/api/1/files/a/b.txt", ""),
        ("about", {}, "/plain/about", "http"),
    ],
)
def test_url_path_for_every_route_type(
    name: str, params: dict[str, Any], path: str, protocol: str
) -> None:
    url_path = reversing_app().url_path_for(name, **params)
    assert (str(url_path), url_path.protocol) == (path, protocol)


def test_url_path_for_on_the_routes_themselves() -> None:
    assert (
        Route("/items/{id:int}", echo_params, name="item").url_path_for("item", id=1) == "/items/1"
    )
    assert WebSocketRoute("/ws", tell_url).url_path_for("tell_url").protocol == "websocket"
    mount = Mount("/m", routes=[Route("/x", hello)], name="m")
    assert mount.url_path_for("m:hello") == "/m/x"
    assert mount.url_path_for("m", path="/y") == "/m/y"
    assert mount.routes[0].name == "hello"  # type: ignore[attr-defined]
    assert Mount("/m", app=hello).routes == []


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("nope", {}),
        ("item", {}),  # missing parameter
        ("item", {"id": 1, "extra": 2}),  # extra parameter
        ("home", {"id": 1}),
        ("user", {"version": 1, "name": "x"}),  # needs the mount's prefix
        ("api:user", {"name": "x"}),  # needs the mount's parameter
        ("api:nope", {"version": 1}),
        ("api", {"version": 1}),  # a mount itself needs path=
        ("plain:about", {}),  # an unnamed mount adds no prefix
    ],
)
def test_no_match_found(name: str, params: dict[str, Any]) -> None:
    with pytest.raises(NoMatchFound) as caught:
        reversing_app().url_path_for(name, **params)
    assert caught.value.name == name
    assert caught.value.path_params == params
    assert repr(name) in str(caught.value)
    for key in params:
        assert key in str(caught.value)


def test_no_match_found_message() -> None:
    error = NoMatchFound("chat", {"room": 1, "id": 2})
    assert str(error) == "no route named 'chat' takes exactly the path parameters: id, room"
    assert str(NoMatchFound("x", {})).endswith("path parameters: no parameters")


@pytest.mark.parametrize(
    ("name", "params", "error"),
    [
        ("room", {"room": "a/b"}, "no '/'"),
        ("room", {"room": ""}, "non-empty"),
        ("item", {"id": -1}, "cannot be negative"),
        ("item", {"id": "x"}, "invalid literal"),
    ],
)
def test_values_that_cannot_be_in_a_path_are_refused(
    name: str, params: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        reversing_app().url_path_for(name, **params)


def test_float_and_uuid_reversal() -> None:
    u = uuid.uuid4()
    app = Router([Route("/f/{x:float}", hello, name="f"), Route("/u/{id:uuid}", hello, name="u")])
    assert app.url_path_for("f", x=1.5) == "/f/1.5"
    assert app.url_path_for("f", x=2) == "/f/2"
    assert app.url_path_for("u", id=u) == f"/u/{u}"
    assert app.url_path_for("u", id=str(u)) == f"/u/{u}"
    with pytest.raises(ValueError, match="finite"):
        app.url_path_for("f", x=float("inf"))


async def test_request_url_for_gives_http_and_https_urls() -> None:
    async def links(request: Request) -> Response:
        return JSONResponse(
            [
                str(request.url_for("item", id=3)),
                str(request.url_for("room", room="lobby")),
                str(request.url_for("api:user", version=1, name="x")),
            ]
        )

    app = reversing_app()
    app.routes.append(Route("/links", links))
    result = await http_call(app, "/links")
    assert result.body == (
        b'["http://example.test/items/3","ws://example.test/rooms/lobby",'
        b'"http://example.test/api/1/users/x"]'
    )
    result = await http_call(app, "/links", scheme="https")
    assert result.body == (
        b'["https://example.test/items/3","wss://example.test/rooms/lobby",'
        b'"https://example.test/api/1/users/x"]'
    )
    # Served below a root_path (behind a proxy): URLs keep the prefix.
    result = await http_call(app, "/links", root_path="/prefix")
    assert b'"http://example.test/prefix/items/3"' in result.body


async def test_ws_url_for_gives_ws_and_wss_urls() -> None:
    app = reversing_app()
    server = await ws_call(app, "/rooms/lobby")
    assert server.data_sent() == ["ws://127.0.0.1:8000/rooms/lobby"]
    server = await ws_call(app, "/rooms/lobby", scheme="wss")
    assert server.data_sent() == ["wss://127.0.0.1:8000/rooms/lobby"]


async def test_url_for_inside_a_mount_builds_from_the_application_root() -> None:
    async def live(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json(
            {
                "live": str(ws.url_for("api:live", version=ws.path_params["version"])),
                "home": str(ws.url_for("home")),
                "root_path": ws.scope["root_path"],
                "app_root_path": ws.scope["app_root_path"],
                "path": ws.scope["path"],
            }
        )

    app = Router(
        [
            Route("/", hello, name="home"),
            Mount("/api/{version:int}", name="api", routes=[WebSocketRoute("/live", live)]),
        ]
    )
    server = await ws_call(app, "/proxy/api/3/live", root_path="/proxy", scheme="wss")
    assert server.data_sent() == [
        '{"live":"wss://127.0.0.1:8000/proxy/api/3/live","home":"https://127.0.0.1:8000/proxy/",'
        '"root_path":"/proxy/api/3","app_root_path":"/proxy","path":"/proxy/api/3/live"}'
    ]


async def test_mount_of_any_asgi_app_sees_root_path_and_params() -> None:
    async def raw(scope: Any, receive: Any, send: Any) -> None:
        await JSONResponse(
            {"root_path": scope["root_path"], "path": scope["path"], "params": scope["path_params"]}
        )(scope, receive, send)

    app = Router([Mount("/static/{bucket}", app=raw)])
    result = await http_call(app, "/static/b1/css/site.css")
    assert result.body == (
        b'{"root_path":"/static/b1","path":"/static/b1/css/site.css","params":{"bucket":"b1"}}'
    )
    assert (await http_call(app, "/static/b1")).status == 404  # the mount needs its "/"
    assert (await http_call(app, "/static/b1/")).status == 200


async def test_nested_mounts_route_by_the_remaining_path() -> None:
    inner = Router([Route("/leaf/{n:int}", echo_params, name="leaf")])
    app = Router([Mount("/a", name="a", routes=[Mount("/b", name="b", app=inner)])])
    result = await http_call(app, "/a/b/leaf/9")
    assert (result.status, result.body) == (200, b'{"n":"9"}')
    assert result.scope["root_path"] == "/a/b"
    assert result.scope["router"] is app  # the outermost router reverses names
    assert app.url_path_for("a:b:leaf", n=9) == "/a/b/leaf/9"


# ------------------------------------------------------------------------------------ lifespan


async def run_lifespan(app: Router, *, with_state: bool = True) -> tuple[list[Message], Any]:
    """Run startup then shutdown; return what the app sent and what it raised (or None)."""
    scope: dict[str, Any] = {"type": "lifespan", "asgi": {"version": "3.0"}}
    if with_state:
        scope["state"] = {}
    receive = ScriptedReceive([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    send = RecordingSend()
    error: Exception | None = None
    try:
        await app(scope, receive, send)
    except Exception as exc:
        error = exc
    return [*send.sent, scope.get("state")], error


async def test_router_without_lifespan_completes_both() -> None:
    sent, error = await run_lifespan(Router())
    assert error is None
    assert sent == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
        {},
    ]


async def test_lifespan_runs_around_the_server_and_shares_state() -> None:
    events: list[Any] = []

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Mapping[str, Any]]:
        events.append(("start", app))
        yield {"db": "connected"}
        events.append("stop")

    router = Router(lifespan=lifespan)
    sent, error = await run_lifespan(router)
    assert error is None
    assert sent == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
        {"db": "connected"},
    ]
    assert events == [("start", router), "stop"]


async def test_lifespan_yielding_nothing_needs_no_state_support() -> None:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield

    sent, error = await run_lifespan(Router(lifespan=lifespan), with_state=False)
    assert error is None
    assert [m["type"] for m in sent[:2]] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


async def test_lifespan_state_without_server_support_fails_startup() -> None:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Mapping[str, Any]]:
        yield {"x": 1}

    sent, error = await run_lifespan(Router(lifespan=lifespan), with_state=False)
    assert isinstance(error, RuntimeError)
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "does not support lifespan state" in sent[0]["message"]


async def test_lifespan_startup_failure_is_reported_and_raised() -> None:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        raise ConnectionError("database unreachable")
        yield  # pragma: no cover

    sent, error = await run_lifespan(Router(lifespan=lifespan))
    assert isinstance(error, ConnectionError)
    assert sent[:1] == [
        {"type": "lifespan.startup.failed", "message": "ConnectionError: database unreachable"}
    ]


async def test_lifespan_shutdown_failure_is_reported_and_raised() -> None:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        raise ValueError("could not flush")

    sent, error = await run_lifespan(Router(lifespan=lifespan))
    assert isinstance(error, ValueError)
    assert sent[:2] == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.failed", "message": "ValueError: could not flush"},
    ]


async def test_lifespan_protocol_errors() -> None:
    with pytest.raises(RuntimeError, match=r"expected lifespan\.startup"):
        await Router()(
            {"type": "lifespan"}, ScriptedReceive([{"type": "lifespan.shutdown"}]), RecordingSend()
        )
    with pytest.raises(RuntimeError, match=r"expected lifespan\.shutdown"):
        await Router()(
            {"type": "lifespan"},
            ScriptedReceive([{"type": "lifespan.startup"}, {"type": "lifespan.startup"}]),
            RecordingSend(),
        )
