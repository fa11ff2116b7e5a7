"""Value types describing an incoming connection: URLs, headers, query strings and state.

Everything here mirrors the behaviour of the Starlette class of the same name, so code written
against Starlette's ``request.url``, ``websocket.headers`` or ``app.state`` works unchanged.

The types live in one module per subject (:mod:`trio_ws._urls`, :mod:`trio_ws._query`,
:mod:`trio_ws._headers`); this module keeps ``State`` and gathers them all, so
``from trio_ws._datastructures import ...`` keeps working.

The modules are pure data handling. They perform no I/O, import nothing from trio, and depend
only on the standard library (plus the ASGI type aliases in :mod:`trio_ws._types`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._headers import (
    Headers as Headers,
    MutableHeaders as MutableHeaders,
    cookie_parser as cookie_parser,
)
from ._query import ImmutableMultiDict as ImmutableMultiDict, QueryParams as QueryParams
from ._urls import URL as URL, Address as Address, URLPath as URLPath

__all__ = [
    "URL",
    "Address",
    "Headers",
    "ImmutableMultiDict",
    "MutableHeaders",
    "QueryParams",
    "State",
    "URLPath",
    "cookie_parser",
]


# --------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------


class State:
    """A namespace for arbitrary values, backed by a plain dict.

    Values can be read and written as attributes (``state.db``) or items
    (``state["db"]``). Reading a missing attribute raises :class:`AttributeError`.
    """

    _state: dict[str, Any]

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        """Wrap ``state`` (shared, not copied), or a new empty dict."""
        object.__setattr__(self, "_state", {} if state is None else state)

    def __setattr__(self, key: Any, value: Any) -> None:
        self._state[key] = value

    def __getattr__(self, key: Any) -> Any:
        # Only reached when normal lookup fails. Guard "_state" itself so that an instance
        # created without __init__ (copy, pickle) fails cleanly instead of recursing.
        if key != "_state":
            try:
                return self._state[key]
            except KeyError:
                pass
        raise AttributeError(f"'{self.__class__.__name__}' object has no attribute '{key}'")

    def __delattr__(self, key: Any) -> None:
        del self._state[key]

    def __getitem__(self, key: str) -> Any:
        return self._state[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def __delitem__(self, key: str) -> None:
        del self._state[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)
