"""Multi-valued mappings: ``ImmutableMultiDict`` and the query string's ``QueryParams``.

Mirrors Starlette's classes of the same names. Pure data handling: standard library only.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from operator import itemgetter
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, urlencode

__all__ = ["ImmutableMultiDict", "QueryParams"]

_LATIN1 = "latin-1"

_K = TypeVar("_K")
# Values are only ever read from an immutable multidict, so they may vary covariantly.
_V_co = TypeVar("_V_co", covariant=True)


# --------------------------------------------------------------------------------------
# Multi-valued mappings
# --------------------------------------------------------------------------------------


class ImmutableMultiDict(Mapping[_K, _V_co]):
    """A read-only mapping in which a key may carry several values.

    Item access returns the last value given for a key; :meth:`getlist` and
    :meth:`multi_items` expose all of them in their original order.
    """

    _dict: dict[_K, _V_co]
    _list: list[tuple[_K, _V_co]]

    def __init__(
        self,
        *args: ImmutableMultiDict[_K, _V_co] | Mapping[_K, _V_co] | Iterable[tuple[_K, _V_co]],
        **kwargs: Any,
    ) -> None:
        """Build from at most one multidict, mapping or iterable of pairs, plus keywords.

        Raises:
            AssertionError: If more than one positional argument is given.
        """
        if len(args) > 1:
            raise AssertionError("Too many arguments.")
        source: Any = args[0] if args else []
        if kwargs:
            source = (
                ImmutableMultiDict(source).multi_items() + ImmutableMultiDict(kwargs).multi_items()
            )

        pairs: list[tuple[Any, Any]]
        if not source:
            pairs = []
        elif hasattr(source, "multi_items"):
            pairs = list(source.multi_items())
        elif hasattr(source, "items"):
            pairs = list(source.items())
        else:
            pairs = list(source)

        self._dict = dict(pairs)
        self._list = pairs

    def getlist(self, key: Any) -> list[_V_co]:
        """Return every value stored under ``key``, oldest first (empty if none)."""
        return [value for item_key, value in self._list if item_key == key]

    def keys(self) -> KeysView[_K]:
        """Return the distinct keys."""
        return self._dict.keys()

    def values(self) -> ValuesView[_V_co]:
        """Return the last value of each distinct key."""
        return self._dict.values()

    def items(self) -> ItemsView[_K, _V_co]:
        """Return ``(key, last value)`` for each distinct key."""
        return self._dict.items()

    def multi_items(self) -> list[tuple[_K, _V_co]]:
        """Return a new list of every ``(key, value)`` pair, duplicates included."""
        return list(self._list)

    def __getitem__(self, key: _K) -> _V_co:
        return self._dict[key]

    def __contains__(self, key: object) -> bool:
        return key in self._dict

    def __iter__(self) -> Iterator[_K]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, self.__class__):
            return False
        by_key = itemgetter(0)
        return sorted(self._list, key=by_key) == sorted(other._list, key=by_key)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.multi_items()!r})"


class QueryParams(ImmutableMultiDict[str, str]):
    """The parameters of a query string, as an immutable multidict of strings.

    ``str()`` gives back an encoded query string.
    """

    def __init__(
        self,
        *args: ImmutableMultiDict[Any, Any]
        | Mapping[Any, Any]
        | list[tuple[Any, Any]]
        | str
        | bytes,
        **kwargs: Any,
    ) -> None:
        """Parse a query string (``str`` or latin-1 ``bytes``) or collect pairs.

        Blank values are kept. Non-string keys and values are converted with ``str()``.

        Raises:
            AssertionError: If more than one positional argument is given.
        """
        if len(args) > 1:
            raise AssertionError("Too many arguments.")
        source = args[0] if args else None
        if isinstance(source, bytes):
            source = source.decode(_LATIN1)
        if isinstance(source, str):
            super().__init__(parse_qsl(source, keep_blank_values=True), **kwargs)
        else:
            super().__init__(*cast("tuple[Any, ...]", args), **kwargs)
        self._list = [(str(key), str(value)) for key, value in self._list]
        self._dict = {str(key): str(value) for key, value in self._dict.items()}

    def __str__(self) -> str:
        return urlencode(self._list)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({str(self)!r})"
