"""Tiny ASGI responses, for simple HTTP routes and for denying WebSocket handshakes.

A :class:`Response` is an ASGI application that sends one complete HTTP response. Called with
an HTTP scope it sends ``http.response.start`` and ``http.response.body``; called with a
WebSocket scope (before ``accept``) it sends the same as ``websocket.http.response.start`` and
``websocket.http.response.body``, the ASGI extension through which a server refuses the
handshake with that response. So one object serves both::

    return PlainTextResponse("hello")                                 # from an HTTP route
    await ws.send_denial_response(PlainTextResponse("no", 401))       # from a WebSocket route

``Content-Length`` is always set (except for 1xx, 204 and 304 responses) and ``Content-Type``
follows ``media_type``, with ``charset=utf-8`` added for ``text/*``. A ``HEAD`` request gets the
headers of the full response and an empty body.

This module does no I/O of its own beyond awaiting the ASGI ``send`` it is given, and imports
nothing from trio.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._datastructures import MutableHeaders
from ._types import Receive, Scope, Send

__all__ = ["HTMLResponse", "JSONResponse", "PlainTextResponse", "Response"]


def _has_no_body(status_code: int) -> bool:
    """Statuses that never carry a body, and so no ``Content-Length`` (RFC 9110 8.6)."""
    return status_code < 200 or status_code in (204, 304)


class Response:
    """A complete HTTP response, sent by awaiting it as an ASGI application.

    Args:
        content: The body: ``bytes`` as they are, ``str`` encoded with :attr:`charset`,
            ``None`` for an empty body.
        status_code: The HTTP status code.
        headers: Extra response headers. A ``Content-Length`` or ``Content-Type`` given here
            replaces the computed one.
        media_type: The ``Content-Type`` (the class default when ``None``); ``text/*`` types
            get ``; charset=utf-8``.

    Attributes:
        status_code (int): The HTTP status code.
        body (bytes): The encoded body.
        media_type (str | None): The media type, ``None`` for no ``Content-Type`` header.
        charset (str): The encoding of text bodies (``"utf-8"``).
        raw_headers (list[tuple[bytes, bytes]]): The headers as ASGI byte pairs, shared with
            :attr:`headers`.

    Raises:
        TypeError: ``content`` is not ``bytes``, ``str`` or ``None``.
    """

    media_type: str | None = None
    charset: str = "utf-8"

    def __init__(
        self,
        content: bytes | str | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.body: bytes = self.render(content)
        self.raw_headers: list[tuple[bytes, bytes]] = self._build_headers(headers)
        self._headers: MutableHeaders | None = None

    def render(self, content: Any) -> bytes:
        """Encode ``content`` into the body; subclasses override it (as :class:`JSONResponse`).

        Raises:
            TypeError: ``content`` is not ``bytes``, ``str`` or ``None``.
        """
        if content is None:
            return b""
        if isinstance(content, bytes | bytearray | memoryview):
            return bytes(content)
        if isinstance(content, str):
            return content.encode(self.charset)
        raise TypeError(
            f"{type(self).__name__} content must be bytes, str or None, "
            f"not {type(content).__name__} (use JSONResponse for data)"
        )

    def _build_headers(self, headers: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
        raw = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (headers or {}).items()
        ]
        given = {name for name, _ in raw}
        if b"content-length" not in given and not _has_no_body(self.status_code):
            raw.append((b"content-length", str(len(self.body)).encode("latin-1")))
        content_type = self.media_type
        if content_type is not None and b"content-type" not in given:
            if content_type.startswith("text/") and "charset=" not in content_type.lower():
                content_type = f"{content_type}; charset={self.charset}"
            raw.append((b"content-type", content_type.encode("latin-1")))
        return raw

    @property
    def headers(self) -> MutableHeaders:
        """The response headers; changing them changes what is sent."""
        if self._headers is None:
            self._headers = MutableHeaders(raw=self.raw_headers)
        return self._headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response.

        Args:
            scope: An ``http`` scope, or a ``websocket`` scope whose handshake is still
                pending (the server must offer the ``websocket.http.response`` extension).
            receive: The ASGI ``receive`` callable (unused).
            send: The ASGI ``send`` callable.

        Raises:
            ValueError: The scope is neither ``http`` nor ``websocket``.
        """
        scope_type = scope.get("type")
        if scope_type == "http":
            prefix = ""
            body = b"" if scope.get("method") == "HEAD" else self.body
        elif scope_type == "websocket":
            prefix = "websocket."
            body = self.body
        else:
            raise ValueError(f"a Response needs an 'http' or 'websocket' scope, not {scope_type!r}")
        await send(
            {
                "type": prefix + "http.response.start",
                "status": self.status_code,
                "headers": self.raw_headers,
            }
        )
        await send({"type": prefix + "http.response.body", "body": body})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, body={self.body[:40]!r})"


class PlainTextResponse(Response):
    """A ``text/plain; charset=utf-8`` response."""

    media_type: str | None = "text/plain"


class HTMLResponse(Response):
    """A ``text/html; charset=utf-8`` response."""

    media_type: str | None = "text/html"


class JSONResponse(Response):
    """An ``application/json`` response: compact JSON, UTF-8, non-ASCII kept as is.

    Args:
        content: Any value :func:`json.dumps` accepts (``None`` becomes ``null``).
        status_code: The HTTP status code.
        headers: Extra response headers.
        media_type: Replaces ``application/json``.

    Raises:
        TypeError: ``content`` is not JSON-serialisable.
        ValueError: ``content`` holds NaN or an infinity (not valid JSON).
    """

    media_type: str | None = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, media_type)

    def render(self, content: Any) -> bytes:
        """Encode ``content`` as compact JSON."""
        return json.dumps(
            content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        ).encode("utf-8")
