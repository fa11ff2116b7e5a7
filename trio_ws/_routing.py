"""Routing: :class:`Router`, :class:`Route`, :class:`WebSocketRoute`, :class:`Mount`.

A :class:`Router` is an ASGI application that hands each connection to the first route whose
path (and, for HTTP, method) matches, answers the lifespan protocol, and reverses route names
into URLs (:meth:`Router.url_path_for`, which ``request.url_for`` and ``ws.url_for`` use).

Paths hold parameters in braces, converted before they reach the endpoint as
``scope["path_params"]``:

=================  =====================================  ============================
pattern            matches                                value
=================  =====================================  ============================
``{name}``         one non-empty segment (no ``/``)       ``str``
``{name:str}``     the same
``{name:int}``     ASCII digits                           ``int`` (never negative)
``{name:float}``   digits with an optional fraction       ``float`` (never negative)
``{name:uuid}``    a UUID, hyphens optional               :class:`uuid.UUID`
``{name:path}``    the rest of the path, ``/`` included   ``str`` (may be empty)
=================  =====================================  ============================

A value that does not fit its convertor does not match, so the request falls through to the
next route and finally to 404. Paths match exactly: ``/chat`` and ``/chat/`` are different
paths, and no redirect is made between them.

:class:`WebSocketRoute` runs its endpoint in a :class:`~trio_ws.WebSocket` session, checks the
handshake's ``Origin`` first when given ``allowed_origins`` (see :mod:`trio_ws._origins`), and
passes its remaining keyword options to the session (``max_message_size`` and so on).

The routes follow Starlette's ``starlette.routing`` in behaviour (matching, ``root_path`` and
``app_root_path`` under :class:`Mount`, ``name:child`` reversal, lifespan), so endpoints written
for Starlette keep working. Unlike Starlette there are no trailing-slash redirects, no
middleware lists and no ``Host`` routes.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import inspect
import math
import re
import sys
import traceback
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._checks import check_callable, check_str, check_strings
from ._datastructures import Headers, URLPath
from ._json import JSON_CODEC_SCOPE_KEY, JSONCodec
from ._origins import AllowedOrigins, OriginPolicy
from ._request import Request
from ._responses import PlainTextResponse
from ._types import ASGIApp, Message, Receive, Scope, Send
from ._websocket import WebSocket
from ._worker import NEEDS_TRIO, in_trio

__all__ = [
    "BaseRoute",
    "Match",
    "Mount",
    "NoMatchFound",
    "Route",
    "Router",
    "WebSocketRoute",
]


class NoMatchFound(Exception):
    """No route has this name and takes exactly these path parameters.

    Raised by ``url_path_for`` and by ``url_for``.

    Attributes:
        name: The route name asked for.
        path_params: The parameters given.
    """

    def __init__(self, name: str, path_params: Mapping[str, Any]) -> None:
        self.name = name
        self.path_params: dict[str, Any] = dict(path_params)
        given = ", ".join(sorted(path_params)) or "no parameters"
        # Not super(): in the class that is Starlette's NoMatchFound too (below), that is
        # Starlette's __init__, which takes other arguments.
        Exception.__init__(
            self, f"no route named {name!r} takes exactly the path parameters: {given}"
        )


# Starlette's Mount and Router reverse names through the routes of a mounted application and
# skip those that raise *Starlette's* NoMatchFound, so a trio_ws Router mounted in a Starlette
# app must raise an exception of both classes. The class is made only once Starlette is loaded
# (whoever calls us from Starlette has loaded it), so trio_ws never imports Starlette itself.
_WITH_STARLETTE: dict[type[Exception], type[NoMatchFound]] = {}


def _no_match(name: str, path_params: Mapping[str, Any]) -> NoMatchFound:
    starlette_class = getattr(sys.modules.get("starlette.routing"), "NoMatchFound", None)
    if not (isinstance(starlette_class, type) and issubclass(starlette_class, Exception)):
        return NoMatchFound(name, path_params)
    both = _WITH_STARLETTE.get(starlette_class)
    if both is None:
        both = type("NoMatchFound", (NoMatchFound, starlette_class), {"__module__": "trio_ws"})
        _WITH_STARLETTE[starlette_class] = both
    return both(name, path_params)


class Match(enum.Enum):
    """How well a route matches a scope."""

    #: Not at all.
    NONE = 0
    #: The path matches but the method does not (leads to 405 if nothing matches fully).
    PARTIAL = 1
    #: Fully.
    FULL = 2


# ------------------------------------------------------------------------- paths and convertors


@dataclass(frozen=True)
class _Convertor:
    regex: str
    convert: Callable[[str], Any]
    to_string: Callable[[Any], str]


def _segment_to_string(value: Any) -> str:
    text = str(value)
    if not text or "/" in text:
        raise ValueError(f"a path segment must be non-empty and hold no '/', not {text!r}")
    return text


def _int_to_string(value: Any) -> str:
    number = int(value)
    if number < 0:
        raise ValueError(f"an int path parameter cannot be negative, not {number}")
    return str(number)


def _float_to_string(value: Any) -> str:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"a float path parameter must be finite and not negative, not {number}")
    return f"{number:.20f}".rstrip("0").rstrip(".")


def _uuid_to_string(value: Any) -> str:
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))


_HEX = "[0-9a-fA-F]"
_CONVERTORS: dict[str, _Convertor] = {
    "str": _Convertor("[^/]+", str, _segment_to_string),
    "path": _Convertor(".*", str, str),
    "int": _Convertor("[0-9]+", int, _int_to_string),
    "float": _Convertor(r"[0-9]+(?:\.[0-9]+)?", float, _float_to_string),
    "uuid": _Convertor(
        f"{_HEX}{{8}}-?{_HEX}{{4}}-?{_HEX}{{4}}-?{_HEX}{{4}}-?{_HEX}{{12}}",
        uuid.UUID,
        _uuid_to_string,
    ),
}
_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-zA-Z_][a-zA-Z0-9_]*))?}")


@dataclass(frozen=True)
class _CompiledPath:
    """A route path: its regex, its parameters' convertors, and its literal pieces."""

    regex: re.Pattern[str]
    convertors: dict[str, _Convertor]
    # Literal text and parameter names alternating, starting and ending with literal text.
    pieces: tuple[str, ...]

    def match(self, path: str) -> dict[str, Any] | None:
        """Return the converted parameters if ``path`` matches in full, else ``None``."""
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        try:
            return {
                key: self.convertors[key].convert(value) for key, value in found.groupdict().items()
            }
        except ValueError:  # a value the regex let through but the type refuses
            return None

    def reverse(self, params: Mapping[str, Any]) -> str:
        """Build the path from exactly this path's parameters (a ``KeyError`` if one lacks)."""
        out = []
        for index, piece in enumerate(self.pieces):
            out.append(self.convertors[piece].to_string(params[piece]) if index % 2 else piece)
        return "".join(out)


