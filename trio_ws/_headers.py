"""HTTP headers (``Headers``, ``MutableHeaders``) and the ``Cookie`` header's parser.

Mirrors Starlette's classes of the same names: case-insensitive names, repeated headers kept
in order, latin-1 bytes as ASGI carries them. Pure data handling: standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Headers", "MutableHeaders", "cookie_parser"]

_LATIN1 = "latin-1"


# --------------------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------------------


def _header_key(key: str) -> bytes:
    """Turn a header name into the lower-case latin-1 bytes ASGI uses."""
    return key.lower().encode(_LATIN1)


class Headers(Mapping[str, str]):
    """Read-only HTTP headers: case-insensitive names, possibly repeated.

    Item access returns the first value for a name; :meth:`getlist` returns them all.
    ``keys()``, ``values()`` and ``items()`` are lists that include repeated names, and
    ``len()`` counts every header line.
    """

    _list: list[tuple[bytes, bytes]]

    def __init__(
        self,
        headers: Mapping[str, str] | None = None,
        raw: list[tuple[bytes, bytes]] | None = None,
        scope: MutableMapping[str, Any] | None = None,
    ) -> None:
        """Build from one of a ``str`` mapping, raw ASGI pairs or an ASGI scope.

        Args:
            headers: Names and values, encoded as latin-1 (names lower-cased).
            raw: ``(name, value)`` byte pairs; the list is used as is, not copied.
            scope: An ASGI scope; its ``headers`` entry is turned into a list in place and
                shared with this object.

        Raises:
            AssertionError: If more than one source is given.
        """
        if headers is not None:
            if raw is not None:
                raise AssertionError('Cannot set both "headers" and "raw".')
            if scope is not None:
                raise AssertionError('Cannot set both "headers" and "scope".')
            self._list = [
                (_header_key(key), value.encode(_LATIN1)) for key, value in headers.items()
            ]
        elif raw is not None:
            if scope is not None:
                raise AssertionError('Cannot set both "raw" and "scope".')
            self._list = raw
        elif scope is not None:
            # Servers may hand over any iterable; a list lets mutable views write back.
            self._list = scope["headers"] = list(scope["headers"])
        else:
            self._list = []

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """A copy of the ``(name, value)`` byte pairs, in order."""
        return list(self._list)

    def keys(self) -> list[str]:  # type: ignore[override]
        """Return every header name (lower-case), repeats included."""
        return [key.decode(_LATIN1) for key, _ in self._list]

    def values(self) -> list[str]:  # type: ignore[override]
        """Return every header value, in order."""
        return [value.decode(_LATIN1) for _, value in self._list]

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        """Return every ``(name, value)`` pair as strings, in order."""
        return [(key.decode(_LATIN1), value.decode(_LATIN1)) for key, value in self._list]

    def getlist(self, key: str) -> list[str]:
        """Return all values of header ``key`` (any case), in order."""
        wanted = _header_key(key)
        return [value.decode(_LATIN1) for name, value in self._list if name == wanted]

    def mutablecopy(self) -> MutableHeaders:
        """Return an independent :class:`MutableHeaders` with the same entries."""
        return MutableHeaders(raw=self._list[:])

    def __getitem__(self, key: str) -> str:
        wanted = _header_key(key)
        for name, value in self._list:
            if name == wanted:
                return value.decode(_LATIN1)
        raise KeyError(key)

    def __contains__(self, key: Any) -> bool:
        wanted = _header_key(key)
        return any(name == wanted for name, _ in self._list)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._list)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return False
        return sorted(self._list) == sorted(other._list)

    def __repr__(self) -> str:
        as_dict = dict(self.items())
        if len(as_dict) == len(self):
            return f"{self.__class__.__name__}({as_dict!r})"
        return f"{self.__class__.__name__}(raw={self.raw!r})"


class MutableHeaders(Headers):
    """Headers that can be changed in place (for example to build a response)."""

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The live list of ``(name, value)`` byte pairs (not a copy)."""
        return self._list

    def __setitem__(self, key: str, value: str) -> None:
        """Set header ``key`` to ``value``.

        The first existing entry is overwritten in place and any further ones are removed;
        if there was none, the header is appended.
        """
        name = _header_key(key)
        entry = (name, value.encode(_LATIN1))
        positions = [index for index, (item, _) in enumerate(self._list) if item == name]
        if not positions:
            self._list.append(entry)
            return
        for index in reversed(positions[1:]):
            del self._list[index]
        self._list[positions[0]] = entry

    def __delitem__(self, key: str) -> None:
        """Remove every entry of header ``key``; a missing header is not an error."""
        name = _header_key(key)
        self._list[:] = [item for item in self._list if item[0] != name]

    def __ior__(self, other: Mapping[str, str]) -> Self:
        if not isinstance(other, Mapping):
            raise TypeError(f"Expected a mapping but got {other.__class__.__name__}")
        self.update(other)
        return self

    def __or__(self, other: Mapping[str, str]) -> MutableHeaders:
        if not isinstance(other, Mapping):
            raise TypeError(f"Expected a mapping but got {other.__class__.__name__}")
        merged = self.mutablecopy()
        merged.update(other)
        return merged

    def setdefault(self, key: str, value: str) -> str:
        """Append header ``key`` with ``value`` unless present.

        Returns:
            The first existing value of the header, or ``value`` if it was added.
        """
        name = _header_key(key)
        for item, existing in self._list:
            if item == name:
                return existing.decode(_LATIN1)
        self._list.append((name, value.encode(_LATIN1)))
        return value

    def update(self, other: Mapping[str, str]) -> None:
        """Set every header of ``other`` as with ``headers[key] = value``."""
        for key, value in other.items():
            self[key] = value

    def append(self, key: str, value: str) -> None:
        """Add a header entry, keeping any existing entries with the same name."""
        self._list.append((_header_key(key), value.encode(_LATIN1)))

    def add_vary_header(self, vary: str) -> None:
        """Add ``vary`` to the ``Vary`` header, merging all its values into one entry."""
        self["vary"] = ", ".join([*self.getlist("vary"), vary])


