"""The ASGI messages the test client hands the application, shaped as real servers shape them.

Checked against Hypercorn 0.18 and :func:`trio_ws.serve` by ``tests/test_testing_shapes.py``,
which records what each hands a raw ASGI application for the same client actions:

* ``websocket.connect``: ``{"type"}`` only.
* ``websocket.receive``: both ``bytes`` and ``text``, the unused one ``None``, in that order
  (the ASGI spec allows it, and an application must treat a ``None`` key as absent).
* ``websocket.disconnect`` for a close the client started: ``code`` and ``reason``, the client's
  own (1005 and ``""`` for a close frame without a code), as :func:`trio_ws.serve` reports them.
  Plain Hypercorn reports ``{"code": 1006}`` for every client close (its issue #127).
* ``websocket.disconnect`` when the client drops the connection without a close frame:
  ``{"code": 1006}``, from both servers.
* ``websocket.disconnect`` after the application closed, or after a denial: ``{"code": 1000}``
  without a reason, whatever code the application sent, as both servers report it.
"""

from __future__ import annotations

from .._types import Message

__all__ = ["CONNECT", "describe", "disconnect", "receive_bytes", "receive_text"]

#: What a server hands the application when a client asks to open a WebSocket.
CONNECT: Message = {"type": "websocket.connect"}


def receive_text(text: str) -> Message:
    """A text message from the client."""
    return {"type": "websocket.receive", "bytes": None, "text": text}


def receive_bytes(data: bytes) -> Message:
    """A binary message from the client."""
    return {"type": "websocket.receive", "bytes": data, "text": None}


def disconnect(code: int, reason: str | None = None) -> Message:
    """The connection has ended: with the client's ``reason`` if it closed first, else none."""
    if reason is None:
        return {"type": "websocket.disconnect", "code": code}
    return {"type": "websocket.disconnect", "code": code, "reason": reason}


def describe(message: Message) -> str:
    """A short description of a message the application sent, for assertion errors."""
    if message["type"] == "websocket.send":
        text = message.get("text")
        if text is not None:
            return f"a text message {text[:60]!r}"
        return f"a binary message {bytes(message['bytes'])[:60]!r}"
    if message["type"] == "websocket.close":
        return f"close {message.get('code', 1000)} {message.get('reason') or ''!r}"
    return repr(message)
