"""Tests for trio_ws._datastructures: parity with Starlette 1.10 plus direct behaviour checks."""

from __future__ import annotations

import copy
import pickle
from typing import TYPE_CHECKING, Any

import pytest
import starlette.datastructures as sd
import starlette.requests as sr
from hypothesis import given, settings, strategies as st
from starlette._utils import parse_host_header

from trio_ws import _datastructures as td
from trio_ws._urls import _parse_host_header

if TYPE_CHECKING:
    from collections.abc import Callable

# ---------------------------------------------------------------------------------------------
# helpers


def outcome(func: Callable[[], Any]) -> tuple[str, Any]:
    """Run ``func`` and describe its result or the type of exception it raised."""
    try:
        return "ok", func()
    except Exception as exc:
        return "raised", type(exc).__name__


def make_scope(
    *,
    scheme: str = "http",
    server: tuple[str, int] | None = ("testserver", 80),
    host: str | None = None,
    path: str = "/",
    query_string: bytes = b"",
    root_path: str | None = None,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    headers: list[tuple[bytes, bytes]] = []
    if host is not None:
        headers.append((b"host", host.encode("latin-1")))
    headers.extend(extra_headers or [])
    scope: dict[str, Any] = {
        "type": "websocket" if scheme.startswith("ws") else "http",
        "scheme": scheme,
        "path": path,
        "query_string": query_string,
        "headers": headers,
        **extra,
    }
    if server is not None:
        scope["server"] = server
    if root_path is not None:
        scope["root_path"] = root_path
    return scope


def url_parts(url: Any) -> tuple[Any, ...]:
    return (
        str(url),
        url.scheme,
        url.netloc,
        url.path,
        url.query,
        url.fragment,
        url.username,
        url.password,
        url.hostname,
        outcome(lambda: url.port),
        url.is_secure,
        repr(url),
    )


# ---------------------------------------------------------------------------------------------
# URL from scope

SCOPES: list[dict[str, Any]] = [
    make_scope(),
    make_scope(host="example.com"),
    make_scope(host="Example.COM:8080", path="/a/b"),
    make_scope(host="example.com:80"),
    make_scope(scheme="https", host="example.com:443"),
    make_scope(scheme="ws", host="example.com"),
    make_scope(scheme="wss", host="example.com", path="/chat", query_string=b"room=1&x"),
    # default and non-default ports from `server`
    make_scope(scheme="http", server=("10.0.0.1", 80)),
    make_scope(scheme="http", server=("10.0.0.1", 443)),
    make_scope(scheme="https", server=("10.0.0.1", 443)),
    make_scope(scheme="https", server=("10.0.0.1", 80)),
    make_scope(scheme="ws", server=("10.0.0.1", 80)),
    make_scope(scheme="ws", server=("10.0.0.1", 8000)),
    make_scope(scheme="wss", server=("10.0.0.1", 443)),
    make_scope(scheme="wss", server=("10.0.0.1", 8443)),
    # IPv6 server addresses and host headers
    make_scope(server=("::1", 8000)),
    make_scope(server=("::1", 80)),
    make_scope(server=("[::1]", 8000)),
    make_scope(scheme="wss", server=("fe80::1", 443)),
    make_scope(host="[::1]"),
    make_scope(host="[::1]:8000"),
    make_scope(host="[2001:db8::1]:443", scheme="wss"),
    make_scope(host="[::ffff:127.0.0.1]"),
    make_scope(host="[v1.fe80::a+en1]:80"),
    make_scope(host="[V1.fe80::a]"),
    make_scope(host="[::1"),
    make_scope(host="[:::1]"),
    make_scope(host="[fe80::1%25eth0]"),
    make_scope(host="::1"),
    # bad, odd and unsafe host headers fall back to `server`
    make_scope(host="example.com:"),
    make_scope(host="example.com:abc"),
    make_scope(host="example.com:65535"),
    make_scope(host="example.com:65536"),
    make_scope(host="example.com:000000080"),
    make_scope(host="example.com:0000000000"),
    make_scope(host="example.com:123456"),
    make_scope(host="example.com:\xb2"),
    make_scope(host="evil.com/path"),
    make_scope(host="user@evil.com"),
    make_scope(host="evil.com?x"),
    make_scope(host="evil.com#x"),
    make_scope(host="evil.com\\x"),
    make_scope(host="a b"),
    make_scope(host=""),
    make_scope(host="ex%41mple.com"),
    make_scope(host="caf\xe9.com"),
    make_scope(host="example.com\n"),
    make_scope(host="example.com", extra_headers=[(b"host", b"other.com")]),
    make_scope(extra_headers=[(b"Host", b"other.com")]),
    # no usable host at all
    make_scope(server=None),
    make_scope(server=None, host="bad/host"),
    make_scope(server=None, path="//evil.com/x"),
    make_scope(server=None, path="/p", query_string=b"a=1"),
    make_scope(server=None, path="///x", query_string=b"a=1"),
    # paths
    make_scope(host="h", path="/caf%C3%A9/%2F"),
    make_scope(host="h", path="/caf\xe9/\u2603"),
    make_scope(host="h", path="/a?b#c\\d"),
    make_scope(host="h", path="//evil.com/x"),
    make_scope(host="h", path=""),
    make_scope(host="h", path="relative"),
    make_scope(host="h", path="/a b", query_string=b"q=%20&r=+&s"),
    make_scope(host="h", path="/x", query_string="k=\u2603".encode()),
    make_scope(host="h", path="/sub/x", root_path="/sub"),
    # scheme defaults to http
    {"type": "http", "path": "/", "headers": [], "server": ("s", 80)},
    {"type": "http", "path": "/", "headers": [], "server": ("s", 81)},
    {"type": "http", "path": "/", "headers": ((b"host", b"tuple.example"),)},
]


@pytest.mark.parametrize("scope", SCOPES)
def test_url_from_scope_matches_starlette(scope: dict[str, Any]) -> None:
    ours = td.URL(scope=copy.deepcopy(scope))
    theirs = sd.URL(scope=copy.deepcopy(scope))
    assert url_parts(ours) == url_parts(theirs)


def test_url_from_scope_unknown_scheme_with_server_raises_like_starlette() -> None:
    scope = make_scope(scheme="ftp", server=("h", 21))
    assert outcome(lambda: td.URL(scope=scope)) == outcome(lambda: sd.URL(scope=scope))
    assert outcome(lambda: td.URL(scope=scope))[0] == "raised"


@pytest.mark.parametrize(
    "header",
    [None, "h", "h:1", "[::1]:2", "[v1.x]", "[V1.x]", "h:\u0661", "\u212a", "[::g]", "h:", "[]"],
)
def test_parse_host_header_matches_starlette(header: str | None) -> None:
    theirs = parse_host_header(header)
    expected = None if theirs is None else (theirs.host, theirs.port)
    assert _parse_host_header(header) == expected


HOST_ALPHABET = "abcvV019fF.:[]%@/?#\\ -_~!$&'()*+,;=\xe9\n"


@settings(max_examples=300, deadline=None)
@given(host=st.text(alphabet=HOST_ALPHABET, max_size=16))
def test_url_host_header_fuzz_matches_starlette(host: str) -> None:
    for server in (("srv", 80), ("::1", 81), None):
        scope = make_scope(host=host, server=server, path="/p")
        assert str(td.URL(scope=copy.deepcopy(scope))) == str(sd.URL(scope=copy.deepcopy(scope)))


@settings(max_examples=200, deadline=None)
@given(
    port=st.text(alphabet="0123456789", min_size=1, max_size=9),
    host=st.sampled_from(["h", "[::1]", "[v7.x]"]),
)
def test_url_host_header_port_range_matches_starlette(port: str, host: str) -> None:
    scope = make_scope(host=f"{host}:{port}", server=("fallback", 80))
    assert str(td.URL(scope=scope)) == str(sd.URL(scope=copy.deepcopy(scope)))


# ---------------------------------------------------------------------------------------------
# URL from strings and components

URL_STRINGS = [
    "",
    "/",
    "/path?x=1#frag",
    "http://example.com",
    "https://example.com:443/a/b?c=d&c=e#f",
    "wss://user:secret@example.com:8443/ws",
    "ws://user@example.com/",
    "http://user:@example.com/",
    "http://:pw@example.com/",
    "http://[::1]:8000/x",
    "http://[::1]/x",
    "http://EXAMPLE.com:abc/",
    "http://example.com:99999/",
    "//example.com/path",
    "mailto:someone@example.com",
    "http://ex.com/caf%C3%A9?q=%E2%98%83",
]


@pytest.mark.parametrize("url", URL_STRINGS)
def test_url_properties_match_starlette(url: str) -> None:
    assert url_parts(td.URL(url)) == url_parts(sd.URL(url))


REPLACEMENTS: list[dict[str, Any]] = [
    {"scheme": "wss"},
    {"path": "/new"},
    {"query": "a=1"},
    {"fragment": "top"},
    {"netloc": "other:1"},
    {"hostname": "other.org"},
    {"hostname": "::1"},
    {"hostname": "fe80::1:2"},
    {"hostname": "not:ipv6"},
    {"hostname": "[::2]"},
    {"port": 9000},
    {"port": None},
    {"username": "bob"},
    {"username": "bob", "password": "pw"},
    {"password": "pw"},
    {"hostname": "x", "port": 1, "username": "u", "password": "p"},
    {"nonsense": 1},
]


@pytest.mark.parametrize("url", URL_STRINGS)
@pytest.mark.parametrize("kwargs", REPLACEMENTS)
def test_url_replace_matches_starlette(url: str, kwargs: dict[str, Any]) -> None:
    ours = outcome(lambda: url_parts(td.URL(url).replace(**kwargs)))
    theirs = outcome(lambda: url_parts(sd.URL(url).replace(**kwargs)))
    assert ours == theirs


QUERY_URLS = ["http://h/p", "http://h/p?a=1&b=2&a=3", "/p?a=&b&c=%20", "http://h/?x=1#f"]


@pytest.mark.parametrize("url", QUERY_URLS)
def test_url_query_helpers_match_starlette(url: str) -> None:
    for ours_url, theirs_url in [(td.URL(url), sd.URL(url))]:
        pairs: list[tuple[Any, Any]] = [
            (
                ours_url.include_query_params(a="9", z=1, b=" &"),
                theirs_url.include_query_params(a="9", z=1, b=" &"),
            ),
            (ours_url.include_query_params(), theirs_url.include_query_params()),
            (
                ours_url.replace_query_params(q="1", r=2),
                theirs_url.replace_query_params(q="1", r=2),
            ),
            (ours_url.replace_query_params(), theirs_url.replace_query_params()),
            (ours_url.remove_query_params("a"), theirs_url.remove_query_params("a")),
            (
                ours_url.remove_query_params(["a", "b", "zz"]),
                theirs_url.remove_query_params(["a", "b", "zz"]),
            ),
        ]
        for ours, theirs in pairs:
            assert type(ours) is td.URL
            assert str(ours) == str(theirs)


COMPONENTS: list[dict[str, Any]] = [
    {"scheme": "https", "netloc": "example.com", "path": "/a"},
    {"scheme": "ws", "hostname": "::1", "port": 8000, "path": "x"},
    {"path": "/only", "query": "a=1"},
    {"scheme": "http", "hostname": "h", "username": "u", "password": "p"},
    {"path": "//double"},
]


@pytest.mark.parametrize("components", COMPONENTS)
def test_url_from_components_matches_starlette(components: dict[str, Any]) -> None:
    assert url_parts(td.URL(**components)) == url_parts(sd.URL(**components))


def test_url_equality_and_repr() -> None:
    url = td.URL("https://user:pw@example.com/x")
    assert url == "https://user:pw@example.com/x"
    assert url == td.URL("https://user:pw@example.com/x")
    assert url == sd.URL("https://user:pw@example.com/x")
    assert url != "https://example.com/x"
    assert repr(url) == "URL('https://user:********@example.com/x')"
    assert str(url) == "https://user:pw@example.com/x"
    assert td.URL("http://h/").is_secure is False
    assert td.URL("wss://h/").is_secure is True


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "http://h/", "scope": make_scope()},
        {"scope": make_scope(), "path": "/x"},
        {"url": "http://h/", "path": "/x"},
    ],
)
def test_url_rejects_two_sources(kwargs: dict[str, Any]) -> None:
    with pytest.raises(AssertionError, match="Cannot set both"):
        td.URL(**kwargs)


