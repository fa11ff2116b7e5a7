"""Sphinx configuration for trio_ws.

Build (as the ``docs`` nox session does)::

    TRIO_WS_DOCS_OFFLINE=1 sphinx-build -W --keep-going -n -b html docs docs/_build/html

``TRIO_WS_DOCS_OFFLINE=1`` turns intersphinx off (it fetches inventories over the network) and
tells nitpicky mode to ignore references into other projects' docs, which cannot resolve then.
"""

from __future__ import annotations

import builtins
import importlib.metadata
import importlib.util
import os
import re
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docutils.nodes import Element
    from sphinx.addnodes import pending_xref
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

project = "trio_ws"
author = "trio_ws contributors"
copyright = "trio_ws contributors"
try:
    release = importlib.metadata.version("trio_ws")
except importlib.metadata.PackageNotFoundError:
    release = "0.1.0.dev0"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinxcontrib_trio",
]

exclude_patterns = ["_build"]
default_role = "obj"
nitpicky = True

# Google-style docstrings (Args:/Returns:/Raises:), as trio writes them.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

OFFLINE = os.environ.get("TRIO_WS_DOCS_OFFLINE") == "1"

intersphinx_mapping: dict[str, tuple[str, str | None]] = (
    {}
    if OFFLINE
    else {
        "python": ("https://docs.python.org/3", None),
        "trio": ("https://trio.readthedocs.io/en/stable/", None),
    }
)

# Projects without a Sphinx inventory: never resolvable.
nitpick_ignore_regex = [
    (r"py:.*", r"(starlette|hypercorn|wsproto|trio_websocket|websockets)(\..*)?"),
]
# The type parameter of HTTPConnection (the type of `.state`), a private TypeVar.
nitpick_ignore = [("py:class", "trio_ws._http.StateT"), ("py:obj", "trio_ws._http.StateT")]
# ImmutableMultiDict's private type parameters.
nitpick_ignore += [
    (role, f"trio_ws._query.{name}") for role in ("py:class", "py:obj") for name in ("_K", "_V_co")
]
if OFFLINE:
    _builtin_names = "|".join(re.escape(name) for name in dir(builtins))
    _stdlib_modules = "|".join(
        re.escape(name)
        for name in (*sys.stdlib_module_names, "typing_extensions", "exceptiongroup")
    )
    nitpick_ignore_regex += [
        (r"py:.*", rf"(trio|outcome|{_stdlib_modules})(\..*)?"),
        (r"py:.*", rf"(builtins\.)?({_builtin_names})"),
        (r"py:.*", r"(NoneType|EllipsisType)"),
    ]

html_theme = "furo" if importlib.util.find_spec("furo") else "alabaster"
html_title = f"trio_ws {release}"


# Signatures show the ASGI aliases of trio_ws.types by name, not expanded into
# MutableMapping[str, Any] and friends, and link them to reference.rst's "ASGI types". The
# hook below resolves them: Sphinx looks type annotations up as classes, the aliases are data.
_ASGI_ALIASES = {"ASGIApp", "Message", "Receive", "Scope", "Send"}
autodoc_type_aliases = {name: f"trio_ws.types.{name}" for name in sorted(_ASGI_ALIASES)}
python_use_unqualified_type_names = True


def _link_asgi_alias(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: Element
) -> Element | None:
    target = node.get("reftarget", "")
    target = target.removeprefix("trio_ws.types.").removeprefix("trio_ws._types.")
    if node.get("refdomain") != "py" or target not in _ASGI_ALIASES:
        return None
    py_domain = env.get_domain("py")
    return py_domain.resolve_xref(
        env, node["refdoc"], app.builder, "data", f"trio_ws.types.{target}", node, contnode
    )


def setup(app: Sphinx) -> None:
    app.connect("missing-reference", _link_asgi_alias)
