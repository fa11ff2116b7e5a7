"""Fail a test when its server logged a traceback: the check every example test runs.

Hypercorn logs an application's exception ("Error in ASGI Framework") instead of raising it, and
so do trio_ws.serve's helpers; a test that only looks at what its client saw passes anyway.
:func:`server_log` collects every log record of the test (Hypercorn's ``hypercorn.error`` and
``trio_ws`` loggers propagate to the root logger, where it listens) and, at teardown, fails if
any carries a traceback. For a server run as a subprocess, pass its stderr to
:meth:`ServerLog.check_text`.

``tests/conftest.py`` and ``examples/conftest.py`` turn it on for every example test
(``tests/test_example*.py``, ``examples/test_*.py``); any other test can ask for the
``server_log`` fixture.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

__all__ = ["ServerLog", "server_log"]

TRACEBACK = "Traceback (most recent call last)"


class ServerLog(logging.Handler):
    """Every log record emitted while the test runs, and the server output it was handed."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.records: list[logging.LogRecord] = []
        self.texts: list[tuple[str, str]] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def check_text(self, text: str | bytes, source: str) -> None:
        """Also check ``text`` (a subprocess's stderr, say) at teardown."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        self.texts.append((source, text))

    def tracebacks(self) -> list[str]:
        """The log entries and texts that hold a traceback, formatted in full."""
        found = [
            self.format(record)
            for record in self.records
            if record.exc_info is not None or TRACEBACK in record.getMessage()
        ]
        found += [f"{source}:\n{text}" for source, text in self.texts if TRACEBACK in text]
        return found


@pytest.fixture
def server_log() -> Iterator[ServerLog]:
    """Collect the test's log records; fail at teardown if one holds a traceback."""
    handler = ServerLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
    found = handler.tracebacks()
    if found:
        pytest.fail(
            f"the server logged {len(found)} traceback(s):\n\n" + "\n\n".join(found),
            pytrace=False,
        )