# ---------------------------------------------------------------------------------------------
# URLPath

URL_PATHS = ["/x", "/a b", "//evil.com", "\\\\evil.com", "/a\\b", "", "relative"]
BASES = [
    "http://h",
    "http://h/",
    "https://h:8443/root/",
    "ws://h/root",
    "wss://[::1]/",
    "/no/host/",
    "",
]


@pytest.mark.parametrize("path", URL_PATHS)
@pytest.mark.parametrize("protocol", ["", "http", "websocket"])
@pytest.mark.parametrize("host", ["", "other.example:81"])
@pytest.mark.parametrize("base", BASES)
def test_urlpath_matches_starlette(path: str, protocol: Any, host: str, base: str) -> None:
    ours = td.URLPath(path, protocol=protocol, host=host)
    theirs = sd.URLPath(path, protocol=protocol, host=host)
    assert str(ours) == str(theirs)
    assert (ours.protocol, ours.host) == (theirs.protocol, theirs.host)
    ours_abs = ours.make_absolute_url(base)
    assert type(ours_abs) is td.URL
    assert str(ours_abs) == str(theirs.make_absolute_url(base))
    assert str(ours.make_absolute_url(td.URL(base))) == str(ours_abs)


def test_urlpath_websocket_scheme_follows_base_security() -> None:
    path = td.URLPath("/ws", protocol="websocket")
    assert isinstance(path, str)
    assert path == "/ws"
    assert str(path.make_absolute_url("https://h/")) == "wss://h/ws"
    assert str(path.make_absolute_url("http://h/app/")) == "ws://h/app/ws"
    assert str(td.URLPath("/p", protocol="http").make_absolute_url("wss://h")) == "https://h/p"


