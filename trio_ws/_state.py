"""The WebSocket connection state machine, as data.

Rule 1: everything that decides a state transition, and every error a bad transition raises,
lives in this module. Rule 2: this module knows no I/O and no trio; it maps a state and an
ASGI message type to the next state, and nothing more.

A connection has two independent states, one per direction, both :class:`WebSocketState`:

* ``client_state`` follows what the server tells the application (``receive``)::

      CONNECTING --websocket.connect--> CONNECTED --websocket.disconnect--> DISCONNECTED
                                        CONNECTED --websocket.receive-----> CONNECTED

* ``application_state`` follows what the application tells the server (``send``)::

      CONNECTING --websocket.accept----------------> CONNECTED
      CONNECTING --websocket.close-----------------> DISCONNECTED   (a denial: HTTP 403)
      CONNECTING --websocket.http.response.start---> RESPONSE
      CONNECTED  --websocket.send------------------> CONNECTED
      CONNECTED  --websocket.close-----------------> DISCONNECTED
      RESPONSE   --websocket.http.response.body----> RESPONSE, or DISCONNECTED without more_body

A message type that the current state does not allow raises :class:`RuntimeError` with the
same text as Starlette; any use once a direction is finished raises
:class:`~trio_ws.WebSocketDisconnected`. The transition tables below are the source of truth;
the docs render them, and the tests walk every (state, message type) pair.

The validators at the end check what a session sends before the server sees it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

from ._exceptions import WebSocketDisconnected
from .status import is_sendable_close_code

__all__ = [
    "APPLICATION_TRANSITIONS",
    "CLIENT_TRANSITIONS",
    "MAX_CLOSE_REASON_BYTES",
    "WebSocketState",
    "application_transition",
    "client_transition",
    "validate_accept",
    "validate_close",
]


class WebSocketState(enum.Enum):
    """The state of one direction of a WebSocket connection."""

    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2
    RESPONSE = 3


_S = WebSocketState

#: For each client state: the message types ``receive`` may return, and the state each leads to.
CLIENT_TRANSITIONS: Mapping[WebSocketState, Mapping[str, WebSocketState]] = {
    _S.CONNECTING: {"websocket.connect": _S.CONNECTED},
    _S.CONNECTED: {"websocket.receive": _S.CONNECTED, "websocket.disconnect": _S.DISCONNECTED},
}

#: For each application state: the message types ``send`` accepts, and the state each leads to.
#: ``websocket.http.response.body`` without ``more_body`` ends in DISCONNECTED instead.
APPLICATION_TRANSITIONS: Mapping[WebSocketState, Mapping[str, WebSocketState]] = {
    _S.CONNECTING: {
        "websocket.accept": _S.CONNECTED,
        "websocket.close": _S.DISCONNECTED,
        "websocket.http.response.start": _S.RESPONSE,
    },
    _S.CONNECTED: {"websocket.send": _S.CONNECTED, "websocket.close": _S.DISCONNECTED},
    _S.RESPONSE: {"websocket.http.response.body": _S.RESPONSE},
}

_RECEIVE_FINISHED = 'Cannot call "receive" once a disconnect message has been received.'
_SEND_FINISHED = 'Cannot call "send" once a close message has been sent.'


def _expected(allowed: Iterable[str]) -> str:
    names = [f'"{name}"' for name in allowed]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _messages(table: Mapping[WebSocketState, Mapping[str, WebSocketState]]) -> dict[_S, str]:
    return {
        state: "Expected ASGI message " + _expected(allowed) + ", but got {!r}"
        for state, allowed in table.items()
    }


_CLIENT_ERRORS = _messages(CLIENT_TRANSITIONS)
_APPLICATION_ERRORS = _messages(APPLICATION_TRANSITIONS)


def _lookup(
    allowed: Mapping[str, WebSocketState],
    errors: Mapping[WebSocketState, str],
    state: WebSocketState,
    message_type: str,
) -> WebSocketState:
    try:
        new_state = allowed.get(message_type)
    except TypeError:
        # An unhashable type: Starlette compares single expected types with ``!=`` (so the
        # usual error) and several with a set (so the TypeError); do the same.
        if len(allowed) > 1:
            raise
        new_state = None
    if new_state is None:
        raise RuntimeError(errors[state].format(message_type))
    return new_state


def client_transition(state: WebSocketState, message_type: str) -> WebSocketState:
    """Return the client state after ``receive`` returned a message of ``message_type``.

    Raises:
        WebSocketDisconnected: The client direction is already finished.
        RuntimeError: ``message_type`` is not allowed in ``state``.
    """
    allowed = CLIENT_TRANSITIONS.get(state)
    if allowed is None:
        raise WebSocketDisconnected(_RECEIVE_FINISHED)
    return _lookup(allowed, _CLIENT_ERRORS, state, message_type)


def check_receive_allowed(state: WebSocketState) -> None:
    """Raise :class:`WebSocketDisconnected` unless ``receive`` may be called in ``state``."""
    if state not in CLIENT_TRANSITIONS:
        raise WebSocketDisconnected(_RECEIVE_FINISHED)


def application_transition(state: WebSocketState, message: Mapping[str, Any]) -> WebSocketState:
    """Return the application state after sending ``message``.

    The state is checked before the message is looked at, as Starlette does.

    Args:
        state: The current application state.
        message: The ASGI message being sent; its ``type`` and, for response bodies,
            ``more_body`` decide the transition.

    Raises:
        WebSocketDisconnected: The application direction is already finished.
        RuntimeError: The message's type is not allowed in ``state``.
    """
    allowed = APPLICATION_TRANSITIONS.get(state)
    if allowed is None:
        raise WebSocketDisconnected(_SEND_FINISHED)
    new_state = _lookup(allowed, _APPLICATION_ERRORS, state, message["type"])
    if new_state is _S.RESPONSE and state is _S.RESPONSE and not message.get("more_body", False):
        return _S.DISCONNECTED
    return new_state


#: The longest close reason a close frame can carry (125 bytes of payload minus the code).
MAX_CLOSE_REASON_BYTES = 123


def validate_close(code: int, reason: str | None) -> None:
    """Check that a close frame with ``code`` and ``reason`` may be sent.

    Raises:
        ValueError: ``code`` is reserved or unassigned, or ``reason`` is longer than 123 bytes
            in UTF-8.
    """
    if not isinstance(code, int) or not is_sendable_close_code(code):
        raise ValueError(
            f"close code {code!r} cannot be sent: use 1000-1003, 1007-1014 or 3000-4999 "
            "(1004, 1005, 1006 and 1015 are reserved, 1016-2999 unassigned)"
        )
    if reason and len(reason.encode("utf-8")) > MAX_CLOSE_REASON_BYTES:
        raise ValueError(
            f"close reason {reason!r} is {len(reason.encode('utf-8'))} bytes in UTF-8; "
            f"at most {MAX_CLOSE_REASON_BYTES} fit in a close frame"
        )


def validate_accept(
    offered: Iterable[str],
    subprotocol: str | None,
    headers: Iterable[tuple[bytes, bytes]],
) -> None:
    """Check an accept against the client's handshake before the server sees it.

    Args:
        offered: The subprotocols the client offered (the scope's ``subprotocols``).
        subprotocol: The subprotocol the application chose, or ``None``.
        headers: Extra response headers.

    Raises:
        ValueError: ``subprotocol`` was not offered by the client, or ``headers`` set
            ``Sec-WebSocket-Protocol`` (the subprotocol argument is the only way to choose one).
    """
    offered = list(offered)
    if subprotocol is not None and subprotocol not in offered:
        raise ValueError(
            f"subprotocol {subprotocol!r} was not offered by the client (offered: {offered!r})"
        )
    for name, _value in headers:
        if name.lower() == b"sec-websocket-protocol":
            raise ValueError(
                f"accept header {name!r} cannot be set directly: "
                "pass the subprotocol argument instead"
            )
