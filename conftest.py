"""Root pytest configuration, loaded for tests/ and examples/ alike."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # pyproject's `timeout` belongs to pytest-timeout (a test dependency). Without the plugin,
    # declare the option here so that `--strict-config` accepts the file and pytest still runs.
    if not pluginmanager.has_plugin("timeout"):
        parser.addini("timeout", "pytest-timeout's limit per test (not installed: no limit)")
