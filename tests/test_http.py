"""Tests for trio_ws._http.HTTPConnection: parity with Starlette 1.10 plus direct checks."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest
import starlette.requests as sr
from starlette.routing import Mount, Route, Router, WebSocketRoute

from trio_ws._datastructures import URL, Address, Headers, QueryParams, State, URLPath
from trio_ws._http import HTTPConnection


def make_scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "websocket",
        "scheme": "ws",
        "path": "/chat",
        "raw_path": b"/chat",
        "query_string": b"room=1",
        "root_path": "",
        "headers": [(b"host", b"example.com"), (b"cookie", b"a=1")],
        "server": ("127.0.0.1", 8000),
        "client": ("10.0.0.2", 51234),
        "subprotocols": [],
    }
    scope.update(overrides)
    return scope


def connection_view(conn: Any) -> tuple[Any, ...]:
    client = conn.client
    return (
        str(conn.url),
        str(conn.base_url),
        conn.headers.raw,
        conn.query_params.multi_items(),
        conn.cookies,
        None if client is None else tuple(client),
        conn.path_params,
        dict(conn),
        len(conn),
        list(conn),
    )


SCOPES: list[dict[str, Any]] = [
    make_scope(),
    make_scope(type="http", scheme="http", headers=[(b"host", b"example.com:80")]),
    make_scope(type="http", scheme="https", headers=[], server=("example.com", 443)),
    make_scope(scheme="wss", headers=[], server=("::1", 443)),
    make_scope(scheme="wss", headers=[], server=("::1", 8443)),
    make_scope(headers=[(b"host", b"[::1]:8000")]),
    make_scope(headers=[(b"host", b"example.com:99999")], server=("fallback", 80)),
    make_scope(headers=[(b"host", b"bad/host")], server=None),
    make_scope(headers=[], server=None, path="//evil.com/x"),
    make_scope(root_path="/api", path="/api/chat"),
    make_scope(root_path="/api/", path="/api/chat"),
    make_scope(root_path="/mount", app_root_path="/app", path="/app/mount/chat"),
    make_scope(app_root_path="/only-app-root"),
    make_scope(root_path="/we?ird#root", path="/we?ird#root/x"),
    make_scope(path="/caf\xe9/a%2Fb", query_string=b"x=%20&x=2&blank=&flag"),
    make_scope(path="/a\\b?c"),
    make_scope(query_string=b""),
    make_scope(client=None),
    make_scope(client=["1.2.3.4", 9]),
    make_scope(path_params={"room": "lobby"}),
    make_scope(
        headers=(
            (b"host", b"h"),
            (b"cookie", b'a=1; b; =c; d="q\\"x"'),
            (b"cookie", b"a=2;;e=\xe9"),
            (b"x-dup", b"1"),
            (b"x-dup", b"2"),
        )
    ),
    make_scope(headers=[(b"cookie", b";;")], server=("h", 80)),
]


@pytest.mark.parametrize("scope", SCOPES)
def test_connection_matches_starlette(scope: dict[str, Any]) -> None:
    ours_scope, theirs_scope = copy.deepcopy(scope), copy.deepcopy(scope)
    ours = HTTPConnection(ours_scope)
    theirs = sr.HTTPConnection(theirs_scope)
    assert connection_view(ours) == connection_view(theirs)
    # Both normalise the scope the same way (headers become a list).
    assert ours_scope == theirs_scope


def test_properties_have_the_right_types() -> None:
    conn = HTTPConnection(make_scope())
    assert type(conn.url) is URL
    assert type(conn.base_url) is URL
    assert type(conn.headers) is Headers
    assert type(conn.query_params) is QueryParams
    assert type(conn.client) is Address
    assert type(conn.state) is State
    assert conn.client == Address("10.0.0.2", 51234)
    assert conn.url == "ws://example.com/chat?room=1"
    assert conn.base_url == "ws://example.com/"
    assert conn.headers["Host"] == "example.com"
    assert conn.query_params["room"] == "1"
    assert conn.cookies == {"a": "1"}
    assert conn.path_params == {}


def test_derived_values_are_cached() -> None:
    conn = HTTPConnection(make_scope())
    for name in ("url", "base_url", "headers", "query_params", "cookies", "state"):
        assert getattr(conn, name) is getattr(conn, name), name


def test_init_is_lazy() -> None:
    scope = make_scope(headers=((b"host", b"h"),))
    conn = HTTPConnection(scope)
    assert conn.scope is scope
    assert vars(conn) == {"scope": scope}
    assert isinstance(scope["headers"], tuple)
    assert "state" not in scope


def test_properties_are_read_only() -> None:
    conn = HTTPConnection(make_scope())
    with pytest.raises(AttributeError):
        conn.url = URL("/")  # type: ignore[misc]


@pytest.mark.parametrize("scope_type", ["lifespan", "HTTP", "", None, 1])
def test_non_connection_scope_raises_value_error(scope_type: Any) -> None:
    with pytest.raises(ValueError, match="'http' or 'websocket'"):
        HTTPConnection({"type": scope_type})


def test_missing_scope_type_raises_value_error() -> None:
    with pytest.raises(ValueError, match="'http' or 'websocket'"):
        HTTPConnection({})


@pytest.mark.parametrize("scope_type", ["http", "websocket"])
def test_receive_argument_is_accepted(scope_type: str) -> None:
    async def receive() -> dict[str, Any]:
        raise AssertionError("never called")  # pragma: no cover

    conn = HTTPConnection(make_scope(type=scope_type), receive)
    assert conn["type"] == scope_type


def test_mapping_over_scope() -> None:
    scope = make_scope()
    conn = HTTPConnection(scope)
    assert isinstance(conn, Mapping)
    assert conn["path"] == "/chat"
    assert conn.get("missing", "default") == "default"
    assert "query_string" in conn
    assert set(conn) == set(scope)
    assert len(conn) == len(scope)
    with pytest.raises(KeyError):
        conn["missing"]


def test_equality_is_identity() -> None:
    scope = make_scope()
    first, second = HTTPConnection(scope), HTTPConnection(scope)
    assert first == first
    assert first != second
    assert first != scope
    assert len({first, second, first}) == 2
    assert hash(first) == object.__hash__(first)


def test_app_and_path_params() -> None:
    app = object()
    conn = HTTPConnection(make_scope(app=app, path_params={"id": 3}))
    assert conn.app is app
    assert conn.path_params == {"id": 3}
    with pytest.raises(KeyError):
        HTTPConnection(make_scope()).app  # noqa: B018


def test_headers_are_shared_with_the_scope() -> None:
    scope = make_scope(headers=((b"host", b"h"),))
    conn = HTTPConnection(scope)
    conn.headers.mutablecopy()["x"] = "y"
    assert scope["headers"] == [(b"host", b"h")]
    assert conn.headers._list is scope["headers"]


def test_state_lives_in_the_scope() -> None:
    scope = make_scope()
    conn = HTTPConnection(scope)
    conn.state.user_id = 7
    assert scope["state"] == {"user_id": 7}
    assert HTTPConnection(scope).state.user_id == 7

    shared: dict[str, Any] = {"db": "pool"}
    other = HTTPConnection(make_scope(state=shared))
    assert other.state.db == "pool"
    other.state["x"] = 1
    assert shared == {"db": "pool", "x": 1}
    with pytest.raises(AttributeError, match="'State' object has no attribute 'nope'"):
        other.state.nope  # noqa: B018


def test_generic_subscription() -> None:
    class MyState(State):
        pass

    alias = HTTPConnection[MyState]
    conn = alias(make_scope())
    assert isinstance(conn, HTTPConnection)
    assert isinstance(conn.state, State)

    class Sub(HTTPConnection[State]):
        pass

    assert Sub(make_scope()).url == "ws://example.com/chat?room=1"


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        ("session", "SessionMiddleware must be installed to access request.session"),
        ("auth", "AuthenticationMiddleware must be installed to access request.auth"),
        ("user", "AuthenticationMiddleware must be installed to access request.user"),
    ],
)
def test_middleware_attributes_missing(attribute: str, message: str) -> None:
    with pytest.raises(AssertionError) as ours:
        getattr(HTTPConnection(make_scope()), attribute)
    with pytest.raises(AssertionError) as theirs:
        getattr(sr.HTTPConnection(make_scope()), attribute)
    assert str(ours.value) == str(theirs.value) == message


def test_middleware_attributes_present() -> None:
    class TrackingSession(dict[str, Any]):
        accessed = False

        def mark_accessed(self) -> None:
            self.accessed = True

    session = TrackingSession(a=1)
    conn = HTTPConnection(make_scope(session=session, auth="creds", user="alice"))
    assert conn.session is session
    assert session.accessed
    assert conn.auth == "creds"
    assert conn.user == "alice"
    plain: dict[str, Any] = {}
    assert HTTPConnection(make_scope(session=plain)).session is plain


# ---------------------------------------------------------------------------------------------
# url_for


class FakeRouter:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        self.calls.append((name, path_params))
        protocol: Any = "websocket" if name.startswith("ws") else "http"
        return URLPath("/" + name + "/" + "/".join(map(str, path_params.values())), protocol)


@pytest.mark.parametrize(
    ("scope_overrides", "expected"),
    [
        ({}, "ws://example.com/ws_room/7"),
        ({"scheme": "wss"}, "wss://example.com/ws_room/7"),
        ({"root_path": "/api", "path": "/api/chat"}, "ws://example.com/api/ws_room/7"),
        ({"root_path": "/sub", "app_root_path": "/top"}, "ws://example.com/top/ws_room/7"),
    ],
)
def test_url_for_with_a_router(scope_overrides: dict[str, Any], expected: str) -> None:
    router = FakeRouter()
    conn = HTTPConnection(make_scope(router=router, **scope_overrides))
    url = conn.url_for("ws_room", id=7)
    assert type(url) is URL
    assert url == expected
    assert router.calls == [("ws_room", {"id": 7})]


def test_url_for_prefers_router_over_app() -> None:
    router, app = FakeRouter(), FakeRouter()
    conn = HTTPConnection(make_scope(type="http", scheme="https", router=router, app=app))
    assert conn.url_for("page") == "https://example.com/page/"
    assert router.calls
    assert not app.calls
    assert HTTPConnection(make_scope(app=app)).url_for("page") == "http://example.com/page/"
    assert app.calls == [("page", {})]


def test_url_for_name_is_positional_only() -> None:
    conn = HTTPConnection(make_scope(router=FakeRouter()))
    assert conn.url_for("x", name="n") == "http://example.com/x/n"


def test_url_for_without_router_or_app() -> None:
    message = (
        "The `url_for` method can only be used inside a Starlette application or with a router."
    )
    with pytest.raises(RuntimeError) as ours:
        HTTPConnection(make_scope()).url_for("anything")
    with pytest.raises(RuntimeError) as theirs:
        sr.HTTPConnection(make_scope()).url_for("anything")
    assert str(ours.value) == str(theirs.value) == message


async def _endpoint(*args: Any) -> None:  # pragma: no cover - never served
    pass


STARLETTE_ROUTER = Router(
    routes=[
        Route("/users/{user_id:int}", _endpoint, name="user"),
        WebSocketRoute("/ws/{room}", _endpoint, name="ws_room"),
        Mount("/sub", routes=[WebSocketRoute("/feed", _endpoint, name="feed")], name="sub"),
    ]
)


@pytest.mark.parametrize(
    ("name", "params", "scope_overrides"),
    [
        ("user", {"user_id": 5}, {}),
        ("ws_room", {"room": "lobby"}, {}),
        ("ws_room", {"room": "a b"}, {"scheme": "wss", "headers": [(b"host", b"[::1]:9")]}),
        ("sub:feed", {}, {"root_path": "/prefix", "path": "/prefix/chat"}),
        ("user", {"user_id": 1}, {"root_path": "/m", "app_root_path": "/root"}),
    ],
)
def test_url_for_with_starlette_router_matches_starlette(
    name: str, params: dict[str, Any], scope_overrides: dict[str, Any]
) -> None:
    scope = make_scope(router=STARLETTE_ROUTER, **scope_overrides)
    ours = HTTPConnection(scope).url_for(name, **params)
    theirs = sr.HTTPConnection(scope).url_for(name, **params)
    assert str(ours) == str(theirs)


def test_url_for_with_starlette_router_websocket_scheme() -> None:
    conn = HTTPConnection(make_scope(scheme="wss", router=STARLETTE_ROUTER))
    assert str(conn.url_for("ws_room", room="r1")) == "wss://example.com/ws/r1"
    http_conn = HTTPConnection(make_scope(type="http", scheme="http", router=STARLETTE_ROUTER))
    assert str(http_conn.url_for("ws_room", room="r1")) == "ws://example.com/ws/r1"
