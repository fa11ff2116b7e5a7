"""Test-suite configuration."""

from __future__ import annotations

import sys

import pytest

from tests.server_log import server_log as server_log

collect_ignore: list[str] = []
if sys.version_info < (3, 11):
    # These modules compare trio_ws with Starlette 1.10, the parity oracle, which needs
    # Python 3.11+. The code they check is pure Python and the same on every version; on 3.10
    # the rest of the suite (sessions, Hypercorn, examples) still runs.
    collect_ignore += ["test_datastructures.py", "test_http.py", "test_websocket_plain.py"]


@pytest.fixture(autouse=True)
def _example_tests_fail_on_server_tracebacks(request: pytest.FixtureRequest) -> None:
    """Every example test (``test_example*.py``) fails on a traceback in its server's log."""
    if request.path.name.startswith("test_example"):
        request.getfixturevalue("server_log")