def test_urlpath_rejects_unknown_protocol() -> None:
    with pytest.raises(AssertionError):
        td.URLPath("/x", protocol="ftp")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# ImmutableMultiDict and QueryParams

MULTIDICT_INPUTS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((), {}),
    (([("a", "1"), ("b", "2"), ("a", "3")],), {}),
    (({"a": "1", "b": "2"},), {}),
    (([("a", "1")],), {"a": "2", "c": "3"}),
    ((), {"x": "1"}),
    (([],), {}),
    ((sd.ImmutableMultiDict([("k", "v"), ("k", "w")]),), {}),
    (([(1, 2), ("1", "x"), (1, 3)],), {}),
]


def multidict_view(md: Any) -> tuple[Any, ...]:
    return (
        md.multi_items(),
        list(md.keys()),
        list(md.values()),
        list(md.items()),
        list(md),
        len(md),
        md.getlist("a"),
        md.getlist("zzz"),
        "a" in md,
        repr(md).split("(", 1)[1],
    )


@pytest.mark.parametrize(("args", "kwargs"), MULTIDICT_INPUTS)
def test_immutable_multidict_matches_starlette(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    ours = td.ImmutableMultiDict(*args, **kwargs)
    theirs = sd.ImmutableMultiDict(*args, **kwargs)
    assert multidict_view(ours) == multidict_view(theirs)


def test_immutable_multidict_behaviour() -> None:
    md = td.ImmutableMultiDict([("a", "1"), ("a", "2"), ("b", "3")])
    assert md["a"] == "2"
    assert md.getlist("a") == ["1", "2"]
    assert md == td.ImmutableMultiDict([("b", "3"), ("a", "1"), ("a", "2")])
    assert md != td.ImmutableMultiDict([("a", "2"), ("a", "1"), ("b", "3")])
    assert md != {"a": "2", "b": "3"}
    assert not hasattr(md, "__setitem__")
    md.multi_items().append(("c", "4"))
    assert "c" not in md
    with pytest.raises(AssertionError, match="Too many arguments"):
        td.ImmutableMultiDict({}, {})
    with pytest.raises(TypeError):
        hash(md)


QUERY_INPUTS: list[Any] = [
    "",
    "a=1",
    "a=1&b=2&a=3",
    "a=&b&=c&&d=",
    "a=%20x+y&b=%E2%98%83",
    "a=1;b=2",
    b"a=1&b=caf%C3%A9",
    b"k=\xe9",
    [("a", "1"), ("a", "2")],
    [("n", 1), (2, None)],
    {"a": "1", "b": 2},
    td.QueryParams("x=1&x=2"),
    sd.QueryParams("x=1&x=2"),
    "\u2603=\u2603",
]


@pytest.mark.parametrize("value", QUERY_INPUTS)
def test_query_params_match_starlette(value: Any) -> None:
    ours = td.QueryParams(value)
    theirs = sd.QueryParams(value)
    assert multidict_view(ours) == multidict_view(theirs)
    assert str(ours) == str(theirs)
    assert repr(ours) == repr(theirs)
    assert str(td.QueryParams(str(ours))) == str(ours)


def test_query_params_kwargs_and_equality() -> None:
    ours = td.QueryParams("a=1", b="2")
    assert ours.multi_items() == sd.QueryParams("a=1", b="2").multi_items()
    assert td.QueryParams("a=1&b=2") == td.QueryParams([("b", "2"), ("a", "1")])
    assert td.QueryParams() == td.QueryParams("")
    assert td.QueryParams(b"a=1") == td.QueryParams("a=1")
    assert repr(td.QueryParams("a=1&a=2")) == "QueryParams('a=1&a=2')"
    assert td.QueryParams(QUERY_INPUTS[0]) != sd.QueryParams("")  # distinct classes
    with pytest.raises(AssertionError, match="Too many arguments"):
        td.QueryParams("a", "b")


# ---------------------------------------------------------------------------------------------
# Headers and MutableHeaders

RAW_HEADERS: list[list[tuple[bytes, bytes]]] = [
    [],
    [(b"content-type", b"text/plain")],
    [(b"a", b"1"), (b"b", b"2"), (b"a", b"3")],
    [(b"x-latin", b"caf\xe9"), (b"cookie", b"a=1"), (b"cookie", b"b=2")],
]


def headers_view(headers: Any) -> tuple[Any, ...]:
    return (
        headers.raw,
        headers.keys(),
        headers.values(),
        headers.items(),
        list(headers),
        len(headers),
        headers.getlist("A"),
        headers.getlist("Cookie"),
        outcome(lambda: headers["A"]),
        headers.get("X-Latin"),
        "A" in headers,
        "missing" in headers,
        repr(headers).split("(", 1)[1],
    )


@pytest.mark.parametrize("raw", RAW_HEADERS)
def test_headers_match_starlette(raw: list[tuple[bytes, bytes]]) -> None:
    assert headers_view(td.Headers(raw=list(raw))) == headers_view(sd.Headers(raw=list(raw)))
    scope_ours: dict[str, Any] = {"headers": tuple(raw)}
    scope_theirs: dict[str, Any] = {"headers": tuple(raw)}
    assert headers_view(td.Headers(scope=scope_ours)) == headers_view(
        sd.Headers(scope=scope_theirs)
    )
    assert scope_ours == scope_theirs


@pytest.mark.parametrize(
    "mapping", [{}, {"Content-Type": "text/html", "X-A": "caf\xe9"}, {"A": "1", "a": "2"}]
)
def test_headers_from_mapping_match_starlette(mapping: dict[str, str]) -> None:
    assert headers_view(td.Headers(mapping)) == headers_view(sd.Headers(mapping))


def test_headers_are_case_insensitive_and_immutable() -> None:
    headers = td.Headers(
        raw=[(b"content-type", b"text/plain"), (b"set-cookie", b"a"), (b"set-cookie", b"b")]
    )
    assert headers["Content-Type"] == headers["CONTENT-TYPE"] == "text/plain"
    assert "Set-Cookie" in headers
    assert headers.getlist("SET-COOKIE") == ["a", "b"]
    assert headers.keys() == ["content-type", "set-cookie", "set-cookie"]
    assert len(headers) == 3
    assert headers == td.Headers(
        raw=[(b"set-cookie", b"b"), (b"set-cookie", b"a"), (b"content-type", b"text/plain")]
    )
    assert headers != td.Headers(raw=[(b"content-type", b"text/plain")])
    assert headers != dict(headers.items())
    assert td.Headers() == td.Headers(raw=[])
    assert not hasattr(headers, "__setitem__")
    headers.raw.append((b"x", b"y"))
    assert "x" not in headers
    with pytest.raises(KeyError):
        headers["missing"]
    with pytest.raises(TypeError):
        hash(headers)


def test_headers_raw_and_scope_share_the_list() -> None:
    raw = [(b"a", b"1")]
    assert td.Headers(raw=raw)._list is raw
    scope: dict[str, Any] = {"headers": ((b"a", b"1"),)}
    headers = td.Headers(scope=scope)
    assert isinstance(scope["headers"], list)
    assert headers._list is scope["headers"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": {}, "raw": []},
        {"headers": {}, "scope": {"headers": []}},
        {"raw": [], "scope": {"headers": []}},
    ],
)
def test_headers_reject_two_sources(kwargs: dict[str, Any]) -> None:
    with pytest.raises(AssertionError, match="Cannot set both"):
        td.Headers(**kwargs)


