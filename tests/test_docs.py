"""Every Python sample in docs/*.rst and README.md, and in trio_ws's public docstrings, runs.

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

The API reference (autodoc) renders the docstrings of trio_ws's public modules, of what their
``__all__`` names, and of those classes' public methods and properties: their examples run
too, each docstring as a page of its own (test ids ``docstring:trio_ws.Router:LINE``, the line
in the source file, which tracebacks show), starting from ``DOCSTRING_SETUP`` (``trio``,
``trio_ws`` and ``trio_ws.testing`` imported, as the reference names them). Examples there are
``Example::`` literal blocks and ``.. code-block:: python``, as in the pages; ``>>>`` lines, in
pages or docstrings, run as doctests.
"""

from __future__ import annotations

import ast
import builtins
import doctest
import functools
import importlib
import importlib.util
import inspect
import io
import logging
import pkgutil
import re
import symtable
import textwrap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
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
    page: str  # "routing.rst", "README.md", "docstring:trio_ws.Router"
    line: int  # 1-based line of the first line of code, in `source`
    code: str
    skip: str | None  # the opt-out's reason
    source: Path | None = None  # the file the sample is in (for tracebacks)
    doctest: bool = False  # ``>>>`` examples, run by doctest

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _block(lines: list[str], start: int, parent_indent: int) -> tuple[int, int, str]:
    """The indented body starting at ``lines[start]``: (first code line, end, dedented text)."""
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
    return first + 1, index, textwrap.dedent("\n".join(body)).strip("\n") + "\n"


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
    yield from rst_text_samples(path.read_text(encoding="utf-8").splitlines(), path.name, path)


def rst_text_samples(
    lines: list[str], page: str, source: Path | None, first_line: int = 1
) -> Iterator[Sample]:
    """The samples of reST text whose first line is line ``first_line`` of ``source``.

    A block of ``>>>`` lines (a doctest block, or a literal block holding one) is a doctest.
    """
    directive = re.compile(r"^(\s*)\.\. (?:code-block|code|sourcecode)::\s*(\S*)\s*$")
    covered = 0  # lines before this one are inside a block already collected

    def sample(first: int, code: str, marker_line: int) -> Sample:
        skip = _marker_before(lines, marker_line)
        return Sample(page, first + first_line - 1, code, skip, source, code.startswith(">>>"))

    for index, line in enumerate(lines):
        if index < covered:
            continue
        match = directive.match(line)
        if match is not None:
            if match.group(2) not in PYTHON_LANGUAGES:
                continue
            body_start = index + 1
            while body_start < len(lines) and re.match(r"^\s+:[\w-]+:", lines[body_start]):
                body_start += 1  # directive options (:caption:, :emphasize-lines:...)
            first, covered, code = _block(lines, body_start, _indent(line))
            yield sample(first, code, index)
        elif line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
            # A literal block: "text::" or a bare "::" paragraph. Sphinx highlights it as Python.
            if index + 1 < len(lines) and lines[index + 1].strip():
                continue  # not followed by a blank line: not a literal block
            first, covered, code = _block(lines, index + 1, _indent(line))
            if code.strip():
                yield sample(first, code, index + 1)
        elif line.lstrip().startswith(">>>"):
            # A doctest block: ``>>>`` lines and their output, up to a blank line.
            covered = index
            while covered < len(lines) and lines[covered].strip():
                covered += 1
            code = textwrap.dedent("\n".join(lines[index:covered])) + "\n"
            yield sample(index + 1, code, index)


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
            yield Sample(path.name, index + 2, code, _marker_before(lines, index), path)
        index = end + 1


def all_samples() -> list[Sample]:
    samples: list[Sample] = []
    for page in PAGES:
        samples += markdown_samples(page) if page.suffix == ".md" else rst_samples(page)
    return samples


# ---------------------------------------------------------------------------------------------
# Docstrings: the examples that the API reference (autodoc) renders

