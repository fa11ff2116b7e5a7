"""Every Python sample in docs/*.rst and README.md runs.

A page's samples run in order in one namespace, as a reader reads them: a later sample may use
what an earlier one defined. Each sample

* is executed (top-level ``await``/``async with`` runs inside ``trio.run``, bounded);
* may use no undefined name, not even inside a function body that the run never calls;
* has each ``test_*`` function it defines called (``async`` ones under trio, with the
  ``autojump_clock``, ``hypercorn_server`` and ``hypercorn_config`` fixtures).

Samples are ``.. code-block:: python`` (or ``py``/``python3``), ``::`` literal blocks (Sphinx
highlights them as Python) and Markdown ```` ```python ```` fences. Longer programs belong in
``examples/`` or ``docs/samples/``, shown with ``.. literalinclude::`` and tested there.

A sample that cannot run says so right above it, visibly in the source, with the reason::

    .. docs-test: skip -- serves forever (examples/serve.py is the tested program)

or, in Markdown, ``<!-- docs-test: skip -- reason -->``. The test reports it as skipped.
A sample that imports Starlette or FastAPI, test dependencies only on Python 3.11+, is skipped
with the reason where they are not installed (Python 3.10).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import inspect
import logging
import re
import symtable
import textwrap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.rst")), ROOT / "README.md"]
SAMPLE_TIME_LIMIT = 30.0
# Under the autojump clock the bound is in the clock's time, which a test may spend freely (an
# app that closes idle clients after 60 s); a hung sample still ends at once, as the clock jumps
# straight to the deadline.
MOCK_CLOCK_TIME_LIMIT = 24 * 3600.0
PYTHON_LANGUAGES = {"python", "python3", "py"}
SKIP_MARKER = re.compile(r"docs-test:\s*skip\s*(?:--\s*(?P<reason>.*?))?\s*(?:-->)?\s*$")

#: Test dependencies that pyproject installs on Python 3.11+ only: a sample (or a command's
#: application) that imports one is skipped where it is missing, with this reason.
NEEDS_PYTHON_311 = {
    "starlette": "Starlette 1.10 needs Python 3.11+",
    "fastapi": "FastAPI needs Python 3.11+",
}


def skip_unless_installed(where: str, modules: Iterable[str]) -> None:
    """Skip, saying why, if one of ``modules`` is a 3.11-only test dependency not installed."""
    for module in sorted(modules):
        if module in NEEDS_PYTHON_311 and importlib.util.find_spec(module) is None:
            pytest.skip(f"{where}: {NEEDS_PYTHON_311[module]} (not installed here)")


def imported_modules(code: str) -> set[str]:
    """The top-level modules that a sample imports."""
    tree = compile(
        code, "<sample>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.partition(".")[0])
    return modules


@dataclass(frozen=True)
class Sample:
    page: str  # "routing.rst", "README.md"
    line: int  # 1-based line of the first line of code
    code: str
    skip: str | None  # the opt-out's reason

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], start: int, parent_indent: int) -> tuple[int, str]:
    """The indented body starting at ``lines[start]``: (first code line, dedented text)."""
    index = start
    while index < len(lines) and not lines[index].strip():
        index += 1
    first = index
    body: list[str] = []
    while index < len(lines) and (
        not lines[index].strip() or _indent(lines[index]) > parent_indent
    ):
        body.append(lines[index])
        index += 1
    return first + 1, textwrap.dedent("\n".join(body)).strip("\n") + "\n"


def _marker_before(lines: list[str], index: int) -> str | None:
    """The opt-out reason if the nearest non-blank line above ``index`` is a skip marker."""
    index -= 1
    while index >= 0 and not lines[index].strip():
        index -= 1
    if index < 0:
        return None
    match = SKIP_MARKER.search(lines[index].strip())
    if match is None or not lines[index].lstrip().startswith(("..", "<!--")):
        return None
    return match.group("reason") or "no reason given"


def rst_samples(path: Path) -> Iterator[Sample]:
    lines = path.read_text(encoding="utf-8").splitlines()
    directive = re.compile(r"^(\s*)\.\. (?:code-block|code|sourcecode)::\s*(\S*)\s*$")
    for index, line in enumerate(lines):
        match = directive.match(line)
        if match is not None:
            if match.group(2) not in PYTHON_LANGUAGES:
                continue
            body_start = index + 1
            while body_start < len(lines) and re.match(r"^\s+:[\w-]+:", lines[body_start]):
                body_start += 1  # directive options (:caption:, :emphasize-lines:...)
            first, code = _block(lines, body_start, _indent(line))
            yield Sample(path.name, first, code, _marker_before(lines, index))
        elif line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
            # A literal block: "text::" or a bare "::" paragraph. Sphinx highlights it as Python.
            if index + 1 < len(lines) and lines[index + 1].strip():
                continue  # not followed by a blank line: not a literal block
            first, code = _block(lines, index + 1, _indent(line))
            if code.strip():
                yield Sample(path.name, first, code, _marker_before(lines, index + 1))


def markdown_samples(path: Path) -> Iterator[Sample]:
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        fence = re.match(r"^(```+|~~~+)\s*(\w*)", lines[index])
        if fence is None:
            index += 1
            continue
        end = index + 1
        while end < len(lines) and not lines[end].startswith(fence.group(1)):
            end += 1
        if fence.group(2) in PYTHON_LANGUAGES:
            code = "\n".join(lines[index + 1 : end]) + "\n"
            yield Sample(path.name, index + 2, code, _marker_before(lines, index))
        index = end + 1


def all_samples() -> list[Sample]:
    samples: list[Sample] = []
    for page in PAGES:
        samples += markdown_samples(page) if page.suffix == ".md" else rst_samples(page)
    return samples


SAMPLES = all_samples()

# ---------------------------------------------------------------------------------------------
# Running a sample


class Page:
    """One page's namespace, filled by its samples in order."""

    def __init__(self, name: str) -> None:
        self.namespace: dict[str, Any] = {"__name__": f"docs_{Path(name).stem}"}
        self.done: set[int] = set()