def apply_mutations(headers: Any) -> list[Any]:
    """Run the same sequence of edits, recording every observable result."""
    log: list[Any] = []
    headers["X-One"] = "1"
    headers.append("X-Multi", "a")
    headers.append("x-multi", "b")
    headers.append("X-MULTI", "c")
    log.append(headers.raw[:])
    headers["x-multi"] = "z"
    log.append(headers.raw[:])
    log.append(headers.setdefault("X-One", "ignored"))
    log.append(headers.setdefault("X-New", "new"))
    del headers["x-one"]
    del headers["not-there"]
    log.append(headers.raw[:])
    headers.update({"A": "1", "x-new": "newer"})
    log.append(headers.raw[:])
    headers.add_vary_header("Accept")
    headers.add_vary_header("Origin")
    headers.append("vary", "Cookie")
    headers.add_vary_header("User-Agent")
    log.append(headers.raw[:])
    merged = headers | {"B": "2", "a": "one"}
    log.append((type(merged).__name__, merged.raw, headers.raw[:]))
    same = headers
    headers |= {"C": "3"}
    log.append((same is headers, headers.raw[:]))
    log.append(outcome(lambda: headers | [("a", "b")]))
    copied = headers.mutablecopy()
    copied["only-in-copy"] = "1"
    log.append(("only-in-copy" in headers, "only-in-copy" in copied))
    log.append(repr(headers).split("(", 1)[1])
    return log