#: What every docstring's examples start from: the names the API reference uses. Anything
#: else an example uses, it imports or defines.
DOCSTRING_SETUP = "import trio\nimport trio_ws\nimport trio_ws.testing\n"
_DOCUMENTED_NODES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def public_modules() -> list[ModuleType]:
    """``trio_ws`` and its modules whose dotted names have no part starting with ``_``."""
    import trio_ws

    modules = [trio_ws]
    for info in pkgutil.walk_packages(trio_ws.__path__, "trio_ws."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            modules.append(importlib.import_module(info.name))
    return modules


def _is_ours(obj: object) -> bool:
    return str(getattr(obj, "__module__", None)).partition(".")[0] == "trio_ws"


def documented_objects() -> dict[str, object]:
    """{public dotted name: object}: the public modules, the classes and functions that their
    ``__all__`` names (their public names if they have none), and the public methods and
    properties of those classes, each under the name of the class that defines it if that one
    is public. Each object once, under the first name it is reached by."""
    named: dict[int, str] = {}
    objects: dict[str, object] = {}

    def add(name: str, obj: object) -> None:
        if id(obj) not in named:
            named[id(obj)] = name
            objects[name] = obj

    modules = public_modules()
    for module in modules:
        add(module.__name__, module)
    for module in modules:
        names = getattr(module, "__all__", [name for name in vars(module) if name[0] != "_"])
        for name in names:
            obj = getattr(module, name)
            if not inspect.ismodule(obj) and callable(obj) and _is_ours(obj):
                add(f"{module.__name__}.{name}", obj)
    for name, obj in list(objects.items()):
        for klass in obj.__mro__ if inspect.isclass(obj) else ():
            for member_name, member in vars(klass).items() if _is_ours(klass) else ():
                function = getattr(member, "__func__", getattr(member, "fget", member))
                public = member_name[0] != "_" or member_name == "__call__"
                if public and inspect.isfunction(function):
                    add(f"{named.get(id(klass), name)}.{member_name}", member)
    return objects


@functools.cache
def _docstring_sites(package: Path) -> dict[str, tuple[Path, int, str]]:
    """Every docstring in the package's source, cleaned: (file, its first line, its text)."""
    sites: dict[str, tuple[Path, int, str]] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, _DOCUMENTED_NODES):
                text = ast.get_docstring(node, clean=False)
                if text is not None:
                    sites.setdefault(inspect.cleandoc(text), (path, node.body[0].lineno, text))
    return sites


def docstring_samples() -> list[Sample]:
    """The code examples of every docstring that the API reference can render."""
    import trio_ws

    package = Path(trio_ws.__file__).parent
    samples: list[Sample] = []
    for name, obj in documented_objects().items():
        doc = obj.__doc__
        if not isinstance(doc, str):
            continue
        source, first_line, text = _docstring_sites(package).get(
            inspect.cleandoc(doc), (None, 1, inspect.cleandoc(doc))
        )
        # As inspect.cleandoc, but keeping every line, so that line N is the file's line N.
        lines = text.expandtabs().splitlines()
        margin = min((_indent(line) for line in lines[1:] if line.strip()), default=0)
        lines = [lines[0].lstrip()] + [line[margin:] for line in lines[1:]]
        samples += rst_text_samples(lines, f"docstring:{name}", source, first_line)
    return samples


SAMPLES = all_samples() + docstring_samples()

# ---------------------------------------------------------------------------------------------
# Running a sample


class Page:
    """One page's namespace, filled by its samples in order."""

    def __init__(self, name: str) -> None:
        stem = re.sub(r"\W", "_", name if name.startswith("docstring:") else Path(name).stem)
        self.namespace: dict[str, Any] = {"__name__": f"docs_{stem}"}
        self.done: set[int] = set()
        if name.startswith("docstring:"):
            exec(DOCSTRING_SETUP, self.namespace)


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


def run_doctest(sample: Sample, namespace: dict[str, Any]) -> str:
    """Run a ``>>>`` sample in ``namespace``, which keeps what it defines; its source."""
    filename = str(sample.source or sample.page)
    parser = doctest.DocTestParser()
    test = parser.get_doctest(sample.code, namespace, sample.id, filename, sample.line - 1)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failed, _ = runner.run(test, out=report.write, clear_globs=False)
    namespace.update(test.globs)
    assert not failed, report.getvalue()
    return "".join(example.source for example in test.examples)