_pages: dict[str, Page] = {}


def undefined_names(code: str, namespace: dict[str, Any]) -> set[str]:
    """Names that the sample's functions and classes read as globals and nothing defines."""
    missing: set[str] = set()

    def visit(table: symtable.SymbolTable) -> None:
        if table.get_type() != "module":
            for symbol in table.get_symbols():
                name = symbol.get_name()
                if (
                    symbol.is_referenced()
                    and symbol.is_global()
                    and name not in namespace
                    and not hasattr(builtins, name)
                ):
                    missing.add(name)
        for child in table.get_children():
            visit(child)

    visit(symtable.symtable(code, "<sample>", "exec"))
    return missing


def _fixtures(function: Callable[..., Any]) -> tuple[dict[str, Any], trio.abc.Clock | None]:
    from trio_ws.testing import pytest_plugin

    values: dict[str, Any] = {}
    clock: trio.abc.Clock | None = None
    for name in inspect.signature(function).parameters:
        if name == "autojump_clock":
            clock = values[name] = trio.testing.MockClock(autojump_threshold=0)
        elif name in {"hypercorn_config", "hypercorn_server"}:
            config = pytest_plugin.hypercorn_config.__wrapped__()  # type: ignore[attr-defined]
            values["hypercorn_config"] = config
            values["hypercorn_server"] = pytest_plugin.hypercorn_server.__wrapped__(config)  # type: ignore[attr-defined]
            values = {
                key: value
                for key, value in values.items()
                if key in inspect.signature(function).parameters
            }
        else:
            raise AssertionError(f"{function.__name__} asks for an unknown fixture {name!r}")
    return values, clock


def _run_async(make: Callable[[], Any], clock: trio.abc.Clock | None = None) -> None:
    async def bounded() -> None:
        with trio.fail_after(SAMPLE_TIME_LIMIT if clock is None else MOCK_CLOCK_TIME_LIMIT):
            await make()

    trio.run(bounded, clock=clock)


