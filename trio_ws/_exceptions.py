"""The exceptions trio_ws raises.

Stdlib only. The hierarchy separates who ended the conversation::

    Exception
    +-- WebSocketDisconnect(code, reason)   the peer went away (or the connection broke)
    +-- WebSocketException(code, reason)    raise it to close the session with that code
    RuntimeError
    +-- WebSocketDisconnected               you used the connection after it ended, or
                                            before ``accept``
    KeyError
    +-- WebSocketMessageTypeError           receive_text got binary data, or the reverse

Misuse of the state machine (a message of the wrong type for the current state) raises a
plain :class:`RuntimeError` with Starlette's message, so code that catches ``RuntimeError``
keeps working. Bad argument values (an unsendable close code, a subprotocol the client did
not offer) raise :class:`ValueError` naming the value.
"""

from __future__ import annotations

__all__ = [
    "WebSocketDisconnect",
    "WebSocketDisconnected",
    "WebSocketException",
    "WebSocketMessageTypeError",
]


class WebSocketDisconnect(Exception):
    """The client went away.

    Raised by ``receive_*`` when the client's disconnect arrives and, in a session, by every
    send after it. A session treats it as a normal end of the conversation.

    Attributes:
        code: The close code reported by the server (1006 when the connection dropped).
        reason: The close reason, ``""`` when there was none.
    """

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        self.code: int = code
        self.reason: str = reason or ""


class WebSocketDisconnected(RuntimeError):
    """The connection was used when it cannot be: after it ended, or before ``accept``."""


class WebSocketException(Exception):
    """Raise inside a session to close the connection with ``code`` and ``reason``.

    The session catches it, sends the close frame, and ends normally. Before ``accept`` the
    connection is denied instead (HTTP 403).

    Attributes:
        code: The close code to send.
        reason: The close reason, ``""`` for none.
    """

    def __init__(self, code: int, reason: str | None = None) -> None:
        self.code: int = code
        self.reason: str = reason or ""

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r})"


class WebSocketMessageTypeError(KeyError):
    """``receive_text`` got a binary message, or ``receive_bytes`` a text one.

    A :class:`KeyError` (what Starlette raises there, from looking up the missing key), with a
    message that says what arrived and what to call instead.
    """

    def __init__(self, expected: str, got: str, size: int) -> None:
        self.expected = expected
        self.got = got
        super().__init__(
            f"receive_{expected}() got a {got} message ({size} "
            f"{'characters' if got == 'text' else 'bytes'}); use receive() or "
            f"receive_{'text' if got == 'text' else 'bytes'}() to accept it"
        )

    def __str__(self) -> str:
        return str(self.args[0])