def _compile_path(path: str) -> _CompiledPath:
    regex, pieces, convertors = [], [], {}
    position = 0
    for param in _PARAM.finditer(path):
        name, kind = param.group(1), param.group(2) or "str"
        convertor = _CONVERTORS.get(kind)
        if convertor is None:
            known = ", ".join(sorted(_CONVERTORS))
            raise ValueError(f"unknown path convertor {kind!r} in {path!r} (known: {known})")
        if name in convertors:
            raise ValueError(f"path parameter {name!r} appears twice in {path!r}")
        literal = path[position : param.start()]
        regex.append(re.escape(literal) + f"(?P<{name}>{convertor.regex})")
        pieces += [literal, name]
        convertors[name] = convertor
        position = param.end()
    regex.append(re.escape(path[position:]))
    pieces.append(path[position:])
    return _CompiledPath(re.compile("".join(regex)), convertors, tuple(pieces))


def _route_path(scope: Scope) -> str:
    """The part of the scope's path below its ``root_path`` (what routes match against)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if not root_path or not path.startswith(root_path):
        return path
    if path == root_path:
        return ""
    if path[len(root_path)] == "/":
        return path[len(root_path) :]
    return path


def _child_scope(
    scope: Scope, scope_type: str, path: _CompiledPath, endpoint: object
) -> dict[str, Any] | None:
    """The scope changes for an endpoint route whose path matches, or None."""
    if scope["type"] != scope_type:
        return None
    params = path.match(_route_path(scope))
    if params is None:
        return None
    return {"endpoint": endpoint, "path_params": {**scope.get("path_params", {}), **params}}


def _is_plain_function(endpoint: object) -> bool:
    """Functions and methods are endpoints; anything else callable is an ASGI application."""
    while isinstance(endpoint, functools.partial):
        endpoint = endpoint.func
    return inspect.isfunction(endpoint) or inspect.ismethod(endpoint)


def _endpoint_name(endpoint: object) -> str:
    return getattr(endpoint, "__name__", type(endpoint).__name__)


async def _deny(scope: Scope, send: Send, status_code: int, text: str) -> None:
    """Refuse a WebSocket handshake with an HTTP response, or with a close (HTTP 403)."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await PlainTextResponse(text, status_code)(scope, _unused_receive, send)
    else:
        await send({"type": "websocket.close", "code": 1000, "reason": ""})