# --------------------------------------------------------------------------------------
# Cookies
# --------------------------------------------------------------------------------------

# A backslash escape inside a quoted cookie value: three octal digits (first one 0-3) or
# any single character other than a newline.
_COOKIE_ESCAPE_RE = re.compile(r"\\(?:([0-3][0-7]{2})|(.))")


def _decode_cookie_escape(match: re.Match[str]) -> str:
    """Return the character a backslash escape stands for."""
    octal, literal = match.groups()
    return chr(int(octal, 8)) if octal is not None else cast("str", literal)


def _unquote_cookie_value(value: str) -> str:
    """Undo RFC 2109 quoting: strip surrounding double quotes and resolve escapes.

    Values that are not wrapped in double quotes are returned unchanged. Inside quotes,
    ``\\ooo`` (octal) becomes that character, ``\\x`` becomes ``x``, and a backslash that
    starts neither is kept.
    """
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    return _COOKIE_ESCAPE_RE.sub(_decode_cookie_escape, value[1:-1])


def cookie_parser(cookie_string: str) -> dict[str, str]:
    """Parse a ``Cookie`` request header leniently, the way browsers and servers do.

    Pairs are split on ``;``; a chunk without ``=`` is treated as a value with an empty
    name; names and values are stripped of whitespace; chunks that end up empty are
    skipped; quoted values are unquoted. A later duplicate name overrides an earlier one.
    Nothing is rejected, unlike :class:`http.cookies.SimpleCookie`.

    Args:
        cookie_string: The header value.

    Returns:
        The cookies by name.
    """
    cookies: dict[str, str] = {}
    for chunk in cookie_string.split(";"):
        name, equals, value = chunk.partition("=")
        if not equals:
            name, value = "", chunk
        name = name.strip()
        value = value.strip()
        if name or value:
            cookies[name] = _unquote_cookie_value(value)
    return cookies
