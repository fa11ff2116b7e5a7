"""Value types describing an incoming connection: URLs, headers, query strings and state.

Everything here mirrors the behaviour of the Starlette class of the same name, so code written
against Starlette's ``request.url``, ``websocket.headers`` or ``app.state`` works unchanged.

The module is pure data handling. It performs no I/O, imports nothing from trio, and depends
only on the standard library (plus the ASGI type aliases in :mod:`trio_ws._types`).
"""

from __future__ import annotations

import re
from collections.abc import (
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    Sequence,
    ValuesView,
)
from ipaddress import IPv6Address
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar, cast
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._types import Scope

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

_K = TypeVar("_K")
# Values are only ever read from an immutable multidict, so they may vary covariantly.
_V_co = TypeVar("_V_co", covariant=True)

_DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_LATIN1 = "latin-1"


class Address(NamedTuple):
    """The ``(host, port)`` pair of a connection's peer, as given by the ASGI ``client`` key."""

    host: str
    port: int


# --------------------------------------------------------------------------------------
# Host header parsing
# --------------------------------------------------------------------------------------

# RFC 3986 authority, restricted to what may safely end up in a URL's netloc:
#   reg-name   -> unreserved / "%" / sub-delims (no "/", "?", "#", "@", "\" or spaces)
#   IP-literal -> "[" (IPv6address / IPvFuture) "]"  (IPv6 is re-validated below)
#   port       -> ASCII digits only
# Letters are matched case-insensitively (with Unicode case folding, as Starlette does),
# except the "v" that introduces an IPvFuture literal.
_REG_NAME = r"[a-z0-9\-._~%!$&'()*+,;=]+"
_IPV6_CANDIDATE = r"[a-f0-9]*:[a-f0-9.:]+"
_IP_FUTURE = r"(?-i:v)[a-f0-9]+\.[a-z0-9\-._~!$&'()*+,;=:]+"
_HOST_HEADER_RE = re.compile(
    rf"(?P<host>{_REG_NAME}|\[(?:(?P<ipv6>{_IPV6_CANDIDATE})|{_IP_FUTURE})\])"
    r"(?::(?P<port>[0-9]+))?",
    re.IGNORECASE,
)


def _parse_host_header(value: str | None) -> tuple[str, str | None] | None:
    """Split a ``Host`` header value into host and port.

    Args:
        value: The decoded header value, or ``None`` when the header is absent.

    Returns:
        ``(host, port)`` where IP literals keep their brackets and ``port`` is the digit
        string or ``None``; ``None`` if the header is absent or not a safe authority.
    """
    if value is None:
        return None
    match = _HOST_HEADER_RE.fullmatch(value)
    if match is None:
        return None
    ipv6 = match.group("ipv6")
    if ipv6 is not None:
        try:
            IPv6Address(ipv6)
        except ValueError:
            return None
    return match.group("host"), match.group("port")


def _port_in_range(port: str | None) -> bool:
    """Tell whether a digit-string port (or no port at all) is within 0..65535."""
    if port is None:
        return True
    significant = port.lstrip("0")
    return len(significant) <= 5 and int(significant or "0") <= 65535


def _netloc_from_scope(scope: Scope) -> str | None:
    """Work out the authority of a request: a valid ``Host`` header, else ``server``."""
    host_header: str | None = None
    for name, value in scope["headers"]:
        if name == b"host":
            host_header = value.decode(_LATIN1)
            break

    parsed = _parse_host_header(host_header)
    if parsed is not None and _port_in_range(parsed[1]):
        # The pattern matched the whole header, so it already is "host[:port]".
        return cast("str", host_header)

    server = scope.get("server")
    if server is None:
        return None
    host, port = server
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if port == _DEFAULT_PORTS[scope.get("scheme", "http")]:
        return cast("str", host)
    return f"{host}:{port}"


# --------------------------------------------------------------------------------------
# URL
# --------------------------------------------------------------------------------------


