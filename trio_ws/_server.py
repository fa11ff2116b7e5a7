"""``serve()``: Hypercorn's trio worker inside a trio program, with a drain on shutdown.

:func:`serve` runs ``hypercorn.trio.serve`` in the caller's nursery and adds what the plain
``hypercorn -k trio`` worker lacks (DESIGN section 3):

* **Drain** (item 8). Each WebSocket connection's app call runs in a cancel scope kept in a
  registry, with ``scope["extensions"]["trio_ws.shutdown"]`` set to a dict. On shutdown that dict
  gets ``close_code``/``reason`` and the scope is cancelled, so every session closes with
  ``drain_close_code`` (1001) before Hypercorn even starts its own graceful shutdown. Only then
  is Hypercorn told to stop; it runs the app's lifespan shutdown after the last connection ends.
* **Stalled readers** (item 7). Hypercorn writes to the socket in a shielded scope with no
  deadline. At the end of the drain window the sockets of connections that are still open are
  closed abortively (``SO_LINGER`` 0, then close), which wakes the shielded write at once.
* **Client close codes** (item 1, hypercorn issue #127). Each connection's ``WSStream`` is
  re-classed into a subclass that remembers the client's close code and reason and reports them
  in ``websocket.disconnect`` (1005 for a close frame without a code, 1006 only when the TCP
  connection dropped).
* **permessage-deflate** can be turned off (Hypercorn always negotiates it when offered).
* **The data plane** (``data_plane=True``, the default). After Hypercorn's HTTP/1.1 upgrade
  handshake and the app's accept, the connection is served by ``_dataplane`` (plain TCP) or
  ``_dataplane_stream`` (TLS): its own read loop and write path, server close codes the app is
  told about, keepalive pings with pongs checked, sends that a cancellation aborts instead of
  blocking. HTTP/2 and plain HTTP stay Hypercorn's.
* **Bad handshakes** (items 14, 15, 17): HTTP 400 and a close for an upgrade request with a
  body, bytes before the answer or a non-ASCII list header; malformed deflate offers declined;
  repeated list headers combined; and a per-connection firewall, so no client ends the server.

All but the drain reach into Hypercorn's internals (every such use is in ``_internals``), so
they are enabled only for the Hypercorn versions whose code they were checked against
(0.17.x-0.18.x); on any other version :func:`serve` logs one warning, runs plain
``hypercorn.trio.serve`` and still drains by cancellation.
"""

from __future__ import annotations

import inspect
import logging
import math
import sys
from collections.abc import Awaitable, Callable
from typing import Any, cast

import hypercorn.trio
import trio
from hypercorn.config import Config
from hypercorn.typing import Framework

from . import _internals
from ._dataplane import DATAPLANE_EXTENSION, DataPlane
from ._dataplane_stream import StreamDataPlane
from ._session import SHUTDOWN_EXTENSION
from ._state import validate_close
from ._types import ASGIApp, Receive, Scope, Send

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["serve"]

logger = logging.getLogger("trio_ws")

#: The reason sent with ``drain_close_code``.
DRAIN_REASON = "server shutting down"
# After the drain window: how long aborted connections get to unwind.
_ABORT_GRACE = 1.0
_UNAVAILABLE_BODY = b"server shutting down"


class _Connection:
    """One registered app call: how to cancel it, what to tell it, how to reach its socket."""

    __slots__ = ("cancel_scope", "notice", "plane", "send", "stream")

    def __init__(
        self,
        send: Send,
        notice: dict[str, Any] | None,
        stream: Any,
        plane: DataPlane | None = None,
    ) -> None:
        self.send = send
        self.notice = notice
        self.stream = stream
        self.plane = plane
        self.cancel_scope = trio.CancelScope()


