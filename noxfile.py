"""Every check trio_ws runs, locally and in CI (``.ci/run`` calls plain ``nox``).

Interpreters are looked up as ``python3.X`` on ``PATH``. With pyenv and no ``PYENV_VERSION``
set, the newest installed patch release of each is selected for its shims.

    nox -l                 # list sessions
    nox                    # everything CI runs
    nox -s tests-3.13 -- -k accept -x
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"  # nox.project.dependency_groups
nox.options.default_venv_backend = "virtualenv"
nox.options.error_on_missing_interpreters = True  # a missing Python must never look green
nox.options.reuse_existing_virtualenvs = False  # `nox -r` to reuse them locally
nox.options.sessions = [
    "tests-3.10",
    "tests-3.11",
    "tests-3.12",
    "tests-3.13",
    "lint",
    "typing",
    "docs",
    "examples",
    "package",
    "min-deps",
]


def _pyenv_pythons() -> None:
    """Let pyenv's shims resolve python3.10 ... python3.13 when PYENV_VERSION is not set.

    pyenv's shims answer only for the versions PYENV_VERSION (or `pyenv global`) names; name the
    newest installed patch release of each interpreter nox needs, so plain `nox` works on a
    machine where they are installed but not selected.
    """
    pyenv = shutil.which("pyenv")
    if pyenv is None or os.environ.get("PYENV_VERSION"):
        return
    bare = subprocess.run(
        [pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
    )
    chosen: list[str] = []
    for minor in PYTHONS:
        found = [v for v in bare.stdout.split() if re.fullmatch(rf"{re.escape(minor)}\.\d+", v)]
        if found:
            chosen.append(max(found, key=lambda v: int(v.rsplit(".", 1)[1])))
    if chosen:
        os.environ["PYENV_VERSION"] = ":".join(chosen)


ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
TOOLS_PYTHON = "3.13"  # lint, docs (Sphinx 9 needs >= 3.11), examples
TYPING_PYTHON = "3.10"  # = mypy's python_version: the <3.11 branches need exceptiongroup installed
_pyenv_pythons()


def _group(name: str) -> tuple[str, ...]:
    return nox.project.dependency_groups(PYPROJECT, name)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite on one interpreter."""
    session.install(".", *_group("test"))
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=TOOLS_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, flake8-async's checkpoint rules, the import-layer contracts, extras == groups."""
    _check_extras_match_groups(session)
    session.install(*_group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # ruff does not implement ASYNC910/911 (an async function must checkpoint on every path);
    # the standalone flake8-async takes files, not directories.
    package_files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "trio_ws").rglob("*.py"))
    session.run("flake8-async", "--enable=ASYNC910,ASYNC911", *package_files)
    # lint-imports analyses ./trio_ws from the working directory; no install needed.
    session.run("lint-imports", "--no-cache")


@nox.session(python=TYPING_PYTHON)
def typing(session: nox.Session) -> None:
    """mypy --strict, and pyright's completeness score of the public API."""
    session.install(".", *_group("typing"))
    session.run("mypy")
    # Runs offline: the PyPI pyright wheel bundles pyright and uses the machine's node.
    # Checks the installed copy of trio_ws, as users see it (py.typed included).
    session.run("pyright", "--verifytypes", "trio_ws", "--ignoreexternal", *session.posargs)


@nox.session(python=TOOLS_PYTHON)
def docs(session: nox.Session) -> None:
    """Sphinx HTML, warnings as errors, nitpicky. Offline unless TRIO_WS_DOCS_OFFLINE=0."""
    session.install(".", *_group("docs"))
    out = ROOT / "docs" / "_build"
    shutil.rmtree(out, ignore_errors=True)
    session.run(
        "sphinx-build",
        *("-W", "--keep-going", "-n", "-b", "html"),
        "docs",
        str(out / "html"),
        env={"TRIO_WS_DOCS_OFFLINE": os.environ.get("TRIO_WS_DOCS_OFFLINE", "1")},
    )


@nox.session(python=TOOLS_PYTHON)
def examples(session: nox.Session) -> None:
    """The example apps, served by real Hypercorn and driven by a real client."""
    session.install(".", *_group("test"))
    example_tests = sorted(
        str(p.relative_to(ROOT))
        for p in [
            *(ROOT / "tests").glob("test_example*.py"),
            *(ROOT / "examples").glob("test_*.py"),
        ]
    )
    session.run("python", "-m", "pytest", "-q", *example_tests, *session.posargs)


