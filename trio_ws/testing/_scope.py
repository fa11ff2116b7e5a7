"""The ASGI scopes the test client hands to an application, built as Hypercorn builds them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from .._types import Scope

__all__ = ["DENIAL_EXTENSION", "HeaderPairs", "encode", "lifespan_scope", "websocket_scope"]

#: The ASGI extension that lets an application answer the handshake with an HTTP response.
DENIAL_EXTENSION = "websocket.http.response"
HeaderPairs = Iterable[tuple[str | bytes, str | bytes]]


def encode(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


def websocket_scope(
    url: str,
    *,
    subprotocols: Iterable[str] = (),
    headers: HeaderPairs = (),
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    root_path: str = "",
    extensions: Iterable[str] = (DENIAL_EXTENSION,),
    state: Mapping[str, Any] | None = None,
) -> Scope:
    """Build the ASGI scope of a WebSocket handshake for ``url``, as Hypercorn would."""
    parts = urlsplit(url)
    scheme = "wss" if parts.scheme in ("wss", "https") else "ws"
    default_port = 443 if scheme == "wss" else 80
    host = parts.hostname or "testserver"
    port = parts.port or default_port
    authority = parts.netloc or host
    raw_path = (parts.path or "/").encode("latin-1")
    offered = list(subprotocols)
    extra = [(encode(name).lower(), encode(value)) for name, value in headers]
    scope_headers: list[tuple[bytes, bytes]] = []
    if not any(name == b"host" for name, _ in extra):
        scope_headers.append((b"host", authority.encode("latin-1")))
    scope_headers += [
        (b"connection", b"upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"sec-websocket-version", b"13"),
    ]
    if offered:
        scope_headers.append((b"sec-websocket-protocol", ", ".join(offered).encode("latin-1")))
    scope_headers += extra
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": scheme,
        "server": (host, port),
        "client": client,
        "root_path": root_path,
        "path": unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "query_string": parts.query.encode("latin-1"),
        "headers": scope_headers,
        "subprotocols": offered,
        "extensions": {name: {} for name in extensions},
        "state": dict(state or {}),
    }


def lifespan_scope(state: dict[str, Any]) -> Scope:
    """Build an ASGI lifespan scope sharing ``state``."""
    return {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}