def test_mutable_headers_match_starlette() -> None:
    ours = td.MutableHeaders(raw=[(b"host", b"h")])
    theirs = sd.MutableHeaders(raw=[(b"host", b"h")])
    assert apply_mutations(ours) == apply_mutations(theirs)


def test_mutable_headers_behaviour() -> None:
    raw = [(b"a", b"1"), (b"b", b"2"), (b"a", b"3")]
    headers = td.MutableHeaders(raw=raw)
    assert headers.raw is raw
    headers["A"] = "x"
    assert raw == [(b"a", b"x"), (b"b", b"2")]
    del headers["B"]
    assert raw == [(b"a", b"x")]
    with pytest.raises(TypeError, match="Expected a mapping but got list"):
        headers |= [("a", "b")]  # type: ignore[arg-type]
    frozen = td.Headers(raw=[(b"k", b"v")])
    copied = frozen.mutablecopy()
    assert type(copied) is td.MutableHeaders
    copied["k"] = "w"
    assert frozen["k"] == "v"


def test_headers_interoperate_with_starlette_mappings() -> None:
    ours = td.MutableHeaders()
    ours.update(sd.Headers({"X-From": "starlette"}))
    assert ours["x-from"] == "starlette"
    assert td.Headers(sd.Headers({"A": "1"})).raw == [(b"a", b"1")]


