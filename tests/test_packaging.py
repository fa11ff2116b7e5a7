"""The package as users get it: public names, public types, and (in the ``package`` nox session,
which sets ``TRIO_WS_EXPECT_INSTALLED=1``) the installed wheel's files and metadata."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import os
import sysconfig
from pathlib import Path

import pytest

import trio_ws
import trio_ws._types
import trio_ws.types

ROOT = Path(__file__).resolve().parent.parent
INSTALLED = os.environ.get("TRIO_WS_EXPECT_INSTALLED") == "1"


def test_all_lists_exactly_the_public_names() -> None:
    # isidentifier: pytest's assertion rewriting adds "@py_builtins" to the modules of an
    # installed plugin's distribution (trio_ws ships a pytest11 entry point).
    public = {name for name in vars(trio_ws) if name.isidentifier() and not name.startswith("_")}
    public.discard("testing")  # a subpackage, there once something imported it
    assert "annotations" not in public
    assert sorted(trio_ws.__all__) == sorted(public)


@pytest.mark.parametrize("name", trio_ws.__all__)
def test_public_classes_and_functions_say_trio_ws(name: str) -> None:
    obj = getattr(trio_ws, name)
    if inspect.ismodule(obj):
        assert obj.__name__ == f"trio_ws.{name}"
    else:
        assert obj.__module__ == "trio_ws", f"{name}.__module__ is {obj.__module__!r}"


def test_types_module_exports_the_asgi_aliases() -> None:
    assert trio_ws.types.__all__ == ["ASGIApp", "Message", "Receive", "Scope", "Send"]
    for name in trio_ws.types.__all__:
        assert getattr(trio_ws.types, name) is getattr(trio_ws._types, name)


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.py")), ids=lambda p: p.name)
def test_examples_import_public_modules_only(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    private = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module
        and node.module.startswith("trio_ws")
        and any(part.startswith("_") for part in node.module.split("."))
    ]
    assert private == []


@pytest.mark.parametrize(
    "needed",
    [
        "LICENSE",
        "CHANGELOG.md",
        "README.md",
        "noxfile.py",
        "pyproject.toml",
        "conftest.py",
        "tests/conftest.py",
        "tests/asgi_fakes.py",
        "tests/session_fakes.py",
        "tests/hypercorn_harness.py",
        "tests/cli_app.py",
        "tests/server_log.py",
        "examples/conftest.py",
        "examples/echo.py",
        "docs/index.rst",
        "docs/conf.py",
    ],
)
def test_the_tree_has_what_the_tests_and_docs_need(needed: str) -> None:
    """In the package session this runs in the unpacked sdist: MANIFEST.in must ship these."""
    assert (ROOT / needed).is_file()


needs_install = pytest.mark.skipif(
    not INSTALLED, reason="run by the `package` nox session against the installed wheel"
)


@needs_install
def test_the_installed_wheel_is_under_test() -> None:
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert Path(trio_ws.__file__).resolve().is_relative_to(site_packages), trio_ws.__file__
    assert not (ROOT / "trio_ws").exists(), "the test tree must not hold a second trio_ws"


def installed_distribution() -> importlib.metadata.Distribution | None:
    """The installed distribution that provides the imported trio_ws, if any."""
    imported = Path(trio_ws.__file__).resolve()
    for distribution in importlib.metadata.distributions(name="trio_ws"):
        if Path(distribution.locate_file("trio_ws/__init__.py")).resolve() == imported:
            return distribution
    return None


@needs_install
def test_the_installed_metadata() -> None:
    distribution = installed_distribution()
    assert distribution is not None
    metadata = distribution.metadata
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Version"] == trio_ws.__version__
    files = {str(file) for file in distribution.files or ()}
    assert "trio_ws/py.typed" in files
    assert any(file.endswith(".dist-info/licenses/LICENSE") for file in files), sorted(files)
    assert "trio_ws/types.py" in files
    scripts = [ep for ep in distribution.entry_points if ep.group == "console_scripts"]
    assert [(ep.name, ep.value) for ep in scripts] == [("trio-ws", "trio_ws._cli:main")]