def run_sample(sample: Sample, page: Page) -> None:
    namespace = page.namespace
    before = dict(namespace)
    code = compile(sample.code, sample.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & inspect.CO_COROUTINE:
        _run_async(lambda: eval(code, namespace))
    else:
        exec(code, namespace)
    missing = undefined_names(sample.code, namespace)
    assert not missing, f"{sample.id} uses names nothing defines: {sorted(missing)}"
    for name, value in list(namespace.items()):
        if not name.startswith("test") or before.get(name) is value or not callable(value):
            continue
        arguments, clock = _fixtures(value)
        if inspect.iscoroutinefunction(value):
            _run_async(lambda value=value, arguments=arguments: value(**arguments), clock)
        else:
            value(**arguments)


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """Samples configure logging (deploying.rst does); undo it for the tests that follow."""
    loggers = [
        logging.getLogger(),
        *map(logging.getLogger, list(logging.Logger.manager.loggerDict)),
    ]
    saved = [(lg, lg.level, list(lg.handlers), lg.propagate, lg.disabled) for lg in loggers]
    yield
    for lg, level, handlers, propagate, disabled in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate, lg.disabled = propagate, disabled


@pytest.mark.parametrize("sample", SAMPLES, ids=[sample.id for sample in SAMPLES])
def test_sample_runs(sample: Sample) -> None:
    if sample.skip is not None:
        pytest.skip(f"{sample.id}: {sample.skip}")
    skip_unless_installed(sample.id, imported_modules(sample.code))
    page = _pages.setdefault(sample.page, Page(sample.page))
    # Earlier samples of the page first (when run alone, with -k); their failures are theirs.
    for earlier in SAMPLES:
        if (
            earlier.page == sample.page
            and earlier.line < sample.line
            and earlier.line not in page.done
            and earlier.skip is None
        ):
            page.done.add(earlier.line)
            try:
                run_sample(earlier, page)
            except Exception:
                continue
    page.done.add(sample.line)
    run_sample(sample, page)


def test_samples_are_found() -> None:
    """The extraction itself: every page with code has its samples found."""
    pages = {sample.page for sample in SAMPLES}
    assert {"README.md", "tutorial.rst", "routing.rst", "testing.rst"} <= pages


# ---------------------------------------------------------------------------------------------
# Commands: what a console sample runs must exist.

#: Modules that console samples name as the reader's own file (``echo.py`` of the tutorial).
READERS_MODULES = {"echo", "myapp"}


def console_commands() -> list[tuple[str, str]]:
    commands: list[tuple[str, str]] = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        if page.suffix == ".md":
            blocks = re.findall(r"^```console\n(.*?)^```", text, re.M | re.S)
            lines = [line for block in blocks for line in block.splitlines()]
        else:
            lines = [
                line.strip().removeprefix("$ ")
                for line in text.splitlines()
                if line.strip().startswith("$ ")
            ]
        for line in lines:
            for command in line.split("#")[0].split("&&"):
                if command.strip():
                    commands.append((page.name, command.strip()))
    return commands


def pip_installed(page: str) -> set[str]:
    """What the page's own ``python3 -m pip install`` commands install."""
    names: set[str] = set()
    for where, command in console_commands():
        words = command.split()
        if where == page and words[:4] == ["python3", "-m", "pip", "install"]:
            names |= {word for word in words[4:] if not word.startswith(("-", ".", '"'))}
    return names


@pytest.mark.parametrize(("page", "command"), console_commands())
def test_console_command_names_real_modules(page: str, command: str) -> None:
    words = command.split()
    if words[:2] == ["python3", "-m"] and words[2] not in pip_installed(page):
        module = words[2]
        assert importlib.util.find_spec(module) is not None, f"{page}: no module {module!r}"
    for word in words:
        if re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", word):  # an application, module:app
            module_name, _, attribute = word.partition(":")
            if module_name in READERS_MODULES:
                continue
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as missing:
                skip_unless_installed(f"{page}: {word}", [str(missing.name).partition(".")[0]])
                raise
            assert hasattr(module, attribute), f"{page}: {word}"