def run_sample(sample: Sample, page: Page) -> None:
    namespace = page.namespace
    before = dict(namespace)
    if sample.doctest:
        source = run_doctest(sample, namespace)
    else:
        source = sample.code
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        tree = compile(source, sample.id, "exec", flags=flags | ast.PyCF_ONLY_AST)
        ast.increment_lineno(tree, sample.line - 1)  # tracebacks show the file's lines
        code = compile(tree, str(sample.source or sample.page), "exec", flags=flags)
        if code.co_flags & inspect.CO_COROUTINE:
            _run_async(lambda: eval(code, namespace))
        else:
            exec(code, namespace)
    missing = undefined_names(source, namespace)
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
    assert {
        "docstring:trio_ws.Router",  # a class
        "docstring:trio_ws.websocket_app",  # a function
        "docstring:trio_ws.types",  # a module
        "docstring:trio_ws.testing.open_connection",  # trio_ws.testing
        "docstring:trio_ws.testing.pytest_plugin",  # a public module that no __all__ names
        "docstring:trio_ws.broadcast.forward",  # trio_ws.broadcast, which has no __all__
    } <= pages


DOCSTRING = """Summary.

    Example::

        x = 1

    .. code-block:: python

        y = x + 1

    .. code-block:: text

        not python

    Example:
        >>> x + y
        3
        >>> "a" "b"
        'ab'

    .. docs-test: skip -- the reason

    .. code-block:: python

        skipped()
    """


def test_docstring_extraction() -> None:
    """The kinds of example a docstring holds, numbered by their lines in the file."""
    lines = inspect.cleandoc(DOCSTRING).splitlines()
    samples = list(rst_text_samples(lines, "docstring:x", None, first_line=10))
    assert [(s.line, s.code, s.doctest, s.skip) for s in samples] == [
        (14, "x = 1\n", False, None),
        (18, "y = x + 1\n", False, None),
        (25, '>>> x + y\n3\n>>> "a" "b"\n\'ab\'\n', True, None),
        (34, "skipped()\n", False, "the reason"),
    ]
    page = Page("docstring:x")
    for sample in samples[:3]:
        run_sample(sample, page)
    assert page.namespace["y"] == 2
    wrong = Sample("docstring:x", 1, ">>> 1 + 1\n3\n", None, doctest=True)
    with pytest.raises(AssertionError, match="Expected:"):
        run_sample(wrong, page)


def test_docstring_examples_are_literal_blocks() -> None:
    """Napoleon renders a Google-style ``Example:`` section as plain text, not code: a public
    docstring's example is an ``Example::`` literal block (or ``>>>`` lines), which runs here."""
    for name, obj in documented_objects().items():
        lines = inspect.cleandoc(obj.__doc__ or "").splitlines()
        for index, line in enumerate(lines[:-1]):
            if re.fullmatch(r"\s*Examples?:\s*", line):
                following = [later for later in lines[index + 1 :] if later.strip()]
                assert following[0].lstrip().startswith(">>>"), (
                    f"{name}: write 'Example::' (a literal block), not a Google 'Example:' section"
                )


def test_docstring_walk_covers_the_reference() -> None:
    """Every object that a page's autodoc directive renders has its examples run here."""
    walked = {id(obj) for obj in documented_objects().values()}
    directive = re.compile(r"^\.\. auto(?:class|exception|function|method|module)::\s*([\w.]+)")
    for page in PAGES:
        for line in page.read_text(encoding="utf-8").splitlines():
            match = directive.match(line)
            if match is not None:
                assert id(pkgutil.resolve_name(match.group(1))) in walked, f"{page.name}: {line}"


def test_attribute_comments_hold_no_examples() -> None:
    """autodoc also renders ``#:`` comments (``autodata``, attributes); an example there would
    not run, so there are none."""
    import trio_ws

    for path in sorted(Path(trio_ws.__file__).parent.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            text = line.strip()
            if text.startswith("#:") and (text.endswith("::") or ">>>" in text):
                raise AssertionError(f"{path}:{number}: move the example into a docstring")


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
