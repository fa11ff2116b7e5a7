"""The ASGI messages the test client and the application exchange, and how to describe them."""

from __future__ import annotations

from .._types import Message

__all__ = ["describe"]


def describe(message: Message) -> str:
    if message["type"] == "websocket.send":
        text = message.get("text")
        if text is not None:
            return f"a text message {text[:60]!r}"
        return f"a binary message {bytes(message['bytes'])[:60]!r}"
    if message["type"] == "websocket.close":
        return f"close {message.get('code', 1000)} {message.get('reason') or ''!r}"
    return repr(message)