async def _unused_receive() -> Message:  # pragma: no cover - responses never receive
    raise RuntimeError("a response does not receive")


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await _deny(scope, send, 404, "Not Found")
    else:
        await PlainTextResponse("Not Found", 404)(scope, receive, send)


# ------------------------------------------------------------------------------------ routes


class BaseRoute:
    """What a :class:`Router` asks of a route; subclass it for custom routes.

    A route is also usable on its own as an ASGI application: a scope it does not match gets
    404 (a WebSocket is denied with 404).
    """

    def matches(self, scope: Scope) -> tuple[Match, dict[str, Any]]:
        """Tell how well the route matches ``scope``.

        Returns:
            The match and, unless :attr:`Match.NONE`, the entries to merge into the scope.
        """
        raise NotImplementedError

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """Build the path of the route named ``name`` with these parameters.

        Raises:
            NoMatchFound: This route (or, for a mount, none below it) has that name and
                exactly these parameters.
        """
        raise NotImplementedError

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a connection this route matched."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``scope`` as a stand-alone ASGI application."""
        match, child_scope = self.matches(scope)
        if match is Match.NONE:
            await _not_found(scope, receive, send)
            return
        scope.update(child_scope)
        await self.handle(scope, receive, send)


def _check_name(route: Route | WebSocketRoute, name: str, path_params: dict[str, Any]) -> None:
    if name != route.name or path_params.keys() != route._path.convertors.keys():
        raise _no_match(name, path_params)


