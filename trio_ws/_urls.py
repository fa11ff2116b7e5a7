"""URLs: the request URL rebuilt from a scope, reversed paths, and the peer's address.

Mirrors Starlette's ``URL``, ``URLPath`` and ``Address``, so code written against
``request.url`` works unchanged. The ``Host`` header is validated (RFC 3986 authority) before
it becomes part of a URL. Pure data handling: standard library only, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from ipaddress import IPv6Address
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._types import Scope

__all__ = ["URL", "Address", "URLPath"]

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