@nox.session(python=TOOLS_PYTHON)
def package(session: nox.Session) -> None:
    """Build the sdist and wheel, check them, and test the wheel installed in a clean venv.

    The tests run in the unpacked sdist (so it must carry tests, fakes, examples and docs),
    with its ``trio_ws/`` removed, against the wheel installed in a fresh venv;
    ``TRIO_WS_EXPECT_INSTALLED=1`` makes tests/test_packaging.py check that this is so.
    """
    session.install(*_group("package"))
    tmp = Path(session.create_tmp()).resolve()
    dist = tmp / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    # The wheel is built from the sdist (build's default), which proves the sdist builds.
    session.run("python", "-m", "build", "--outdir", str(dist), str(ROOT))
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    session.run("twine", "check", "--strict", str(sdist), str(wheel))

    tree = tmp / "sdist"
    shutil.rmtree(tree, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(tree, filter="data")
        else:  # pragma: no cover - Python < 3.10.12
            archive.extractall(tree)
    (top,) = tree.iterdir()
    # Only the installed wheel may be imported, and only its metadata found.
    shutil.rmtree(top / "trio_ws")
    shutil.rmtree(top / "trio_ws.egg-info", ignore_errors=True)

    venv = tmp / "wheel-venv"
    session.run("python", "-m", "venv", "--clear", str(venv))
    python = str(venv / "bin" / "python")
    session.run(python, "-m", "pip", "install", "-q", str(wheel), *_group("test"), external=True)
    with session.chdir(top):
        session.run(
            python,
            *("-m", "pytest", "-p", "no:cacheprovider", *session.posargs),
            env={"TRIO_WS_EXPECT_INSTALLED": "1"},
            external=True,
        )


MIN_DEPS_PYTHON = "3.10"  # the oldest Python, with the oldest dependencies it may get
# Test dependencies left out of min-deps, and the tests that need them: coredis (trio_ws[redis])
# runs on trio through anyio, whose trio support needs a much newer trio than trio_ws's floor
# (and coredis needs exceptiongroup>=1.3 on 3.10), so the Redis backend is tested by `tests`.
MIN_DEPS_WITHOUT = {"coredis"}
MIN_DEPS_SKIPPED_TESTS = [
    "--ignore=tests/test_broadcast_redis.py",
    "--deselect=tests/test_example_chat.py::test_chat_across_two_hypercorn_workers_on_redis",
]


@nox.session(name="min-deps", python=MIN_DEPS_PYTHON)
def min_deps(session: nox.Session) -> None:
    """The test suite with the lowest versions of trio_ws's dependencies that pyproject allows.

    Every ``>=`` lower bound in ``[project] dependencies`` becomes an ``==`` constraint
    (trio, Hypercorn 0.17.0, wsproto, exceptiongroup); the test tools resolve as usual.
    """
    from packaging.requirements import Requirement
    from packaging.version import Version

    environment = {"python_version": MIN_DEPS_PYTHON, "python_full_version": MIN_DEPS_PYTHON}
    pins: dict[str, str] = {}
    for text in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        lowest = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if not lowest:
            session.error(f"pyproject.toml: {text!r} has no lower bound to test")
        pins[requirement.name] = lowest[0]
    constraints = Path(session.create_tmp()) / "min-deps-constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in pins.items()), encoding="utf-8")
    test_group = [r for r in _group("test") if Requirement(r).name not in MIN_DEPS_WITHOUT]
    session.install("-c", str(constraints), ".", *test_group)
    # pip fails rather than break a constraint; check anyway, and show what is tested.
    show = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    output = session.run("python", "-c", show, *pins, silent=True)
    installed = json.loads(str(output).strip().splitlines()[-1])
    session.log(f"min-deps: {installed}")
    wrong = {n: v for n, v in installed.items() if Version(v) != Version(pins[n])}
    if wrong:
        session.error(f"not the lowest versions: {wrong} (expected {pins})")
    session.run("python", "-m", "pytest", *MIN_DEPS_SKIPPED_TESTS, *session.posargs)


def _check_extras_match_groups(session: nox.Session) -> None:
    from packaging.requirements import Requirement  # nox depends on packaging

    def normalized(requirements: Iterable[str]) -> set[str]:
        return {str(Requirement(requirement)) for requirement in requirements}

    extras = PYPROJECT["project"]["optional-dependencies"]
    for name, requirements in extras.items():
        if normalized(requirements) != normalized(_group(name)):
            session.error(
                f"pyproject.toml: extra {name!r} and dependency group {name!r} differ; "
                "keep them identical"
            )
