"""A scripted ASGI ``receive`` and a recording ASGI ``send``, for plain-mode parity tests.

Both are deterministic and never block: ``receive`` replays a fixed script (raising
:class:`ScriptExhausted` when it runs out, which a test must treat as a failure), and ``send``
records every message, optionally raising on its Nth call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import trio

Message = dict[str, Any]


class ScriptExhausted(Exception):
    """``receive`` was called more often than the script allows."""


@dataclass(frozen=True)
class Raise:
    """A script step (or send fault) that raises a fresh ``factory()`` instead of returning."""

    factory: Callable[[], BaseException]


class ScriptedReceive:
    """An ASGI ``receive`` that returns (copies of) scripted messages, in order."""

    def __init__(self, script: Iterable[Message | Raise]) -> None:
        self._script: deque[Message | Raise] = deque(script)
        self.calls = 0

    async def __call__(self) -> Message:
        await trio.lowlevel.checkpoint()
        self.calls += 1
        if not self._script:
            raise ScriptExhausted(f"receive call #{self.calls} is past the end of the script")
        step = self._script.popleft()
        if isinstance(step, Raise):
            raise step.factory()
        return dict(step)


class RecordingSend:
    """An ASGI ``send`` that records messages; call number ``fail_on`` (1-based) raises instead.

    A failing call records nothing in :attr:`sent`; :attr:`attempts` counts every call.
    """

    def __init__(self, fail_on: int | None = None, fault: Raise | None = None) -> None:
        self.sent: list[Message] = []
        self.attempts = 0
        self._fail_on = fail_on
        self._fault = fault if fault is not None else Raise(lambda: OSError("connection lost"))

    async def __call__(self, message: Message) -> None:
        await trio.lowlevel.checkpoint()
        self.attempts += 1
        if self.attempts == self._fail_on:
            raise self._fault.factory()
        self.sent.append(dict(message))


def websocket_scope(**overrides: Any) -> dict[str, Any]:
    """A WebSocket scope as Hypercorn's trio worker builds it, with ``overrides`` applied."""
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
        "state": {},
    }
    scope.update(overrides)
    return scope
