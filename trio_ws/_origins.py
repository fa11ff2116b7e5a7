"""Origin checks for WebSocket handshakes (pure: no trio, no I/O).

Browsers send every WebSocket handshake with an ``Origin`` header naming the page that opened
it, and, unlike ``fetch``, they do not apply the same-origin policy to WebSockets: any page may
connect to any server, with the user's cookies. A server that authenticates WebSockets with
cookies must therefore check the origin itself, before accepting (cross-site WebSocket
hijacking). :class:`~trio_ws.WebSocketRoute` does it with an :class:`OriginPolicy` built from
its ``allowed_origins``.

The rules, in order:

* No ``Origin`` header: non-browser clients (scripts, other servers) rarely send one. Allowed
  unless ``allow_missing=False``.
* ``"*"`` in the list allows every origin.
* An exact origin such as ``"https://example.com"`` matches that origin. Schemes and host
  names compare case-insensitively and a default port is the same as no port
  (``https://EXAMPLE.com:443`` is ``https://example.com``).
* A wildcard such as ``"https://*.example.com"`` matches the subdomains of ``example.com``
  at any depth with that scheme and port, but not ``example.com`` itself.
* A callable ``(origin: str) -> bool`` decides alone, given the header's value as sent.

An ``Origin`` value that is not ``scheme://host[:port]`` (for example ``null``, which sandboxed
pages and ``file:`` URLs send, or several origins) matches only ``"*"``, the exact string
listed (``"null"``), or a callable's judgement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

__all__ = ["AllowedOrigins", "OriginPolicy", "check_origin"]

#: What ``allowed_origins`` may be: a list of origins and patterns, or a predicate.
AllowedOrigins = Iterable[str] | Callable[[str], bool]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _normalise(origin: str) -> tuple[str, str, int | None] | None:
    """Split an origin into ``(scheme, host, port)``, lower-cased, default port removed.

    Returns:
        The parts, or ``None`` if ``origin`` is not exactly ``scheme://host[:port]``.
    """
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if (
        not parts.scheme
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or "?" in origin
        or "#" in origin
        or parts.username is not None
    ):
        return None
    scheme = parts.scheme.lower()
    if port is not None and port == _DEFAULT_PORTS.get(scheme):
        port = None
    return scheme, parts.hostname.lower(), port


class OriginPolicy:
    """A compiled set of allowed origins; call it with an ``Origin`` header value.

    Args:
        allowed: Exact origins (``"https://example.com"``), wildcard patterns
            (``"https://*.example.com"``), ``"*"`` for any origin, or a callable
            ``(origin) -> bool``.
        allow_missing: Whether a handshake without an ``Origin`` header is allowed.

    Raises:
        ValueError: A pattern is not ``*``, ``scheme://host[:port]`` or
            ``scheme://*.host[:port]`` (a path, even ``/``, is a mistake here).
        TypeError: ``allowed`` is a single string rather than a list of them.

    Example::

        policy = trio_ws.OriginPolicy(["https://example.com", "https://*.example.com"])
        assert policy("https://chat.example.com")
        assert not policy("https://evil.example")
        assert policy(None)  # no Origin header
    """

    def __init__(self, allowed: AllowedOrigins, *, allow_missing: bool = True) -> None:
        self.allow_missing = allow_missing
        self._predicate: Callable[[str], bool] | None = None
        self._any = False
        self._exact: set[tuple[str, str, int | None]] = set()
        self._literal: set[str] = set()
        self._suffixes: set[tuple[str, str, int | None]] = set()
        if isinstance(allowed, str):
            raise TypeError(
                f"allowed origins must be a list of origins, not the string {allowed!r} "
                f"(write [{allowed!r}])"
            )
        if callable(allowed):
            self._predicate = allowed
            return
        for pattern in allowed:
            self._add(pattern)

    def _add(self, pattern: str) -> None:
        if pattern == "*":
            self._any = True
            return
        if pattern.lower() == "null":
            self._literal.add("null")
            return
        wildcard = "://*." in pattern
        parts = _normalise(pattern.replace("://*.", "://", 1) if wildcard else pattern)
        if parts is None or "*" in parts[1]:
            raise ValueError(
                f"invalid origin pattern {pattern!r}: expected '*', 'scheme://host[:port]' or "
                "'scheme://*.host[:port]', without a path"
            )
        (self._suffixes if wildcard else self._exact).add(parts)

    def __call__(self, origin: str | None) -> bool:
        """Tell whether a handshake with this ``Origin`` header value is allowed.

        Args:
            origin: The header's value, or ``None`` when the header is absent.
        """
        if origin is None:
            return self.allow_missing
        if self._predicate is not None:
            return bool(self._predicate(origin))
        if self._any:
            return True
        parts = _normalise(origin)
        if parts is None:
            return origin.strip().lower() in self._literal
        if parts in self._exact:
            return True
        scheme, host, port = parts
        return any(
            scheme == s and port == p and host.endswith("." + suffix)
            for s, suffix, p in self._suffixes
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(allow_missing={self.allow_missing!r})"


def check_origin(
    origin: str | None, allowed: AllowedOrigins, *, allow_missing: bool = True
) -> bool:
    """Tell whether ``origin`` is allowed by ``allowed`` (see :class:`OriginPolicy`).

    Handy inside an endpoint that decides per connection; a route compiles its list once.

    Args:
        origin: The ``Origin`` header's value, or ``None`` if the handshake had none.
        allowed: Exact origins, wildcard patterns, ``"*"``, or a callable ``(origin) -> bool``.
        allow_missing: Whether a missing ``Origin`` header is allowed.

    Returns:
        Whether the handshake may go on.

    Raises:
        ValueError: A pattern in ``allowed`` is malformed.
    """
    return OriginPolicy(allowed, allow_missing=allow_missing)(origin)
