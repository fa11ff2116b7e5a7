"""The exception the test client raises when the application refuses the handshake."""

from __future__ import annotations

from collections.abc import Iterable

from .._exceptions import WebSocketDisconnect

__all__ = ["WebSocketDenied"]


class WebSocketDenied(WebSocketDisconnect):
    """The application refused the connection instead of accepting it.

    Raised by :func:`open_connection`. It is a :class:`~trio_ws.WebSocketDisconnect`, as Starlette's
    test client raises for a denial, so tests ported from Starlette keep passing.

    Attributes:
        status: The HTTP status of the refusal: 403 for a ``websocket.close`` before accept,
            the application's status for a denial response (``WebSocket.deny``,
            ``send_denial_response``), 500 when the application returned without answering.
        headers: The response headers as ``(name, value)`` byte pairs.
        body: The response body.
        code: The close code the application sent before accept (1000 for a denial response).
        reason: The close reason it sent with it (``""`` for a denial response).
    """

    def __init__(
        self,
        status: int,
        headers: Iterable[tuple[bytes, bytes]] = (),
        body: bytes = b"",
        *,
        code: int = 1000,
        reason: str | None = None,
    ) -> None:
        super().__init__(code, reason)
        self.status: int = status
        self.headers: list[tuple[bytes, bytes]] = list(headers)
        self.body: bytes = body

    def __str__(self) -> str:
        body = f", body {self.body[:60]!r}" if self.body else ""
        return f"the app denied the connection with HTTP {self.status}{body}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, headers={self.headers!r}, "
            f"body={self.body!r}, code={self.code!r}, reason={self.reason!r})"
        )
