"""The Hypercorn side of the data plane's handover (Hypercorn 0.17-0.18 private code).

To be moved into ``_internals.py``. Private names used, each pinned by a test:

* the app's ``send`` is ``WSStream.app_send`` bound to the connection's ``WSStream``; its
  ``send`` is ``H11Protocol.stream_send`` (HTTP/1.1 only) whose ``send`` is
  ``TCPServer.protocol_send``;
* ``TCPServer.protocol`` (re-read on every read and close), ``TCPServer.stream`` (a
  ``trio.SocketStream``, so plain TCP: TLS falls back), ``TCPServer.config.read_timeout``;
* ``WSStream.app_put`` (a bound ``trio.MemorySendChannel.send``), ``WSStream.task_group.spawn``,
  ``WSStream.closed``, ``WSStream.state``, ``WSStream.connection`` (wsproto's ``Connection``)
  and wsproto's ``Connection._proto`` (its ``FrameProtocol``);
* trio's ``SocketType._sock`` (the stdlib socket, for non-blocking ``send``/``recv``).
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ._dataplane import DataPlane
from ._types import Message, Send

__all__ = ["HypercornHandover", "find_handover"]


class HypercornHandover:
    """One Hypercorn HTTP/1.1 WebSocket connection, as the data plane needs it."""

    __slots__ = ("forward", "stream", "tcp_server")

    def __init__(self, stream: Any, tcp_server: Any) -> None:
        self.stream = stream
        self.tcp_server = tcp_server
        #: Hypercorn's own ``send`` for this connection.
        self.forward: Callable[[Message], Awaitable[None]] = stream.app_send

    def can_take_over(self) -> bool:
        from hypercorn.protocol.ws_stream import ASGIWebsocketState

        return not self.stream.closed and self.stream.state is ASGIWebsocketState.HANDSHAKE

    def swap_in(self, plane: DataPlane) -> Any:
        previous = self.tcp_server.protocol
        self.tcp_server.protocol = plane
        return previous

    def swap_out(self, previous: Any) -> None:
        self.tcp_server.protocol = previous

    def take_over(
        self,
    ) -> tuple[Any, socket.socket, Any, Callable[[Callable[[], Awaitable[None]]], None]] | None:
        from hypercorn.protocol.ws_stream import ASGIWebsocketState

        stream = self.stream
        if stream.closed or stream.state is not ASGIWebsocketState.CONNECTED:
            return None
        proto = stream.connection._proto
        # Hypercorn's WebSocket code is done with this connection: it ignores what it is
        # handed from now on, and its "app finished" send is a no-op.
        stream.closed = True
        sock = self.tcp_server.stream.socket
        return sock, sock._sock, proto, stream.task_group.spawn


def find_handover(
    send: Send, stream_class: type[Any], h11_class: type[Any], tcp_class: type[Any]
) -> tuple[HypercornHandover, trio.MemorySendChannel[Any], Any] | str:
    """The handover for the connection whose ASGI ``send`` this is, or why there is none.

    Returns the handover, the app's inbound channel and Hypercorn's config.
    """
    stream: Any = getattr(send, "__self__", None)
    if not isinstance(stream, stream_class):
        return "the ASGI send callable is not a Hypercorn WSStream method"
    protocol = getattr(getattr(stream, "send", None), "__self__", None)
    if not isinstance(protocol, h11_class):
        return "not an HTTP/1.1 connection"
    tcp_server = getattr(getattr(protocol, "send", None), "__self__", None)
    if not isinstance(tcp_server, tcp_class):
        return "the connection is not served by Hypercorn's trio TCPServer"
    if type(tcp_server.stream) is not trio.SocketStream:
        return "TLS connection"
    if getattr(tcp_server.protocol, "protocol", None) is not protocol:
        return "Hypercorn's protocol wrapper is not where it was expected"
    if tcp_server.config.read_timeout is not None:
        return "config.read_timeout is set"
    inbox = getattr(stream.app_put, "__self__", None)
    if not isinstance(inbox, trio.MemorySendChannel):
        return "the app's inbound queue is not a trio memory channel"
    if not isinstance(getattr(tcp_server.stream.socket, "_sock", None), socket.socket):
        return "trio's socket has no _sock"
    return HypercornHandover(stream, tcp_server), inbox, tcp_server.config
