"""The exceptions trio_ws raises.

Stdlib only. The hierarchy separates who ended the conversation::

    Exception
    +-- WebSocketDisconnect(code, reason)   the peer went away (or the connection broke)
    +-- WebSocketException(code, reason)    raise it to close the session with that code
    RuntimeError
    +-- WebSocketDisconnected               you used the connection after it ended, or
                                            before ``accept``
    KeyError, TypeError
    +-- WebSocketMessageTypeError           receive_text got binary data, or the reverse

Misuse of the state machine (a message of the wrong type for the current state) raises a
plain :class:`RuntimeError` with Starlette's message, so code that catches ``RuntimeError``
keeps working. Bad argument values (an unsendable close code, a subprotocol the client did
not offer) raise :class:`ValueError` naming the value.
"""

from __future__ import annotations

from .status import is_sendable_close_code

# A close frame's payload is at most 125 bytes, two of them the code (RFC 6455 section 5.5).
_MAX_REASON_BYTES = 123

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

    The arguments are checked here, where the mistake is, rather than when the session closes:
    a close frame can carry only some codes and at most 123 bytes of reason (RFC 6455 §5.5.1,
    §7.4).

    Args:
        code: The close code to send: 1000-1003, 1007-1014 or 3000-4999.
        reason: The close reason (at most 123 bytes in UTF-8), or ``None``.

    Attributes:
        code: The close code to send.
        reason: The close reason, ``""`` for none.

    Raises:
        TypeError: ``code`` is not an :class:`int` or ``reason`` not a :class:`str`.
        ValueError: ``code`` cannot be sent in a close frame, or ``reason`` is too long.
    """

    def __init__(self, code: int, reason: str | None = None) -> None:
        if not isinstance(code, int) or isinstance(code, bool):
            raise TypeError(f"WebSocketException code must be an int, not {type(code).__name__}")
        if reason is not None and not isinstance(reason, str):
            raise TypeError(
                f"WebSocketException reason must be a str or None, not {type(reason).__name__} "
                f"({reason!r:.60}); to send structured details, encode them, for example "
                "with json.dumps"
            )
        if not is_sendable_close_code(code):
            raise ValueError(
                f"WebSocketException code {code} cannot be sent in a close frame: use "
                "1000-1003, 1007-1014 or 3000-4999 (RFC 6455 section 7.4)"
            )
        if reason and len(reason.encode("utf-8")) > _MAX_REASON_BYTES:
            raise ValueError(
                f"WebSocketException reason is {len(reason.encode('utf-8'))} bytes in UTF-8; "
                f"a close frame holds at most {_MAX_REASON_BYTES} (RFC 6455 section 5.5.1)"
            )
        self.code: int = code
        self.reason: str = reason or ""

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r})"


class WebSocketMessageTypeError(KeyError, TypeError):
    """``receive_text`` got a binary message, or ``receive_bytes`` a text one (also JSON).

    Both a :class:`KeyError` and a :class:`TypeError`: Starlette raises one or the other there
    depending on the server's message shape (``KeyError`` when the other key is missing,
    ``TypeError`` when it is present as ``None``, as Hypercorn sends it), so ``except`` clauses
    written for either keep working. The message says what arrived and what to call instead.
    """

    def __init__(self, expected: str, got: str, size: int, method: str | None = None) -> None:
        self.expected = expected
        self.got = got
        super().__init__(
            f"{method or f'receive_{expected}'}() got a {got} message ({size} "
            f"{'characters' if got == 'text' else 'bytes'}); use receive() or "
            f"receive_{'text' if got == 'text' else 'bytes'}() to accept it"
        )

    def __str__(self) -> str:
        return str(self.args[0])
