"""The read-only view of an ASGI connection shared by every connection class.

:class:`HTTPConnection` wraps an HTTP or WebSocket scope and exposes it the way Starlette's
class of the same name does (``url``, ``headers``, ``cookies``, ``state``, ``url_for`` ...),
so the :class:`~trio_ws.WebSocket` built on it is a drop-in replacement.

Like :mod:`trio_ws._datastructures`, this module knows no I/O and imports nothing from trio:
it only reads (and, for ``state`` and ``headers``, normalises) the scope dict.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Generic, cast

from ._datastructures import URL, Address, Headers, QueryParams, State, cookie_parser

if TYPE_CHECKING:
    from typing import Protocol

    from typing_extensions import TypeVar

    from ._datastructures import URLPath
    from ._types import Receive, Scope

    class _URLPathProvider(Protocol):
        """Anything that reverses route names, such as a Starlette app or router."""

        def url_path_for(self, name: str, /, **path_params: Any) -> URLPath: ...

    StateT = TypeVar("StateT", bound=Mapping[str, Any] | State, default=State)
elif sys.version_info >= (3, 13):
    from typing import TypeVar

    StateT = TypeVar("StateT", bound=Mapping[str, Any] | State, default=State)
else:
    from typing import TypeVar

    # TypeVar defaults only exist from Python 3.13; they matter to type checkers alone,
    # which read the branch above, so older interpreters do without (and without
    # typing_extensions, which is not a runtime dependency).
    StateT = TypeVar("StateT", bound=Mapping[str, Any] | State)

__all__ = ["HTTPConnection"]

_CONNECTION_TYPES = ("http", "websocket")


class HTTPConnection(Mapping[str, Any], Generic[StateT]):
    """Common read-only interface of an incoming HTTP request or WebSocket connection.

    The connection is also a mapping over its ASGI scope (``conn["path"]``). Two
    connections are equal only if they are the same object, whatever their scopes hold.

    Derived values (``url``, ``base_url``, ``headers``, ``query_params``, ``cookies``,
    ``state``) are computed on first access and then reused.

    The class is generic in the type of :attr:`state` (``WebSocket[MyState]``); it defaults
    to :class:`~trio_ws.State`.

    Attributes:
        scope: The ASGI scope this connection reads from.
    """

    scope: Scope
    _url: URL
    _base_url: URL
    _headers: Headers
    _query_params: QueryParams
    _cookies: dict[str, str]
    _state: State

    def __init__(self, scope: Scope, receive: Receive | None = None) -> None:
        """Wrap ``scope``.

        Args:
            scope: An ASGI scope of type ``"http"`` or ``"websocket"``.
            receive: Accepted for signature compatibility with subclasses; unused here.

        Raises:
            ValueError: If the scope is of another type (for example ``"lifespan"``).
        """
        if scope.get("type") not in _CONNECTION_TYPES:
            raise ValueError(
                "HTTPConnection needs an ASGI scope of type 'http' or 'websocket', "
                f"got type {scope.get('type')!r}"
            )
        self.scope = scope

    def __getitem__(self, key: str) -> Any:
        return self.scope[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.scope)

    def __len__(self) -> int:
        return len(self.scope)

    # Identity semantics, not Mapping's compare-the-contents ones.
    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return object.__hash__(self)

    @property
    def app(self) -> Any:
        """The ASGI application from the scope's ``app`` key.

        Raises:
            KeyError: If the scope has no ``app``.
        """
        return self.scope["app"]

    @property
    def url(self) -> URL:
        """The full URL the client asked for, rebuilt from the scope."""
        try:
            return self._url
        except AttributeError:
            self._url = URL(scope=self.scope)
            return self._url

    @property
    def base_url(self) -> URL:
        """The URL of the application's root, without query string and ending in ``/``.

        It is based on the scope's ``app_root_path`` (falling back to ``root_path``), so
        inside a mounted sub-application it still points at the top-level application.
        """
        try:
            return self._base_url
        except AttributeError:
            root_scope = dict(self.scope)
            root = root_scope.get("app_root_path", root_scope.get("root_path", ""))
            root_scope["path"] = root if root.endswith("/") else root + "/"
            root_scope["query_string"] = b""
            root_scope["root_path"] = root
            self._base_url = URL(scope=root_scope)
            return self._base_url

    @property
    def headers(self) -> Headers:
        """The request headers (case-insensitive, read-only)."""
        try:
            return self._headers
        except AttributeError:
            self._headers = Headers(scope=self.scope)
            return self._headers

    @property
    def query_params(self) -> QueryParams:
        """The parsed query string."""
        try:
            return self._query_params
        except AttributeError:
            self._query_params = QueryParams(self.scope["query_string"])
            return self._query_params

    @property
    def path_params(self) -> dict[str, Any]:
        """The parameters the router extracted from the path (empty if none)."""
        path_params: dict[str, Any] = self.scope.get("path_params", {})
        return path_params

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies of every ``Cookie`` header, later ones overriding earlier ones."""
        try:
            return self._cookies
        except AttributeError:
            cookies: dict[str, str] = {}
            for header in self.headers.getlist("cookie"):
                cookies.update(cookie_parser(header))
            self._cookies = cookies
            return cookies

    @property
    def client(self) -> Address | None:
        """The peer's ``(host, port)``, or ``None`` if the server did not report it."""
        peer = self.scope.get("client")
        if peer is None:
            return None
        return Address(*peer)

    @property
    def session(self) -> dict[str, Any]:
        """The session dict installed by a session middleware.

        Raises:
            AssertionError: If no session middleware populated the scope.
        """
        if "session" not in self.scope:
            raise AssertionError("SessionMiddleware must be installed to access request.session")
        session: dict[str, Any] = self.scope["session"]
        # Starlette's session object tracks reads; plain dicts from other middleware do not.
        mark_accessed = getattr(session, "mark_accessed", None)
        if mark_accessed is not None:
            mark_accessed()
        return session

    @property
    def auth(self) -> Any:
        """The credentials set by an authentication middleware.

        Raises:
            AssertionError: If no authentication middleware populated the scope.
        """
        if "auth" not in self.scope:
            raise AssertionError(
                "AuthenticationMiddleware must be installed to access request.auth"
            )
        return self.scope["auth"]

    @property
    def user(self) -> Any:
        """The user set by an authentication middleware.

        Raises:
            AssertionError: If no authentication middleware populated the scope.
        """
        if "user" not in self.scope:
            raise AssertionError(
                "AuthenticationMiddleware must be installed to access request.user"
            )
        return self.scope["user"]

    @property
    def state(self) -> StateT:
        """Per-connection state, stored in (and shared through) the scope's ``state`` dict.

        The dict is created in the scope if the server or middleware did not provide one.
        """
        try:
            state = self._state
        except AttributeError:
            state = self._state = State(self.scope.setdefault("state", {}))
        return cast("StateT", state)

    def url_for(self, name: str, /, **path_params: Any) -> URL:
        """Build the absolute URL of a named route.

        The route is reversed by the scope's ``router`` (or, failing that, its ``app``)
        and joined onto :attr:`base_url`.

        Args:
            name: The route name.
            **path_params: Values for the route's path parameters.

        Returns:
            The absolute URL.

        Raises:
            RuntimeError: If the scope holds neither a router nor an app.
        """
        provider: _URLPathProvider | None = self.scope.get("router") or self.scope.get("app")
        if provider is None:
            raise RuntimeError(
                "The `url_for` method can only be used inside a Starlette application or with a router."
            )
        return provider.url_path_for(name, **path_params).make_absolute_url(base_url=self.base_url)