class _Server:
    """The ASGI app :func:`serve` hands to Hypercorn, and the shutdown sequence."""

    def __init__(
        self,
        app: ASGIApp,
        config: Config,
        *,
        drain_close_code: int,
        drain_seconds: float,
        abort_stalled: bool,
        permessage_deflate: bool,
        fix_client_close_codes: bool,
        data_plane: bool = True,
        ping_interval: float | None = None,
        ping_timeout: float | None = None,
    ) -> None:
        self.app = app
        self.data_plane = data_plane
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.config = config
        self.drain_close_code = drain_close_code
        self.drain_seconds = drain_seconds
        self.abort_stalled = abort_stalled
        self.permessage_deflate = permessage_deflate
        self.fix_client_close_codes = fix_client_close_codes
        self.hooks = _internals.available()
        self.websockets: set[_Connection] = set()
        self.http: set[_Connection] = set()
        self.draining = False
        self.websockets_gone = trio.Event()

    # -- the ASGI side ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "http" and self.hooks:
            # Registered only so that a stalled HTTP client can be aborted at the end.
            connection = _Connection(send, None, None)
            self.http.add(connection)
            try:
                await self.app(scope, receive, send)
            finally:
                self.http.discard(connection)
        else:
            await self.app(scope, receive, send)

    def _adopt(self, send: Send) -> Any:
        """Re-class the connection's ``WSStream`` (checked Hypercorn only); return it or None."""
        if not self.hooks:
            return None
        return _internals.adopt(
            send, report_close=self.fix_client_close_codes, deflate=self.permessage_deflate
        )

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.draining:
            await self._refuse(send)
            return
        notice: dict[str, Any] = {}
        extensions = dict(scope.get("extensions") or {})
        extensions[SHUTDOWN_EXTENSION] = notice
        scope = dict(scope)
        scope["extensions"] = extensions
        stream = self._adopt(send)
        if stream is not None and await _internals.screen(stream, scope):
            return  # noqa: ASYNC910 - answered (400) and closed by screen(), which awaited
        plane = self._plane(send) if stream is not None and self.data_plane else None
        if plane is not None:
            extensions[DATAPLANE_EXTENSION] = {}
        connection = _Connection(send, notice, stream, plane)
        self.websockets.add(connection)
        try:
            with connection.cancel_scope:
                await self.app(scope, receive, send if plane is None else plane.send)
            # The drain cancelled the app (it may have caught the cancellation itself).
            if connection.cancel_scope.cancel_called and stream is not None:
                if plane is not None and plane.active:
                    await self._close_plane_after_drain(plane, notice)
                else:
                    await self._close_after_drain(stream, send, notice)
        finally:
            try:
                if plane is not None and plane.active:
                    plane.app_finished()
                    # Nobody reads the app's queue any more: the reader must not wait on it.
                    owner = getattr(receive, "__self__", None)
                    if isinstance(owner, trio.MemoryReceiveChannel):
                        owner.close()
                elif stream is not None:
                    # Hypercorn's own "app finished" step (it runs it again after us, as a
                    # no-op), done while still registered: its close frame can stall too.
                    await _internals.app_finished(stream)
            finally:
                self._ended(connection)

    def _ended(self, connection: _Connection) -> None:
        self.websockets.discard(connection)
        if self.draining and not self.websockets:
            self.websockets_gone.set()

    def _plane(self, send: Send) -> DataPlane | None:
        """The data plane for this connection, or None (Hypercorn keeps it; logged at debug)."""
        found = _internals.find_handover(send)
        if isinstance(found, str):
            logger.debug("trio_ws.serve: Hypercorn serves this WebSocket itself: %s", found)
            return None
        hook, inbox, max_message_size = found
        return (StreamDataPlane if hook.streamed else DataPlane)(
            hook,
            inbox,
            max_message_size=max_message_size,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            client_close_codes=self.fix_client_close_codes,
        )

    async def _close_plane_after_drain(self, plane: DataPlane, notice: dict[str, Any]) -> None:
        """As :meth:`_close_after_drain`, on the data plane."""
        if not plane.open:
            await trio.lowlevel.checkpoint()
            return
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + max(self.drain_seconds, 0.1)
            await plane.send(
                {
                    "type": "websocket.close",
                    "code": notice["close_code"],
                    "reason": notice["reason"],
                }
            )

    async def _close_after_drain(self, stream: Any, send: Send, notice: dict[str, Any]) -> None:
        """A plain app (not a session) absorbed the drain: close for it, shielded and time-boxed."""
        if not _internals.is_open(stream):
            return  # noqa: ASYNC910 - runs right after a cancellation; nothing to close
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + max(self.drain_seconds, 0.1)
            await send(
                {
                    "type": "websocket.close",
                    "code": notice["close_code"],
                    "reason": notice["reason"],
                }
            )

    async def _refuse(self, send: Send) -> None:
        """A WebSocket handshake that arrives while draining: HTTP 503, the app is not called."""
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(_UNAVAILABLE_BODY)).encode("ascii")),
        ]
        await send({"type": "websocket.http.response.start", "status": 503, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": _UNAVAILABLE_BODY})

    # -- the shutdown side -------------------------------------------------------------------

    def _abort_all(self, connections: set[_Connection]) -> int:
        if not self.hooks or not self.abort_stalled:
            return 0
        aborted = 0
        for connection in list(connections):
            plane = connection.plane
            if plane is not None and plane.active:
                plane.abort(1006, "stalled at shutdown")
                aborted += 1
            else:
                aborted += _internals.abort(connection.send)
        return aborted

    async def shutdown(
        self,
        stop_hypercorn: trio.Event,
        hypercorn_done: trio.Event,
        hypercorn_scope: trio.CancelScope,
    ) -> None:
        """Drain, abort what is stalled, then let Hypercorn shut down (bounded throughout)."""
        # 1. Drain: every session closes with drain_close_code; new handshakes get 503.
        self.draining = True
        started = trio.current_time()
        if self.websockets:
            logger.info(
                "trio_ws.serve: shutting down: closing %d WebSocket session(s) with %d "
                "(waiting up to %g s)",
                len(self.websockets),
                self.drain_close_code,
                self.drain_seconds,
            )
            deadline = started + self.drain_seconds if self.abort_stalled else math.inf
            for connection in list(self.websockets):
                assert connection.notice is not None
                connection.notice.update(close_code=self.drain_close_code, reason=DRAIN_REASON)
                if connection.plane is not None:
                    connection.plane.drain(deadline)
                connection.cancel_scope.cancel()
            with trio.move_on_after(self.drain_seconds):
                await self.websockets_gone.wait()
        else:
            logger.info("trio_ws.serve: shutting down (no open WebSocket sessions)")
        # 2. Whatever is still open is stuck in a shielded socket write: abort it.
        if self.websockets:
            aborted = self._abort_all(self.websockets)
            logger.warning(
                "trio_ws.serve: %d WebSocket connection(s) still open after %g s (clients that "
                "stopped reading or did not finish the closing handshake): %s",
                len(self.websockets),
                self.drain_seconds,
                f"aborted {aborted}" if aborted else "cannot abort them on this Hypercorn",
            )
            with trio.move_on_after(_ABORT_GRACE):
                await self.websockets_gone.wait()
        logger.info(
            "trio_ws.serve: drain done in %.2f s; stopping Hypercorn",
            trio.current_time() - started,
        )
        # 3. Hypercorn's own shutdown: listeners stop, HTTP requests get graceful_timeout,
        #    then the lifespan shutdown runs.
        stop_hypercorn.set()
        with trio.move_on_after(self.config.graceful_timeout + _ABORT_GRACE):
            await hypercorn_done.wait()
        if not hypercorn_done.is_set():
            # Past Hypercorn's graceful deadline only stalled writes keep connections alive.
            aborted = self._abort_all(self.http | self.websockets)
            logger.warning(
                "trio_ws.serve: Hypercorn did not stop within graceful_timeout (%g s); "
                "aborted %d stalled connection(s)",
                self.config.graceful_timeout,
                aborted,
            )
            with trio.move_on_after(self.config.shutdown_timeout + _ABORT_GRACE):
                await hypercorn_done.wait()
            hypercorn_scope.cancel()


def _check_app(app: object) -> None:
    """An ASGI app takes ``(scope, receive, send)``; say so at once when it does not."""
    if not callable(app):
        raise TypeError(f"serve() needs an ASGI application, not {app!r}")
    try:
        signature = inspect.signature(app)
    except (TypeError, ValueError):  # builtins, some C callables: nothing to check
        return
    try:
        signature.bind(None, None, None)
    except TypeError:
        name = getattr(app, "__name__", None) or type(app).__name__
        raise TypeError(
            f"serve() needs an ASGI application, app(scope, receive, send), but {name}{signature} "
            f"does not take those three arguments. A handler that takes one WebSocket must be "
            f"wrapped: trio_ws.serve(trio_ws.websocket_app({name}), ...)"
        ) from None


def _startup_error(group: BaseExceptionGroup[BaseException], config: Config) -> OSError | None:
    """An ``OSError`` (port in use, address not available) that is all a failed start holds."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    if len(leaves) != 1 or not isinstance(leaves[0], OSError):
        return None
    leaf = leaves[0]
    where = ", ".join(config.bind)
    error = type(leaf)(leaf.errno, f"{leaf.strerror or leaf} (binding {where})")
    error.__cause__ = leaf
    return error


def _make_config(config: Config | None, host: str | None, port: int | None) -> Config:
    if config is not None and not isinstance(config, Config):
        raise TypeError(
            f"config must be a hypercorn.Config, not {type(config).__name__}; build one with "
            f"hypercorn.Config.from_mapping({{...}}), or pass host= and port="
        )
    if config is not None:
        if host is not None or port is not None:
            raise TypeError("pass host and port, or a config (with config.bind), not both")
        return config
    config = Config()
    host = "127.0.0.1" if host is None else host
    port = 8000 if port is None else port
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = 3.0
    config.accesslog = None
    return config


async def serve(
    app: ASGIApp,
    *,
    host: str | None = None,
    port: int | None = None,
    config: Config | None = None,
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    drain_close_code: int = 1001,
    drain_seconds: float = 2.0,
    abort_stalled: bool = True,
    permessage_deflate: bool = True,
    fix_client_close_codes: bool = True,
    data_plane: bool = True,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an ASGI app with Hypercorn's trio worker until cancelled; drain on the way out.

    Use it with ``nursery.start``, which returns the bound URLs::

        import functools

        async def hello(ws: trio_ws.WebSocket) -> None:
            await ws.accept()
            await ws.send_text("hello")

        app = trio_ws.websocket_app(hello)

        async with trio.open_nursery() as nursery:
            urls = await nursery.start(functools.partial(trio_ws.serve, app, port=0))
            ...
            nursery.cancel_scope.cancel()  # shuts down: drain, then Hypercorn's shutdown

    Shutdown starts when the task running ``serve`` is cancelled (or ``shutdown_trigger``
    returns). It runs shielded and bounded, then the cancellation propagates:

    1. every open WebSocket session is cancelled and closes with ``drain_close_code`` and the
       reason ``"server shutting down"``; new handshakes are refused with HTTP 503;
    2. after at most ``drain_seconds``, the sockets of connections that are still open (clients
       that stopped reading, so Hypercorn's write can never finish) are closed abortively;
    3. Hypercorn shuts down: its listeners stop, HTTP requests get ``config.graceful_timeout``,
       then the app's lifespan shutdown runs.

    Args:
        app: An ASGI 3 application (for example from :func:`trio_ws.websocket_app`).
        host: Interface to bind (default ``127.0.0.1``); not with ``config``.
        port: Port to bind (default 8000; 0 picks a free one); not with ``config``.
        config: A ``hypercorn.Config`` used as is (``bind``, TLS, ``graceful_timeout``...).
            Without one: bind ``host:port``, ``graceful_timeout`` 3 s, no access log.
        shutdown_trigger: Optional ``async`` callable; shutdown starts when it returns.
        drain_close_code: Close code sent to open sessions on shutdown (1001, "going away").
        drain_seconds: How long sessions get to finish their closing handshake before the
            connections still open are aborted.
        abort_stalled: Abort connections still open after the drain (needs a checked Hypercorn
            version, 0.17.x-0.18.x).
        permessage_deflate: Negotiate permessage-deflate when a client offers it (Hypercorn
            always does); False refuses it (checked Hypercorn versions only).
        fix_client_close_codes: Report the client's close code and reason in
            ``websocket.disconnect`` instead of Hypercorn's 1006 (checked versions only).
        data_plane: Serve each accepted HTTP/1.1 WebSocket (plain TCP or TLS) with trio_ws's own
            read loop and write path (docs/hypercorn.rst says which connections take which
            path; checked Hypercorn versions only). False leaves every connection to Hypercorn.
        ping_interval: Data plane only: seconds between keepalive pings (None: no pings).
        ping_timeout: Data plane only: seconds to wait for a pong before the connection is
            closed with 1011 and the app is told so (None: pongs are not checked).
        task_status: Given by ``nursery.start``; receives the list of bound URLs.

    Bad handshakes (an upgrade request with a body, bytes after it before the answer, a
    non-ASCII list header) get HTTP 400 and a close, and an error inside one connection ends
    only that connection (checked Hypercorn versions; see :doc:`serving`). Progress and refusals
    are logged on the ``trio_ws`` logger.

    Raises:
        ValueError: ``drain_close_code`` cannot be sent, ``drain_seconds`` is negative, or
            ``ping_interval``/``ping_timeout`` is neither None nor a positive number.
        TypeError: Both ``config`` and ``host``/``port`` were given; ``config`` is not a
            ``hypercorn.Config``; ``app`` does not take ``(scope, receive, send)`` (a handler
            taking one WebSocket must be wrapped with :func:`websocket_app`).
        OSError: The address could not be bound (``errno.EADDRINUSE``...), raised as is, not
            inside an exception group; the message names the address.
    """
    _check_app(app)
    validate_close(drain_close_code, DRAIN_REASON)
    if not drain_seconds >= 0 or math.isinf(drain_seconds):
        raise ValueError(f"drain_seconds must be a finite number >= 0, not {drain_seconds!r}")
    for name, value in (("ping_interval", ping_interval), ("ping_timeout", ping_timeout)):
        if value is not None and not 0 < value < math.inf:
            raise ValueError(f"{name} must be None or a finite number > 0, not {value!r}")
    config = _make_config(config, host, port)
    server = _Server(
        app,
        config,
        drain_close_code=drain_close_code,
        drain_seconds=drain_seconds,
        abort_stalled=abort_stalled,
        permessage_deflate=permessage_deflate,
        fix_client_close_codes=fix_client_close_codes,
        data_plane=data_plane,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
    )
    stop_hypercorn = trio.Event()
    hypercorn_done = trio.Event()
    hypercorn_scope = trio.CancelScope()
    waiting = trio.CancelScope()

    async def run_hypercorn(*, task_status: trio.TaskStatus[list[str]]) -> None:
        try:
            with hypercorn_scope:
                if server.hooks:
                    await _internals.run_worker(
                        server,
                        config,
                        shutdown_trigger=stop_hypercorn.wait,
                        task_status=task_status,
                    )
                else:
                    await hypercorn.trio.serve(
                        cast(Framework, server),
                        config,
                        shutdown_trigger=stop_hypercorn.wait,
                        task_status=task_status,
                        mode="asgi",
                    )
        finally:
            hypercorn_done.set()
            waiting.cancel()  # Hypercorn stopped by itself (max_requests, a crash)

    try:
        async with trio.open_nursery() as nursery:
            urls: list[str] = await nursery.start(run_hypercorn)
            # From now on an outside cancellation reaches Hypercorn only through shutdown().
            hypercorn_scope.shield = True
            logger.info("trio_ws.serve: serving on %s", ", ".join(urls))
            task_status.started(urls)
            await _run_until_shutdown(
                server, shutdown_trigger, waiting, stop_hypercorn, hypercorn_done, hypercorn_scope
            )
    except BaseExceptionGroup as group:
        error = None if hypercorn_scope.shield else _startup_error(group, config)
        if error is None:
            raise
        raise error from error.__cause__


async def _run_until_shutdown(
    server: _Server,
    shutdown_trigger: Callable[[], Awaitable[object]] | None,
    waiting: trio.CancelScope,
    stop_hypercorn: trio.Event,
    hypercorn_done: trio.Event,
    hypercorn_scope: trio.CancelScope,
) -> None:
    try:
        with waiting:
            if shutdown_trigger is None:
                await trio.sleep_forever()
            else:
                await shutdown_trigger()
    finally:
        with trio.CancelScope(shield=True):
            await server.shutdown(stop_hypercorn, hypercorn_done, hypercorn_scope)