class URL:
    """An immutable URL with convenient access to its parts.

    Build it from a string, from an ASGI scope (``URL(scope=scope)``), or from keyword
    components accepted by :meth:`replace` (``URL(scheme="https", netloc="x", path="/")``).
    It compares equal to any object whose ``str()`` is the same URL.
    """

    def __init__(self, url: str = "", scope: Scope | None = None, **components: Any) -> None:
        """Create the URL.

        Args:
            url: The URL as a string.
            scope: An HTTP or WebSocket ASGI scope to rebuild the request URL from.
            **components: Parts to build the URL from, as for :meth:`replace`.

        Raises:
            AssertionError: If more than one of the three sources is given.
        """
        if scope is not None:
            if url:
                raise AssertionError('Cannot set both "url" and "scope".')
            if components:
                raise AssertionError('Cannot set both "scope" and "**components".')
            url = self._url_from_scope(scope)
        elif components:
            if url:
                raise AssertionError('Cannot set both "url" and "**components".')
            url = URL("").replace(**components).components.geturl()
        self._url = url

    @staticmethod
    def _url_from_scope(scope: Scope) -> str:
        """Rebuild the string form of the URL a client requested."""
        # Characters that would start a query, a fragment or be read as a path separator
        # must stay inside the path.
        path: str = scope["path"]
        path = path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
        query: str = scope.get("query_string", b"").decode()
        netloc = _netloc_from_scope(scope)
        if netloc is None:
            if path.startswith("//"):
                # With no authority in front, "//" would turn the path into one.
                path = "/%2F" + path[2:]
            return f"{path}?{query}" if query else path
        scheme: str = scope.get("scheme", "http")
        return SplitResult(scheme, netloc, path, query, "").geturl()

    @property
    def components(self) -> SplitResult:
        """The URL split by :func:`urllib.parse.urlsplit` (computed once)."""
        try:
            return self._components
        except AttributeError:
            self._components: SplitResult = urlsplit(self._url)
            return self._components

    @property
    def scheme(self) -> str:
        """The scheme, such as ``"https"``, or ``""``."""
        return self.components.scheme

    @property
    def netloc(self) -> str:
        """The authority part of the URL (``user:password@host:port``), or ``""``."""
        return self.components.netloc

    @property
    def path(self) -> str:
        """The path, still percent-encoded."""
        return self.components.path

    @property
    def query(self) -> str:
        """The query string without the ``?``."""
        return self.components.query

    @property
    def fragment(self) -> str:
        """The fragment without the ``#``."""
        return self.components.fragment

    @property
    def username(self) -> str | None:
        """The user name of the netloc, or ``None``."""
        return self.components.username

    @property
    def password(self) -> str | None:
        """The password of the netloc, or ``None``."""
        return self.components.password

    @property
    def hostname(self) -> str | None:
        """The lower-cased host without brackets or port, or ``None``."""
        return self.components.hostname

    @property
    def port(self) -> int | None:
        """The explicit port number, or ``None``.

        Raises:
            ValueError: If the netloc holds a port that is not a valid number.
        """
        return self.components.port

    @property
    def is_secure(self) -> bool:
        """Whether the scheme is ``https`` or ``wss``."""
        return self.scheme in ("https", "wss")

    def replace(self, **kwargs: Any) -> URL:
        """Return a copy with some parts changed.

        Args:
            **kwargs: Any field of :class:`urllib.parse.SplitResult` (``scheme``, ``netloc``,
                ``path``, ``query``, ``fragment``) and/or ``username``, ``password``,
                ``hostname`` and ``port``, which rebuild the netloc. A bare IPv6 hostname
                is bracketed.

        Returns:
            The new URL.
        """
        if {"username", "password", "hostname", "port"} & kwargs.keys():
            hostname: str | None = kwargs.pop("hostname", None)
            port = kwargs.pop("port", self.port)
            username = kwargs.pop("username", self.username)
            password = kwargs.pop("password", self.password)

            if hostname is None:
                # Keep the current host (with brackets, without credentials or port).
                hostname = self.netloc.rpartition("@")[2]
                if hostname and not hostname.endswith("]"):
                    hostname = hostname.rsplit(":", 1)[0]
            elif ":" in hostname and not hostname.startswith("["):
                try:
                    IPv6Address(hostname)
                except ValueError:
                    pass
                else:
                    hostname = f"[{hostname}]"

            netloc = hostname if port is None else f"{hostname}:{port}"
            if username is not None:
                credentials = username if password is None else f"{username}:{password}"
                netloc = f"{credentials}@{netloc}"
            kwargs["netloc"] = netloc

        return self.__class__(self.components._replace(**kwargs).geturl())

    def include_query_params(self, **kwargs: Any) -> URL:
        """Return a copy with the given query parameters set.

        Every existing value of a given key is dropped; other parameters keep their order
        and the new ones are appended. Keys and values are converted with ``str()``.
        """
        new = {str(key): str(value) for key, value in kwargs.items()}
        kept = [
            (key, value)
            for key, value in parse_qsl(self.query, keep_blank_values=True)
            if key not in new
        ]
        return self.replace(query=urlencode(kept + list(new.items())))

    def replace_query_params(self, **kwargs: Any) -> URL:
        """Return a copy whose query string holds exactly the given parameters."""
        return self.replace(query=urlencode([(str(k), str(v)) for k, v in kwargs.items()]))

    def remove_query_params(self, keys: str | Sequence[str]) -> URL:
        """Return a copy without any value of the given query parameter key(s)."""
        removed = {keys} if isinstance(keys, str) else set(keys)
        kept = [
            (key, value)
            for key, value in parse_qsl(self.query, keep_blank_values=True)
            if key not in removed
        ]
        return self.replace(query=urlencode(kept))

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __str__(self) -> str:
        return self._url

    def __repr__(self) -> str:
        shown = self.replace(password="********") if self.password else self
        return f"{self.__class__.__name__}({str(shown)!r})"