class Route(BaseRoute):
    """An HTTP route.

    Args:
        path: The path pattern, starting with ``/``.
        endpoint: ``async def endpoint(request: Request) -> response``, where the response is
            any ASGI application (a :class:`~trio_ws.Response`, a Starlette response ...).
            An object that is not a function or method (a class instance with
            ``__call__``) is served as an ASGI application instead.
        methods: The allowed methods; ``HEAD`` is added where ``GET`` is. Default: ``GET``
            (and ``HEAD``) for an endpoint, every method for an ASGI application.
        name: The name for ``url_path_for``; defaults to the endpoint's ``__name__``.

    Raises:
        ValueError: The path does not start with ``/`` or has a malformed parameter.

    A request whose path matches but whose method does not gets 405 with an ``Allow``
    header (when no other route matches fully). An exception in the endpoint propagates to
    the server, which answers 500.
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: Collection[str] | None = None,
        name: str | None = None,
    ) -> None:
        check_str("path", path)
        check_callable("endpoint", endpoint, "an async function or an ASGI application")
        check_strings("methods", methods, optional=True)
        check_str("name", name, optional=True)
        if not path.startswith("/"):
            raise ValueError(f"a route path must start with '/', not {path!r}")
        self.path = path
        self.endpoint = endpoint
        self.name: str = _endpoint_name(endpoint) if name is None else name
        self.app: ASGIApp
        if _is_plain_function(endpoint):
            self.app = self._request_response
            if methods is None:
                methods = ("GET",)
        else:
            self.app = endpoint
        self.methods: set[str] | None = None
        if methods is not None:
            self.methods = {method.upper() for method in methods}
            if "GET" in self.methods:
                self.methods.add("HEAD")
        self._path = _compile_path(path)

    async def _request_response(self, scope: Scope, receive: Receive, send: Send) -> None:
        request: Request = Request(scope, receive, send)
        response = self.endpoint(request)
        if inspect.isawaitable(response):
            response = await response
        await response(scope, receive, send)

    def matches(self, scope: Scope) -> tuple[Match, dict[str, Any]]:
        """Match an HTTP scope by path (FULL) and method (else PARTIAL)."""
        child = _child_scope(scope, "http", self._path, self.endpoint)
        if child is None:
            return Match.NONE, {}
        if self.methods is not None and scope["method"] not in self.methods:
            return Match.PARTIAL, child
        return Match.FULL, child

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """Build this route's path (protocol ``"http"``) if ``name`` is its name."""
        _check_name(self, name, path_params)
        return URLPath(self._path.reverse(path_params), protocol="http")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the endpoint, or answer 405 if the method is not allowed."""
        if self.methods is not None and scope["method"] not in self.methods:
            allow = ", ".join(sorted(self.methods))
            response = PlainTextResponse("Method Not Allowed", 405, headers={"Allow": allow})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def __repr__(self) -> str:
        methods = sorted(self.methods or ())
        return f"{type(self).__name__}(path={self.path!r}, name={self.name!r}, methods={methods!r})"


class WebSocketRoute(BaseRoute):
    """A WebSocket route whose endpoint runs in a :class:`~trio_ws.WebSocket` session.

    For each connection the route checks the origin, then runs
    ``async with WebSocket(scope, receive, send, **session_options) as ws: await endpoint(ws)``,
    so every way out of the endpoint closes with its documented code.

    Args:
        path: The path pattern, starting with ``/``.
        endpoint: ``async def endpoint(ws: WebSocket) -> None``. An object that is not a
            function or method is served as an ASGI application instead (no session).
        name: The name for ``url_path_for``; defaults to the endpoint's ``__name__``.
        allowed_origins: ``None`` (the default) checks nothing. Otherwise exact origins,
            wildcard patterns (``"https://*.example.com"``), ``"*"``, or a callable
            ``(origin) -> bool`` (see :class:`~trio_ws.OriginPolicy`); any other origin is
            denied with HTTP 403 before the endpoint runs.
        allow_missing_origin: Whether a handshake without ``Origin`` (a non-browser client)
            passes the check.
        **session_options: Keyword options for :class:`~trio_ws.WebSocket`
            (``max_message_size``, ``max_queued_messages``, ``close_timeout`` ...).

    Raises:
        ValueError: A bad path, origin pattern or session option value, or session options
            with an ASGI-application endpoint.
        TypeError: An unknown session option.
    """

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        name: str | None = None,
        allowed_origins: AllowedOrigins | None = None,
        allow_missing_origin: bool = True,
        **session_options: Any,
    ) -> None:
        check_str("path", path)
        check_callable("endpoint", endpoint, "an async function or an ASGI application")
        check_str("name", name, optional=True)
        if not path.startswith("/"):
            raise ValueError(f"a route path must start with '/', not {path!r}")
        self.path = path
        self.endpoint = endpoint
        self.name: str = _endpoint_name(endpoint) if name is None else name
        self.session_options = session_options
        self._session = _is_plain_function(endpoint)
        if self._session:
            # Fail now, at import time, rather than at the first connection.
            WebSocket({"type": "websocket"}, _unused_receive, _unused_send, **session_options)
        elif session_options:
            raise ValueError(
                f"session options {sorted(session_options)} need an endpoint function; "
                f"{endpoint!r} is served as an ASGI application"
            )
        self.origin_policy: OriginPolicy | None = (
            None
            if allowed_origins is None
            else OriginPolicy(allowed_origins, allow_missing=allow_missing_origin)
        )
        self._path = _compile_path(path)

    def matches(self, scope: Scope) -> tuple[Match, dict[str, Any]]:
        """Match a WebSocket scope by path."""
        child = _child_scope(scope, "websocket", self._path, self.endpoint)
        return (Match.NONE, {}) if child is None else (Match.FULL, child)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """Build this route's path (protocol ``"websocket"``) if ``name`` is its name."""
        _check_name(self, name, path_params)
        return URLPath(self._path.reverse(path_params), protocol="websocket")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the origin, then run the endpoint in a session."""
        policy = self.origin_policy
        if policy is not None:
            origins = Headers(scope=scope).getlist("origin")
            origin = None if not origins else ", ".join(origins)
            if not policy(origin):
                await _deny(scope, send, 403, "Origin not allowed")
                return
        if not self._session:
            await self.endpoint(scope, receive, send)
            return
        async with WebSocket(scope, receive, send, **self.session_options) as websocket:
            await self.endpoint(websocket)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r}, name={self.name!r})"


async def _unused_send(message: Message) -> None:  # pragma: no cover - never called
    raise RuntimeError("this WebSocket only validates options")


class Mount(BaseRoute):
    """Serve a sub-router or any ASGI application under a path prefix.

    The mounted application sees the prefix added to ``root_path`` (and ``path`` unchanged,
    as ASGI 3 wants); ``app_root_path`` keeps the top-level root so that ``url_for`` inside
    still builds URLs from the application's root. Path parameters of the prefix
    (``Mount("/rooms/{room}", ...)``) join ``path_params``.

    Reversal: a route ``child`` below a mount named ``api`` is ``"api:child"``; below an
    unnamed mount simply ``"child"``. ``url_path_for("api", path="/x")`` gives a path inside
    the mount itself.

    Args:
        path: The prefix, ``""`` or starting with ``/`` (a trailing ``/`` is dropped).
        app: The ASGI application to mount.
        routes: Routes for a sub-:class:`Router`, instead of ``app``.
        name: The mount's name, the prefix of its routes' names.

    Raises:
        ValueError: Neither or both of ``app`` and ``routes``, or a bad path.
    """

    def __init__(
        self,
        path: str,
        app: ASGIApp | None = None,
        *,
        routes: Sequence[BaseRoute] | None = None,
        name: str | None = None,
    ) -> None:
        check_str("path", path)
        check_str("name", name, optional=True)
        if app is not None:
            check_callable("app", app, "an ASGI application")
        if path and not path.startswith("/"):
            raise ValueError(f"a mount path must be '' or start with '/', not {path!r}")
        if (app is None) == (routes is None):
            raise ValueError("a Mount needs exactly one of app=... and routes=...")
        self.path: str = path.rstrip("/")
        self.app: ASGIApp = app if app is not None else Router(routes)
        self.name = name
        self._path = _compile_path(self.path + "/{path:path}")

    @property
    def routes(self) -> list[BaseRoute]:
        """The routes of the mounted router (empty for another kind of application)."""
        routes: list[BaseRoute] = getattr(self.app, "routes", [])
        return routes

    def matches(self, scope: Scope) -> tuple[Match, dict[str, Any]]:
        """Match HTTP and WebSocket scopes whose path starts with the prefix."""
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        route_path = _route_path(scope)
        params = self._path.match(route_path)
        if params is None:
            return Match.NONE, {}
        remainder = "/" + params.pop("path")
        root_path: str = scope.get("root_path", "")
        return Match.FULL, {
            "path_params": {**scope.get("path_params", {}), **params},
            "app_root_path": scope.get("app_root_path", root_path),
            "root_path": root_path + route_path[: len(route_path) - len(remainder)],
            "endpoint": self.app,
        }

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """Build the path of ``name`` (this mount, or ``"<mount>:<child>"`` below it)."""
        own = self._path.convertors.keys() - {"path"}
        if self.name is not None and name == self.name and "path" in path_params:
            if path_params.keys() == own | {"path"}:
                params = {**path_params, "path": str(path_params["path"]).lstrip("/")}
                return URLPath(self._path.reverse(params))
        elif self.name is None or name.startswith(self.name + ":"):
            child_name = name if self.name is None else name[len(self.name) + 1 :]
            if own <= path_params.keys():
                prefix = self._path.reverse({**path_params, "path": ""}).rstrip("/")
                child_params = {key: value for key, value in path_params.items() if key not in own}
                for route in self.routes:
                    try:
                        child = route.url_path_for(child_name, **child_params)
                    except NoMatchFound:
                        continue
                    return URLPath(prefix + str(child), protocol=child.protocol)
        raise _no_match(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the connection to the mounted application."""
        await self.app(scope, receive, send)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(path={self.path!r}, name={self.name or ''!r}, app={self.app!r})"
        )