# ---------------------------------------------------------------------------------------------
# State


def test_state_attribute_and_item_access() -> None:
    backing: dict[str, Any] = {"preset": 1}
    state = td.State(backing)
    state.db = "conn"
    state["other"] = 2
    assert backing == {"preset": 1, "db": "conn", "other": 2}
    assert state.preset == 1
    assert state["db"] == "conn"
    assert list(state) == ["preset", "db", "other"]
    assert len(state) == 3
    del state.db
    del state["other"]
    assert backing == {"preset": 1}
    with pytest.raises(KeyError):
        del state["missing"]
    with pytest.raises(KeyError):
        del state.missing


def test_state_missing_attribute_error_matches_starlette() -> None:
    with pytest.raises(AttributeError) as ours:
        td.State().missing  # noqa: B018
    with pytest.raises(AttributeError) as theirs:
        sd.State().missing  # noqa: B018
    assert str(ours.value) == str(theirs.value) == "'State' object has no attribute 'missing'"

    class MyState(td.State):
        pass

    with pytest.raises(AttributeError, match=r"^'MyState' object has no attribute 'x'$"):
        MyState().x  # noqa: B018
    assert getattr(td.State(), "missing", "default") == "default"
    assert not hasattr(td.State(), "missing")


def test_state_defaults_to_new_dict() -> None:
    first, second = td.State(), td.State()
    first.value = 1
    assert not hasattr(second, "value")
    assert first._state == {"value": 1}


