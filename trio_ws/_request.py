"""The incoming HTTP request of an HTTP route: :class:`Request`.

:class:`Request` adds the request method and body to :class:`~trio_ws.HTTPConnection`, the
way Starlette's class of the same name does, so an endpoint written as
``async def endpoint(request) -> Response`` reads the same on both.

The body arrives as ``http.request`` messages from the ASGI ``receive`` callable; an
``http.disconnect`` before the last chunk raises :class:`ClientDisconnect`. Like
:mod:`trio_ws._http`, this module imports nothing from trio: it only awaits the ``receive``
it is given.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from ._http import HTTPConnection, StateT
from ._types import Message, Receive, Scope, Send

__all__ = ["ClientDisconnect", "Request"]


class ClientDisconnect(Exception):
    """The client went away before the whole request body arrived."""


async def _no_receive() -> Message:
    raise RuntimeError("this Request was created without a receive callable")


async def _no_send(message: Message) -> None:
    raise RuntimeError("this Request was created without a send callable")


class Request(HTTPConnection[StateT]):
    """An incoming HTTP request.

    Args:
        scope: An ASGI scope of type ``"http"``.
        receive: The ASGI ``receive`` callable the body is read from.
        send: The ASGI ``send`` callable (kept for ASGI extensions; responses are sent by
            awaiting a :class:`~trio_ws.Response`).

    Raises:
        ValueError: The scope is not an HTTP scope.
    """

    def __init__(
        self, scope: Scope, receive: Receive | None = None, send: Send | None = None
    ) -> None:
        if scope.get("type") != "http":
            raise ValueError(f"Request needs a scope of type 'http', not {scope.get('type')!r}")
        super().__init__(scope)
        self._receive: Receive = _no_receive if receive is None else receive
        self._send: Send = _no_send if send is None else send
        self._stream_consumed = False
        self._body: bytes | None = None
        self._json: Any = None
        self._has_json = False

    @property
    def method(self) -> str:
        """The request method, upper-case (``"GET"``, ``"POST"`` ...)."""
        method: str = self.scope["method"]
        return method

    @property
    def receive(self) -> Receive:
        """The ASGI ``receive`` callable."""
        return self._receive

    # The ASYNC910/911 exemptions in this class: it lives in a pure layer without trio to
    # checkpoint with, and its cached paths do no I/O (as Starlette's Request).
    async def stream(self) -> AsyncIterator[bytes]:  # noqa: ASYNC911
        """Yield the body as it arrives, chunk by chunk (empty chunks are skipped).

        After :meth:`body` has read it, the whole cached body is yielded at once.

        Raises:
            ClientDisconnect: The client left before the end of the body.
            RuntimeError: The body was already consumed by an earlier :meth:`stream`, or the
                server sent an unexpected message.
        """
        if self._body is not None:
            yield self._body  # noqa: ASYNC911
            return  # noqa: ASYNC911
        if self._stream_consumed:
            raise RuntimeError("the request body was already consumed by stream()")
        while not self._stream_consumed:
            message = await self._receive()
            message_type = message["type"]
            if message_type == "http.request":
                if not message.get("more_body", False):
                    self._stream_consumed = True
                chunk: bytes = message.get("body", b"")
                if chunk:
                    yield chunk
            elif message_type == "http.disconnect":
                self._stream_consumed = True
                raise ClientDisconnect("the client disconnected before the request body ended")
            else:
                raise RuntimeError(f"unexpected ASGI message {message_type!r} in a request body")

    async def body(self) -> bytes:
        """Read the whole body (once; later calls return it again).

        Raises:
            ClientDisconnect: The client left before the end of the body.
            RuntimeError: :meth:`stream` already consumed the body.
        """
        if self._body is None:
            chunks = [chunk async for chunk in self.stream()]
            self._body = b"".join(chunks)
        return self._body  # noqa: ASYNC910

    async def json(self) -> Any:
        """Read the body and decode it as JSON (once; later calls return the same object).

        Raises:
            json.JSONDecodeError: The body is not valid JSON.
            ClientDisconnect: The client left before the end of the body.
        """
        if not self._has_json:
            self._json = json.loads(await self.body())
            self._has_json = True
        return self._json  # noqa: ASYNC910
