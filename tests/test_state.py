"""Tests for the sans-IO state machine in trio_ws._state.

The expected tables below are written out by hand from Starlette 1.10's
``starlette.websockets.WebSocket.receive`` and ``.send``; they deliberately do not read
``CLIENT_TRANSITIONS`` or ``APPLICATION_TRANSITIONS`` back from the module under test.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

import trio_ws
from trio_ws import WebSocketDisconnected
from trio_ws._state import (
    MAX_CLOSE_REASON_BYTES,
    WebSocketState,
    application_transition,
    check_receive_allowed,
    client_transition,
    validate_accept,
    validate_close,
)

S = WebSocketState

MESSAGE_TYPES = (
    "websocket.connect",
    "websocket.receive",
    "websocket.disconnect",
    "websocket.accept",
    "websocket.send",
    "websocket.close",
    "websocket.http.response.start",
    "websocket.http.response.body",
    "http.request",  # not a WebSocket message at all
)

RECEIVE_FINISHED = 'Cannot call "receive" once a disconnect message has been received.'
SEND_FINISHED = 'Cannot call "send" once a close message has been sent.'

# What ``receive`` accepts in each client state, copied from Starlette's ``receive``.
EXPECTED_CLIENT: dict[WebSocketState, dict[str, WebSocketState] | None] = {
    S.CONNECTING: {"websocket.connect": S.CONNECTED},
    S.CONNECTED: {"websocket.receive": S.CONNECTED, "websocket.disconnect": S.DISCONNECTED},
    S.DISCONNECTED: None,  # finished: WebSocketDisconnected whatever the message
    S.RESPONSE: None,  # never a client state; Starlette's ``else`` branch treats it as finished
}
EXPECTED_CLIENT_ERROR: dict[WebSocketState, str] = {
    S.CONNECTING: 'Expected ASGI message "websocket.connect", but got {!r}',
    S.CONNECTED: 'Expected ASGI message "websocket.receive" or "websocket.disconnect", but got {!r}',
}

# What ``send`` accepts in each application state, copied from Starlette's ``send``.
# The RESPONSE -> body entry is for ``more_body=True``; without it the state is DISCONNECTED.
EXPECTED_APPLICATION: dict[WebSocketState, dict[str, WebSocketState] | None] = {
    S.CONNECTING: {
        "websocket.accept": S.CONNECTED,
        "websocket.close": S.DISCONNECTED,
        "websocket.http.response.start": S.RESPONSE,
    },
    S.CONNECTED: {"websocket.send": S.CONNECTED, "websocket.close": S.DISCONNECTED},
    S.RESPONSE: {"websocket.http.response.body": S.RESPONSE},
    S.DISCONNECTED: None,
}
EXPECTED_APPLICATION_ERROR: dict[WebSocketState, str] = {
    S.CONNECTING: 'Expected ASGI message "websocket.accept", "websocket.close" or "websocket.http.response.start", but got {!r}',
    S.CONNECTED: 'Expected ASGI message "websocket.send" or "websocket.close", but got {!r}',
    S.RESPONSE: 'Expected ASGI message "websocket.http.response.body", but got {!r}',
}

ALL_PAIRS = list(itertools.product(S, MESSAGE_TYPES))


def pair_id(state: WebSocketState, message_type: str) -> str:
    return f"{state.name}-{message_type}"


def test_states_match_starlette() -> None:
    websockets = pytest.importorskip("starlette.websockets", reason="Starlette needs 3.11+")
    assert [(s.name, s.value) for s in S] == [(s.name, s.value) for s in websockets.WebSocketState]


def test_expected_tables_cover_every_state() -> None:
    assert set(EXPECTED_CLIENT) == set(S)
    assert set(EXPECTED_APPLICATION) == set(S)


# ---------------------------------------------------------------------------------------------
# client_transition


@pytest.mark.parametrize(("state", "message_type"), ALL_PAIRS, ids=[pair_id(*p) for p in ALL_PAIRS])
def test_client_transition(state: WebSocketState, message_type: str) -> None:
    allowed = EXPECTED_CLIENT[state]
    if allowed is None:
        with pytest.raises(WebSocketDisconnected) as info:
            client_transition(state, message_type)
        assert str(info.value) == RECEIVE_FINISHED
        assert isinstance(info.value, RuntimeError)
    elif message_type in allowed:
        assert client_transition(state, message_type) is allowed[message_type]
    else:
        with pytest.raises(RuntimeError) as info:
            client_transition(state, message_type)
        assert type(info.value) is RuntimeError
        assert str(info.value) == EXPECTED_CLIENT_ERROR[state].format(message_type)


@pytest.mark.parametrize("state", list(S), ids=lambda s: s.name)
def test_check_receive_allowed(state: WebSocketState) -> None:
    if EXPECTED_CLIENT[state] is None:
        with pytest.raises(WebSocketDisconnected, match=r'^Cannot call "receive" once'):
            check_receive_allowed(state)
    else:
        check_receive_allowed(state)


def test_client_transition_walks_a_whole_connection() -> None:
    state = S.CONNECTING
    for message_type in ("websocket.connect", "websocket.receive", "websocket.receive"):
        state = client_transition(state, message_type)
        assert state is S.CONNECTED
    assert client_transition(state, "websocket.disconnect") is S.DISCONNECTED


# ---------------------------------------------------------------------------------------------
# application_transition


@pytest.mark.parametrize("more_body", [False, True], ids=["no_more_body", "more_body"])
@pytest.mark.parametrize(("state", "message_type"), ALL_PAIRS, ids=[pair_id(*p) for p in ALL_PAIRS])
def test_application_transition(state: WebSocketState, message_type: str, more_body: bool) -> None:
    allowed = EXPECTED_APPLICATION[state]
    if allowed is None:
        with pytest.raises(WebSocketDisconnected) as info:
            application_transition(state, {"type": message_type, "more_body": more_body})
        assert str(info.value) == SEND_FINISHED
        assert isinstance(info.value, RuntimeError)
    elif message_type in allowed:
        expected = allowed[message_type]
        if state is S.RESPONSE and not more_body:
            expected = S.DISCONNECTED
        assert (
            application_transition(state, {"type": message_type, "more_body": more_body})
            is expected
        )
    else:
        with pytest.raises(RuntimeError) as info:
            application_transition(state, {"type": message_type, "more_body": more_body})
        assert type(info.value) is RuntimeError
        assert str(info.value) == EXPECTED_APPLICATION_ERROR[state].format(message_type)


def test_application_transition_more_body_defaults_to_false() -> None:
    assert (
        application_transition(S.RESPONSE, {"type": "websocket.http.response.body"})
        is S.DISCONNECTED
    )


def test_more_body_only_matters_for_a_response_body() -> None:
    # A start with more_body (meaningless there) still only leads to RESPONSE.
    assert application_transition(
        S.CONNECTING, {"type": "websocket.http.response.start", "more_body": True}
    ) is (S.RESPONSE)
    assert (
        application_transition(S.CONNECTING, {"type": "websocket.close", "more_body": True})
        is S.DISCONNECTED
    )
    assert (
        application_transition(S.CONNECTED, {"type": "websocket.send", "more_body": True})
        is S.CONNECTED
    )


def test_response_body_chunks_then_end() -> None:
    state = application_transition(S.CONNECTING, {"type": "websocket.http.response.start"})
    for _ in range(3):
        state = application_transition(
            state, {"type": "websocket.http.response.body", "more_body": True}
        )
        assert state is S.RESPONSE
    state = application_transition(
        state, {"type": "websocket.http.response.body", "more_body": False}
    )
    assert state is S.DISCONNECTED
    with pytest.raises(WebSocketDisconnected, match=r'^Cannot call "send" once'):
        application_transition(state, {"type": "websocket.http.response.body", "more_body": True})


def test_transitions_are_pure() -> None:
    # The same call twice gives the same answer: no hidden state in the module.
    for state, message_type in ALL_PAIRS:
        outcomes = []
        for _ in range(2):
            try:
                outcomes.append(
                    application_transition(state, {"type": message_type, "more_body": True})
                )
            except RuntimeError as exc:
                outcomes.append((type(exc), str(exc)))
        assert outcomes[0] == outcomes[1]


# ---------------------------------------------------------------------------------------------
# validate_close


def sendable(code: int) -> bool:
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def test_validate_close_classifies_every_code() -> None:
    wrong_accepts: list[int] = []
    wrong_rejects: list[int] = []
    bad_messages: list[tuple[int, str]] = []
    for code in range(5001):
        try:
            validate_close(code, None)
        except ValueError as exc:
            if sendable(code):
                wrong_rejects.append(code)
            elif not str(exc).startswith(f"close code {code} "):
                bad_messages.append((code, str(exc)))
        else:
            if not sendable(code):
                wrong_accepts.append(code)
    assert wrong_accepts == []
    assert wrong_rejects == []
    assert bad_messages == []


def test_sendable_code_count() -> None:
    # 4 + 8 + 2000: a guard on the hand-written predicate above.
    assert sum(sendable(code) for code in range(5001)) == 2012


@pytest.mark.parametrize("code", [-1, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535, 10**9])
def test_validate_close_rejects(code: int) -> None:
    with pytest.raises(ValueError, match=rf"^close code {code} cannot be sent"):
        validate_close(code, "")


@pytest.mark.parametrize("code", ["1000", 1000.0, None])
def test_validate_close_rejects_non_int(code: object) -> None:
    with pytest.raises(ValueError, match="cannot be sent") as info:
        validate_close(code, None)  # type: ignore[arg-type]
    assert repr(code) in str(info.value)


@pytest.mark.parametrize(
    ("reason", "fits"),
    [
        ("", True),
        (None, True),
        ("a" * 123, True),
        ("a" * 124, False),
        ("é" * 61 + "a", True),  # 123 bytes
        ("é" * 62, False),  # 124 bytes in 62 characters
        ("€" * 41, True),  # 123 bytes
        ("€" * 41 + "a", False),  # 124 bytes in 42 characters
        ("😀" * 30 + "abc", True),  # 123 bytes
        ("😀" * 31, False),  # 124 bytes in 31 characters
        ("a" * 500, False),
    ],
    ids=lambda v: f"{len(v.encode())}B" if isinstance(v, str) else repr(v),
)
def test_validate_close_reason_length(reason: str | None, fits: bool) -> None:
    assert MAX_CLOSE_REASON_BYTES == 123
    if fits:
        validate_close(1000, reason)
        return
    assert reason is not None
    with pytest.raises(ValueError, match="at most 123 fit in a close frame") as info:
        validate_close(1000, reason)
    message = str(info.value)
    assert repr(reason) in message
    assert f"{len(reason.encode('utf-8'))} bytes" in message
    assert "123" in message


def test_validate_close_checks_the_code_first() -> None:
    with pytest.raises(ValueError, match=r"^close code 1006 "):
        validate_close(1006, "x" * 200)


# ---------------------------------------------------------------------------------------------
# validate_accept


@pytest.mark.parametrize(
    ("offered", "subprotocol"),
    [([], None), (["chat"], None), (["chat", "superchat"], "superchat"), (("chat",), "chat")],
)
def test_validate_accept_ok(offered: list[str], subprotocol: str | None) -> None:
    validate_accept(offered, subprotocol, [(b"x-extra", b"1"), (b"set-cookie", b"a=b")])


@pytest.mark.parametrize(
    ("offered", "subprotocol"),
    [([], "chat"), (["chat"], "Chat"), (["chat"], ""), (["chat", "superchat"], "super")],
)
def test_validate_accept_subprotocol_not_offered(offered: list[str], subprotocol: str) -> None:
    with pytest.raises(ValueError, match="was not offered by the client") as info:
        validate_accept(offered, subprotocol, [])
    assert repr(subprotocol) in str(info.value)
    assert repr(offered) in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        b"Sec-WebSocket-Protocol",
        b"sec-websocket-protocol",
        b"SEC-WEBSOCKET-PROTOCOL",
        b"sEC-wEBsOCKET-pROTOCOL",
    ],
)
def test_validate_accept_protocol_header(name: bytes) -> None:
    with pytest.raises(ValueError, match="cannot be set directly") as info:
        validate_accept(["chat"], "chat", [(b"x-extra", b"1"), (name, b"chat")])
    assert repr(name) in str(info.value)


def test_validate_accept_protocol_header_even_without_subprotocol() -> None:
    with pytest.raises(ValueError, match="pass the subprotocol argument"):
        validate_accept([], None, [(b"Sec-WebSocket-Protocol", b"chat")])


# ---------------------------------------------------------------------------------------------
# The pure layers import no I/O library.

PACKAGE = Path(trio_ws.__file__).resolve().parent  # the copy under test (checkout or wheel)
PURE_MODULES = (
    "_state.py",
    "_types.py",
    "_exceptions.py",
    "status.py",
    "_datastructures.py",
    "_urls.py",
    "_query.py",
    "_headers.py",
    "_http.py",
)
FORBIDDEN = ("trio", "hypercorn", "wsproto", "starlette")


def imported_modules(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and getattr(node.func, "id", getattr(node.func, "attr", None))
            in {"__import__", "import_module"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.append(str(node.args[0].value))
    return names


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_module_imports_no_io_library(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"), filename=module)
    imports = imported_modules(tree)
    offending = [name for name in imports if name.split(".")[0] in FORBIDDEN]
    assert offending == [], f"{module} imports {offending}"


def test_import_scan_finds_trio_in_the_io_layer() -> None:
    # Guard against a scanner that finds nothing: _session.py does import trio.
    tree = ast.parse((PACKAGE / "_session.py").read_text(encoding="utf-8"))
    assert "trio" in imported_modules(tree)
