"""Origin checks (trio_ws._origins): exact origins, wildcards, "*", callables, missing Origin."""

from __future__ import annotations

import pytest

from trio_ws._origins import OriginPolicy, check_origin


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://example.com", True),
        ("HTTPS://EXAMPLE.COM", True),  # scheme and host compare case-insensitively
        ("https://example.com:443", True),  # the default port is no port
        ("https://example.com:8443", False),
        ("http://example.com", False),  # another scheme is another origin
        ("https://sub.example.com", False),  # exact means exact
        ("https://example.com.evil.net", False),
        ("https://evilexample.com", False),
        ("https://example.com/", False),  # not an origin (a path): never equal
        ("null", False),
        ("", False),
    ],
)
def test_exact_origin(origin: str, expected: bool) -> None:
    assert check_origin(origin, ["https://example.com"]) is expected


def test_exact_origin_with_explicit_default_port_in_the_pattern() -> None:
    assert check_origin("https://example.com", ["https://example.com:443"])
    assert check_origin("http://example.com:80", ["http://example.com"])
    assert check_origin("http://localhost:8000", ["http://LOCALHOST:8000"])
    assert not check_origin("http://localhost:8001", ["http://localhost:8000"])


def test_ipv6_origin() -> None:
    assert check_origin("http://[::1]:8000", ["http://[::1]:8000"])
    assert not check_origin("http://[::1]:8001", ["http://[::1]:8000"])


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("https://a.example.com", True),
        ("https://A.Example.COM", True),
        ("https://a.b.example.com", True),  # any depth
        ("https://a.example.com:443", True),
        ("https://example.com", False),  # subdomains only
        ("http://a.example.com", False),
        ("https://a.example.com:8443", False),
        ("https://aexample.com", False),
        ("https://a.example.com.evil.net", False),
    ],
)
def test_wildcard_origin(origin: str, expected: bool) -> None:
    assert check_origin(origin, ["https://*.example.com"]) is expected


def test_wildcard_with_port() -> None:
    assert check_origin("http://dev.local.test:8080", ["http://*.local.test:8080"])
    assert not check_origin("http://dev.local.test", ["http://*.local.test:8080"])


@pytest.mark.parametrize("origin", ["https://anything.example", "null", "garbage", ""])
def test_star_allows_any_origin(origin: str) -> None:
    assert check_origin(origin, ["*"])
    assert check_origin(origin, ["https://x.example", "*"])


def test_callable_decides_alone_and_gets_the_raw_value() -> None:
    seen: list[str] = []

    def allow(origin: str) -> bool:
        seen.append(origin)
        return origin.endswith(".trusted.test")

    assert check_origin("https://App.trusted.test", allow)
    assert not check_origin("https://evil.test", allow)
    assert seen == ["https://App.trusted.test", "https://evil.test"]


def test_missing_origin_is_allowed_by_default_and_refusable() -> None:
    assert check_origin(None, ["https://example.com"])
    assert check_origin(None, [])
    assert not check_origin(None, ["https://example.com"], allow_missing=False)
    assert not check_origin(None, ["*"], allow_missing=False)
    # The callable is not asked about a missing header: allow_missing decides.
    assert not check_origin(None, lambda origin: True, allow_missing=False)


def test_empty_list_allows_no_browser() -> None:
    assert not check_origin("https://example.com", [])


def test_null_origin_can_be_listed_explicitly() -> None:
    assert check_origin("null", ["null"])
    assert check_origin("NULL", ["null"])
    assert not check_origin("https://example.com", ["null"])


def test_several_origins_in_one_value_match_no_pattern() -> None:
    assert not check_origin("https://example.com https://evil.test", ["https://example.com"])


@pytest.mark.parametrize(
    "pattern",
    [
        "example.com",
        "https://example.com/",
        "https://example.com/path",
        "https://*example.com",
        "https://a.*.example.com",
        "https://example.com:notaport",
        "https://user@example.com",
        "",
    ],
)
def test_malformed_patterns_are_refused_up_front(pattern: str) -> None:
    with pytest.raises(ValueError, match="invalid origin pattern"):
        OriginPolicy([pattern])


def test_a_single_string_is_refused() -> None:
    with pytest.raises(TypeError, match=r"write \['https://example.com'\]"):
        OriginPolicy("https://example.com")


def test_policy_is_reusable() -> None:
    policy = OriginPolicy(["https://example.com", "https://*.example.com"], allow_missing=False)
    assert policy("https://example.com")
    assert policy("https://chat.example.com")
    assert not policy("https://evil.test")
    assert not policy(None)
    assert "allow_missing=False" in repr(policy)