class URLPath(str):
    """A path produced by URL reversing, remembering which protocol and host it belongs to.

    Attributes:
        protocol: ``"http"``, ``"websocket"`` or ``""`` (use the base URL's scheme).
        host: The host to use, or ``""`` to use the base URL's.
    """

    protocol: Literal["http", "websocket", ""]
    host: str

    def __new__(
        cls, path: str, protocol: Literal["http", "websocket", ""] = "", host: str = ""
    ) -> Self:
        """Create the path, escaping what would otherwise change how a URL is parsed.

        Raises:
            AssertionError: If ``protocol`` is not one of the three accepted values.
        """
        if protocol not in ("http", "websocket", ""):
            raise AssertionError
        path = path.replace("\\", "%5C")
        if path.startswith("//"):
            # A leading "//" would read as an authority once joined to a base URL.
            path = "/%2F" + path[2:]
        return str.__new__(cls, path)

    def __init__(
        self, path: str, protocol: Literal["http", "websocket", ""] = "", host: str = ""
    ) -> None:
        """Record ``protocol`` and ``host``; the string value was set by ``__new__``."""
        self.protocol = protocol
        self.host = host

    def make_absolute_url(self, base_url: str | URL) -> URL:
        """Join this path onto ``base_url``.

        The scheme follows :attr:`protocol` (``http``/``https`` or ``ws``/``wss``, secure
        when the base URL is), or the base URL's scheme if no protocol is set. The path is
        appended to the base URL's path.

        Args:
            base_url: The application's root URL.

        Returns:
            The absolute URL.
        """
        base = URL(base_url) if isinstance(base_url, str) else base_url
        if self.protocol == "http":
            scheme = "https" if base.is_secure else "http"
        elif self.protocol == "websocket":
            scheme = "wss" if base.is_secure else "ws"
        else:
            scheme = base.scheme
        netloc = self.host or base.netloc
        return URL(scheme=scheme, netloc=netloc, path=base.path.rstrip("/") + str(self))


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
