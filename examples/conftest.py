"""The example tests fail on any traceback in their server's log (see ``tests/server_log.py``)."""

from __future__ import annotations

import pytest

from tests.server_log import server_log as server_log


@pytest.fixture(autouse=True)
def _example_tests_fail_on_server_tracebacks(server_log: object) -> None:
    """Every test in ``examples/`` checks its server's log."""
