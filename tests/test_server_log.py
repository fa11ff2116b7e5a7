"""tests/server_log.py: the check that fails every example test whose server logged a traceback."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_a_logged_traceback_fails_the_test_at_teardown(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("from tests.server_log import server_log as server_log\n")
    pytester.makepyfile(
        """
        import logging


        def test_framework_error(server_log):
            try:
                1 / 0
            except ZeroDivisionError:
                logging.getLogger("hypercorn.error").exception("Error in ASGI Framework")


        def test_quiet_server(server_log):
            logging.getLogger("hypercorn.error").info("Running on http://127.0.0.1:1")
            logging.getLogger("trio_ws").warning("a warning without a traceback")


        def test_subprocess_stderr(server_log):
            server_log.check_text(b"Traceback (most recent call last):\\n  boom", "a subprocess")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*the server logged 1 traceback(s):*",
            "*hypercorn.error ERROR: Error in ASGI Framework*",
            "*ZeroDivisionError*",
            "*a subprocess:*",
        ]
    )
