"""The session as a scope: entering it opens the connection's nursery, leaving it closes the
connection with the code its exit path calls for.

:class:`SessionScope` adds the lifetime to :class:`~trio_ws._session.SessionCore` (the reader
role, the inbox and the send gate): ``async with websocket:``, the exit table, helper tasks
(:meth:`~SessionScope.start_soon`, :meth:`~SessionScope.start`), watching for the disconnect
(:meth:`~SessionScope.cancel_on_disconnect`, :meth:`~SessionScope.wait_disconnected`) and
:meth:`~SessionScope.statistics`. :class:`~trio_ws.WebSocket` is built on it.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import trio

from ._dataplane import DataPlane
from ._exceptions import WebSocketDisconnect, WebSocketException
from ._http import StateT
from ._session import (
    _CONNECTED,
    _CONNECTING,
    _DISCONNECTED,
    DATAPLANE_EXTENSION,
    SHUTDOWN_EXTENSION,
    SessionCore,
    SessionStatistics,
    _offers_compression,
    _peekable_state,
    logger,
)
from ._state import validate_close
from ._types import Message
from ._worker import require_trio

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup
if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["SessionScope"]

_NORMAL_ENDS = (WebSocketDisconnect, WebSocketException)
# Cancelled from outside, the closing handshake waits only while messages keep coming this often.
_QUIET_LIMIT = 0.2
# HTTP statuses for an exit before accept (RFC 9110 section 15).
_DENIED, _ERROR, _UNAVAILABLE = 403, 500, 503


def _session_class_for(cls: type[Any]) -> type[Any]:
    """The class a session moves an instance of ``cls`` to: ``cls`` with ``receive`` and
    ``send`` (those it did not override) taken from the session's hot paths.

    Same name, slots and layout, so ``isinstance`` checks, reprs and attributes are unchanged;
    no per-instance memory and no extra call per message.
    """
    names = cls._session_bindings
    if not names:
        return cls
    namespace: dict[str, Any] = {
        "__slots__": (),
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
        "__doc__": cls.__doc__,
    }
    for name in names:
        namespace[name] = getattr(SessionCore, f"_session_{name}")
    return type(cls.__name__, (cls,), namespace)


# One session class per WebSocket class (in practice: WebSocket, and subclasses users write).
_SESSION_CLASSES: dict[type[Any], type[Any]] = {}


class SessionScope(SessionCore[StateT]):
    """The session's lifetime on top of :class:`~trio_ws._session.SessionCore`.

    Not used directly: :class:`~trio_ws.WebSocket` is the class to construct.
    """

    __slots__ = ()

    async def __aenter__(self) -> Self:
        """Enter the session: open the connection's nursery and take over receiving.

        Raises:
            RuntimeError: The session was already entered, or the application runs outside
                trio (Hypercorn's asyncio worker: use ``hypercorn -k trio``).
        """
        require_trio()  # under asyncio, say so instead of failing deep inside trio
        if self._nursery_manager is not None:
            await trio.lowlevel.checkpoint()
            raise RuntimeError("this WebSocket session was already entered")
        if self._receive_checkpoints:
            self._nowait = cast(Any, self._receive).__self__.receive_nowait
            self._server_queue = _peekable_state(self._receive)
        option = self._shield_option
        if option is None:
            # A frame dropped after compression would corrupt the client's decompressor;
            # trio_ws.serve's data plane compresses only what it is certain to write.
            extensions = self.scope.get("extensions") or {}
            option = DATAPLANE_EXTENSION not in extensions and _offers_compression(self.scope)
        self._shield = option
        plane = getattr(self._send, "__self__", None)
        if isinstance(plane, DataPlane) and self._server_queue is not None:
            self._write_now = plane.send_data_now
        self._nursery_manager = trio.open_nursery()
        self._nursery = await self._nursery_manager.__aenter__()
        cls = type(self)
        session_class = _SESSION_CLASSES.get(cls)
        if session_class is None:
            session_class = _SESSION_CLASSES[cls] = _session_class_for(cls)
        if session_class is not cls:
            self.__class__ = session_class
        if self.client_state is _DISCONNECTED:
            self._disconnect = {"type": "websocket.disconnect", "code": self.close_code or 1005}
        elif self._nowait is None:
            # The server's receive may not be cancel-safe: only the pump calls it.
            self._start_pump()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """Leave the session: stop helper tasks, then close with the exit path's code.

        ======================================  ==========================================
        how the body ended                      what the client sees, what propagates
        ======================================  ==========================================
        returned (after accept)                 close 1000
        :class:`WebSocketDisconnect`            nothing to send; suppressed
        :class:`WebSocketException`             close with its code and reason; suppressed
        any other exception (body or helper)    close 1011; the exception propagates
        cancelled from outside                  close ``shutdown_close_code`` (1012, or the
                                                server's drain code); the cancellation
                                                propagates
        returned or WebSocketException before   HTTP 403 (a denial)
        accept
        an error before accept                  HTTP 500 where the server offers
                                                ``websocket.http.response``, else 403
        cancelled from outside before accept    HTTP 503 where the server offers
                                                ``websocket.http.response``, else 403
        ======================================  ==========================================

        Closing is shielded and time-boxed by ``close_timeout``, and waits for the client's
        closing handshake so the server's queue never fills up behind a finished handler. A
        close code or reason that cannot be sent (a :class:`WebSocketException` subclass that
        skipped its checks) closes with 1011 instead, and one warning on the ``trio_ws``
        logger says why.
        """
        nursery = cast(trio.Nursery, self._nursery)
        nursery.cancel_scope.cancel()
        helper_errors: BaseExceptionGroup[BaseException] | None = None
        try:
            await self._nursery_manager.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            _, helper_errors = group.split(
                lambda e: e is exc or isinstance(e, (WebSocketDisconnect, trio.Cancelled))
            )
        if self._server_pending:
            # The disconnect was seen at the end of the server's queue and nobody read up to
            # it: the conversation is over all the same.
            self.client_state = _DISCONNECTED
            self._server_pending = False
        # Outside the nursery now: an enclosing scope that is still cancelled means the
        # cancellation came from outside; otherwise our nursery cancelled the body because
        # a helper task ended with an error or a disconnect.
        cancelled = isinstance(exc, trio.Cancelled)
        from_outside = cancelled and trio.current_effective_deadline() == -math.inf
        closing: WebSocketException | None = None
        if helper_errors is not None:
            closing_group, helper_errors = helper_errors.split(WebSocketException)
            if closing_group is not None:
                closing = cast(WebSocketException, _first_leaf(closing_group))
        if isinstance(exc, WebSocketException):
            closing = exc
        ends_normally = exc is None or cancelled or isinstance(exc, _NORMAL_ENDS)
        status = _DENIED
        if from_outside:
            # A server that drains its sessions (trio_ws.serve) says which code to send.
            notice = self.scope.get("extensions", {}).get(SHUTDOWN_EXTENSION) or {}
            code = notice.get("close_code") or self._shutdown_code
            reason = notice.get("reason", "") if notice.get("close_code") else ""
            status = _UNAVAILABLE
        elif helper_errors is not None or not ends_normally:
            code, reason = 1011, ""
            status = _ERROR
        elif closing is not None:
            code, reason = closing.code, closing.reason
        else:
            code, reason = 1000, ""
        await self._close_for_exit(
            code, reason, status, quiet_limit=_QUIET_LIMIT if from_outside else None
        )
        if helper_errors is not None:
            if ends_normally and not from_outside:
                raise helper_errors
            assert exc is not None
            raise BaseExceptionGroup("WebSocket session failed", [exc, *helper_errors.exceptions])
        if from_outside:
            return False
        return ends_normally

    def _exit_message(self, code: int, reason: str, status: int) -> list[Message]:
        """The messages that end the conversation on exit, by the application's state."""
        if self.application_state is _CONNECTING:
            if status != _DENIED and "websocket.http.response" in self.scope.get("extensions", {}):
                return [
                    {
                        "type": "websocket.http.response.start",
                        "status": status,
                        "headers": [(b"content-length", b"0")],
                    },
                    {"type": "websocket.http.response.body", "body": b""},
                ]
            # A denial: servers answer a close before accept with HTTP 403.
            return [{"type": "websocket.close", "code": 1000, "reason": ""}]
        if self.application_state is _CONNECTED:
            try:
                validate_close(code, reason)
            except ValueError as exc:
                logger.warning("closing with 1011 instead: %s", exc)
                code, reason = 1011, ""
            return [{"type": "websocket.close", "code": code, "reason": reason}]
        return []

    async def _close_for_exit(  # noqa: ASYNC910
        self, code: int, reason: str, status: int, *, quiet_limit: float | None
    ) -> None:
        # Shielded on purpose: it must run when cancelled. __aexit__ checkpointed before it.
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + self._close_timeout
            if self._disconnect is None:
                messages = self._exit_message(code, reason, status)
                if messages:
                    if messages[0]["type"] == "websocket.close":
                        self._note_close(messages[0])
                    self.application_state = _DISCONNECTED
                    with contextlib.suppress(OSError):
                        for message in messages:
                            await self._send(message)
                # Wait for the client's half of the closing handshake, so the server's queue
                # never fills up behind a finished handler (Hypercorn's would wedge). When
                # cancelled from outside, stop as soon as the server goes quiet: a server that
                # is shutting down has stopped reading, and nothing more will come.
                while self._accepted and self._disconnect is None:
                    with trio.move_on_after(
                        math.inf if quiet_limit is None else quiet_limit
                    ) as quiet:
                        incoming = await self._receive()
                    if quiet.cancelled_caught:
                        break
                    self._incoming(incoming)

    def _start_pump(self) -> None:
        if not self._pump_running and self._disconnect is None:
            self._pump_running = True
            cast(trio.Nursery, self._nursery).start_soon(self._pump, name="trio_ws pump")

    def _session(self, what: str) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError(f'{what} needs a session: use "async with websocket:"')
        return self._nursery

    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """Start ``fn(*args)`` in the session's nursery; it is cancelled when the session ends.

        Raises:
            RuntimeError: Not in a session.
        """
        self._session("start_soon").start_soon(fn, *args)

    async def start(self, fn: Callable[..., Awaitable[object]], *args: object) -> Any:
        """Start ``fn(*args)`` in the session's nursery and wait until it reports started.

        Works like :meth:`trio.Nursery.start`: ``fn`` must accept ``task_status``.

        Raises:
            RuntimeError: Not in a session.
        """
        return await self._session("start").start(fn, *args)

    @contextmanager
    def cancel_on_disconnect(self) -> Iterator[trio.CancelScope]:
        """A cancel scope that is cancelled when the client disconnects.

        The cancellation is absorbed when the ``with`` block exits, so the code after it runs
        normally; check ``scope.cancelled_caught`` to tell the two endings apart.

        Raises:
            RuntimeError: Not in a session.
        """
        self._session("cancel_on_disconnect")
        with trio.CancelScope() as scope:
            if self._disconnect is not None:
                scope.cancel()
                yield scope
                return
            if self._disconnect_scopes is None:
                self._disconnect_scopes = set()
            self._disconnect_scopes.add(scope)
            self._start_pump()
            try:
                yield scope
            finally:
                self._disconnect_scopes.discard(scope)

    async def wait_disconnected(self) -> None:
        """Wait until the client has disconnected.

        Raises:
            RuntimeError: Not in a session.
        """
        self._session("wait_disconnected")
        if self._disconnect is not None:
            await trio.lowlevel.checkpoint()
            return
        if self._disconnected is None:
            self._disconnected = trio.Event()
        self._start_pump()
        await self._disconnected.wait()

    def statistics(self) -> SessionStatistics:
        """Return a snapshot of the session's counters and queues."""
        nursery = self._nursery
        return SessionStatistics(
            messages_received=self._messages_in,
            bytes_received=self._bytes_in,
            messages_sent=self._messages_out,
            bytes_sent=self._bytes_out,
            queued_in=len(self._inbox or ()),
            max_queued_in=self._max_queued,
            sending=self._sending,
            receivers_waiting=len(self._waiters) if self._waiters is not None else 0,
            pump_running=self._pump_running,
            helper_tasks=len(nursery.child_tasks) if nursery is not None else 0,
            close_code=self.close_code,
            closed_by=self.closed_by,
        )


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