def test_state_survives_copy_and_pickle() -> None:
    state = td.State({"a": 1})
    assert copy.copy(state).a == 1
    assert copy.deepcopy(state).a == 1
    assert pickle.loads(pickle.dumps(state)).a == 1


# ---------------------------------------------------------------------------------------------
# Address


def test_address() -> None:
    address = td.Address("127.0.0.1", 5000)
    assert address == ("127.0.0.1", 5000)
    assert (address.host, address.port) == ("127.0.0.1", 5000)
    assert repr(address) == repr(sd.Address("127.0.0.1", 5000))


# ---------------------------------------------------------------------------------------------
# cookie_parser

COOKIE_STRINGS = [
    "",
    "a=1",
    "a=1; b=2",
    "a=1;b=2;a=3",
    'a=1; b; =c; d="q\\"x"',
    ";;",
    " ; ; ",
    "=",
    "a=",
    "=b",
    "novalue",
    "a=b=c",
    'a="quoted"',
    'a="unterminated',
    'a=unstarted"',
    'a="\\101\\102\\103"',
    'a="\\400\\777\\0\\01"',
    'a="x\\\\y"',
    'a="end\\"',
    '"="',
    'a=""',
    'a="\\',
    'a="\\\n"',
    'a="  spaced  "',
    "  key  =  value  ",
    "caf\xe9=cr\xe8me",
    "\u2603=\u2603; \u2603=snow",
    "a=1,b=2",
    "a=1\tb=2",
    "$Version=1; a=1; $Path=/",
    "a=%20encoded%3B",
    'json={"k": "v"}',
    "__Host-x=1; __Secure-y=2",
]


@pytest.mark.parametrize("cookie", COOKIE_STRINGS)
def test_cookie_parser_matches_starlette(cookie: str) -> None:
    assert td.cookie_parser(cookie) == sr.cookie_parser(cookie)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=' ;="\\01234567ab\n\t\xe9', max_size=30))
def test_cookie_parser_fuzz_matches_starlette(cookie: str) -> None:
    assert td.cookie_parser(cookie) == sr.cookie_parser(cookie)


def test_cookie_parser_examples() -> None:
    assert td.cookie_parser('a=1; b; =c; d="q\\"x"') == {"a": "1", "": "c", "d": 'q"x'}
    assert td.cookie_parser(";;") == {}
    assert td.cookie_parser('a="\\101"') == {"a": "A"}
    assert td.cookie_parser("a=1; a=2") == {"a": "2"}
