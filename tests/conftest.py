"""Test-suite configuration."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.server_log import server_log as server_log

# These modules compare trio_ws with Starlette 1.10, the parity oracle, which needs Python 3.11+.
# The code they check is pure Python and the same on every version; on 3.10 the rest of the
# suite (sessions, Hypercorn, examples) still runs, and these show up as skipped, with why.
STARLETTE_PARITY_MODULES = {"test_datastructures.py", "test_http.py", "test_websocket_plain.py"}
STARLETTE_PARITY_SKIP = "Starlette 1.10, the parity oracle, needs Python 3.11+"


class _SkippedModule(pytest.File):
    """A test module that is not imported at all (it would fail to), reported as skipped."""

    def collect(self) -> list[pytest.Item]:
        pytest.skip(f"{self.path.name}: {STARLETTE_PARITY_SKIP}")


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.File | None:
    if (
        sys.version_info < (3, 11)
        and module_path.name in STARLETTE_PARITY_MODULES
        and module_path.parent == Path(__file__).parent
    ):
        return _SkippedModule.from_parent(parent, path=module_path)
    return None


@pytest.fixture(autouse=True)
def _example_tests_fail_on_server_tracebacks(request: pytest.FixtureRequest) -> None:
    """Every example test (``test_example*.py``) fails on a traceback in its server's log."""
    if request.path.name.startswith("test_example"):
        request.getfixturevalue("server_log")