# ------------------------------------------------------------------------------------ router


class Router:
    """An ASGI application that dispatches to routes.

    For each HTTP or WebSocket connection the first route that matches fully handles it;
    failing that, the first partial match (a path whose route does not allow the method:
    405); failing that, ``default`` (404 by default: ``Not Found`` for HTTP, a denial with
    404 for a WebSocket, or HTTP 403 where the server cannot send denial responses).

    The router stores itself as ``scope["router"]`` (and as ``scope["app"]`` when the server
    set none), which ``url_for`` of requests and WebSockets uses.

    Args:
        routes: The routes, tried in order.
        lifespan: ``lifespan(app)``, an async context manager factory (for example an
            ``@asynccontextmanager`` function) entered at server startup and left at shutdown;
            a mapping it yields is merged into the lifespan ``state``. An exception at startup
            or shutdown is reported to the server (``lifespan.startup.failed`` or
            ``lifespan.shutdown.failed`` with the error) and propagates.
        default: The ASGI application for connections no route matches.
        json_codec: The :class:`~trio_ws.JSONCodec` of the sessions below this router (of
            mounted routers too, unless they set their own); a route's or session's own
            ``json_codec`` option wins over it.

    Example (more on the :doc:`routing page </routing>`)::

        from contextlib import asynccontextmanager
        from trio_ws import PlainTextResponse, Route, Router, WebSocketRoute

        @asynccontextmanager
        async def lifespan(app):
            async with trio_ws.open_broadcast() as hub:
                yield {"hub": hub}  # handlers: ws.state.hub

        async def home(request):
            return PlainTextResponse("hello")

        async def chat(ws):
            await ws.accept()
            await ws.send_text(f"welcome to {ws.path_params['room']}")

        app = Router(
            [Route("/", home), WebSocketRoute("/chat/{room}", chat, name="chat")],
            lifespan=lifespan,
        )
    """

    def __init__(
        self,
        routes: Sequence[BaseRoute] | None = None,
        lifespan: Callable[[Any], contextlib.AbstractAsyncContextManager[Mapping[str, Any] | None]]
        | None = None,
        *,
        default: ASGIApp | None = None,
        json_codec: JSONCodec | None = None,
    ) -> None:
        if isinstance(routes, BaseRoute):
            raise TypeError("routes must be a list of routes, not a single route: [route]")
        self.routes: list[BaseRoute] = [] if routes is None else list(routes)
        for route in self.routes:
            if not isinstance(route, BaseRoute):
                raise TypeError(
                    f"routes must hold Route, WebSocketRoute or Mount objects, not "
                    f"{type(route).__name__} ({route!r:.40})"
                )
        if lifespan is not None:
            check_callable("lifespan", lifespan, "a function returning an async context manager")
        if default is not None:
            check_callable("default", default, "an ASGI application")
        if json_codec is not None and not isinstance(json_codec, JSONCodec):
            raise TypeError(f"json_codec must be a trio_ws.JSONCodec, not {json_codec!r}")
        self.json_codec: JSONCodec | None = json_codec
        self.lifespan_context = lifespan
        self.default: ASGIApp = _not_found if default is None else default

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        """Build the path of the route named ``name``.

        Returns:
            A :class:`~trio_ws.URLPath` whose protocol (``"http"`` or
            ``"websocket"``) makes ``url_for`` choose ``http(s)://`` or ``ws(s)://``.

        Raises:
            NoMatchFound: No route has that name and exactly these parameters.
        """
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise _no_match(name, path_params)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (``http``, ``websocket`` or ``lifespan``).

        Raises:
            ValueError: Another scope type.
        """
        scope_type = scope["type"]
        scope.setdefault("router", self)
        scope.setdefault("app", self)
        if self.json_codec is not None:
            scope[JSON_CODEC_SCOPE_KEY] = self.json_codec
        if scope_type == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope_type not in ("http", "websocket"):
            raise ValueError(f"unsupported ASGI scope type {scope_type!r}")
        partial: tuple[BaseRoute, dict[str, Any]] | None = None
        for route in self.routes:
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial = route, child_scope
        if partial is not None:
            route, child_scope = partial
            scope["route"] = route
            scope.update(child_scope)
            await route.handle(scope, receive, send)
            return
        await self.default(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            raise RuntimeError(f"expected lifespan.startup, got {message['type']!r}")
        if not in_trio():  # the server does not start, and says why
            await send({"type": "lifespan.startup.failed", "message": NEEDS_TRIO})
            return
        if self.lifespan_context is None:
            await send({"type": "lifespan.startup.complete"})
            await _expect_shutdown(receive)
            await send({"type": "lifespan.shutdown.complete"})
            return
        phase: Literal["startup", "shutdown"] = "startup"
        try:
            async with self.lifespan_context(scope.get("app")) as state:
                if state is not None:
                    if "state" not in scope:
                        raise RuntimeError(
                            "the lifespan yielded state but the server does not support "
                            "lifespan state"
                        )
                    scope["state"].update(state)
                await send({"type": "lifespan.startup.complete"})
                phase = "shutdown"
                await _expect_shutdown(receive)
        except Exception as exc:
            error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            await send({"type": f"lifespan.{phase}.failed", "message": error})
            raise
        await send({"type": "lifespan.shutdown.complete"})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(routes={self.routes!r})"


async def _expect_shutdown(receive: Receive) -> None:
    message = await receive()
    if message["type"] != "lifespan.shutdown":
        raise RuntimeError(f"expected lifespan.shutdown, got {message['type']!r}")
