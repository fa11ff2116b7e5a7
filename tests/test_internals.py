"""Pins of every private Hypercorn name ``trio_ws._internals`` relies on, one test per name.

Each test names the private name it pins, so a Hypercorn upgrade that moves or renames one fails
exactly that test (and not a scenario in ``test_server.py`` far away). The objects are Hypercorn's
own, driven without sockets: a ``ProtocolWrapper`` fed the bytes of an upgrade request, with a
fake task group that records what it would have spawned.
"""

from __future__ import annotations

import inspect
import logging
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
import trio.testing
import trustme
from hypercorn.config import Config
from hypercorn.events import RawData
from hypercorn.protocol import ProtocolWrapper
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request
from wsproto.extensions import PerMessageDeflate

from trio_ws import _internals, _wsproto_private

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

UPGRADE = (
    b"GET /path HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)


@dataclass
class FakeTaskGroup:
    """Hypercorn's task-group interface; records the app's inbound messages instead of running it."""

    inbound: list[dict[str, Any]] = field(default_factory=list)

    async def spawn_app(self, app: Any, config: Any, scope: Any, send: Any) -> Any:
        async def put(message: dict[str, Any]) -> None:
            self.inbound.append(message)

        return put

    def spawn(self, func: Callable[..., Awaitable[None]], *args: Any) -> None:
        pass


@dataclass
class Wired:
    """A Hypercorn HTTP/1.1 protocol over a recording ``send``, after an upgrade request."""

    protocol: ProtocolWrapper
    sent: list[Any]
    task_group: FakeTaskGroup

    @property
    def stream(self) -> Any:
        return self.protocol.protocol.stream

    def written(self) -> bytes:
        return b"".join(event.data for event in self.sent if isinstance(event, RawData))


async def wired(extra_headers: bytes = b"", send: Any = None, *, request: bytes = b"") -> Wired:
    sent: list[Any] = []

    async def record(event: Any) -> None:
        sent.append(event)

    task_group = FakeTaskGroup()
    config = Config()
    config.accesslog = None
    protocol = ProtocolWrapper(
        None,  # type: ignore[arg-type] - the fake task group never calls it
        config,
        WorkerContext(None),
        task_group,  # type: ignore[arg-type]
        ConnectionState({}),
        False,
        ("127.0.0.1", 5000),
        ("127.0.0.1", 8000),
        send or record,
    )
    await protocol.handle(RawData(request or UPGRADE + extra_headers + b"\r\n"))
    return Wired(protocol, sent, task_group)


async def accepted() -> tuple[Wired, Any]:
    """An adopted stream whose handshake the app accepted; also the matching wsproto client."""
    client = WSConnection(ConnectionType.CLIENT)
    w = await wired(request=client.send(Request(host="x", target="/path")))
    stream = _internals.adopt(w.stream.app_send, report_close=True, deflate=True)
    assert stream is not None
    await stream.app_send({"type": "websocket.accept"})
    client.receive_data(w.written())
    assert isinstance(next(client.events()), AcceptConnection)
    return w, client


# -- the version gate ------------------------------------------------------------------------------


def test_version_gate_admits_the_installed_hypercorn() -> None:
    assert _internals.hypercorn_version()[:2] in _internals.SUPPORTED_HYPERCORN
    assert _internals.load() == ""


def test_version_gate_refuses_other_versions_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_internals, "hypercorn_version", lambda: (0, 16, 2))
    monkeypatch.setattr(_internals, "_PROBLEM", None)
    monkeypatch.setattr(_internals, "_WARNED", False)
    assert "Hypercorn 0.16.2 is not a checked version" in _internals.load()
    with caplog.at_level(logging.WARNING, logger="trio_ws"):
        assert _internals.available() is False
        assert _internals.available() is False
    assert len(caplog.records) == 1
    assert "the drain still works" in caplog.records[0].getMessage()


# -- hypercorn.protocol.ws_stream ------------------------------------------------------------------


def test_ws_stream_class() -> None:
    from hypercorn.protocol.ws_stream import WSStream

    assert _internals.ServedWSStream.__mro__[1] is WSStream


async def test_ws_stream_is_what_h11_creates_for_an_upgrade() -> None:
    from hypercorn.protocol.ws_stream import WSStream

    w = await wired()
    assert type(w.stream) is WSStream


@pytest.mark.parametrize("name", _internals.STREAM_METHODS)
def test_ws_stream_method(name: str) -> None:
    from hypercorn.protocol.ws_stream import WSStream

    method = getattr(WSStream, name)
    assert inspect.iscoroutinefunction(method)
    assert len(inspect.signature(method).parameters) == 2  # self and one event or message


async def test_ws_stream_app_send_is_the_apps_send() -> None:
    w = await wired()
    assert w.task_group.inbound == [{"type": "websocket.connect"}]
    assert w.stream.app_send.__self__ is w.stream


async def test_ws_stream_attribute_closed() -> None:
    w = await wired()
    assert w.stream.closed is False


async def test_ws_stream_attribute_app_put() -> None:
    w = await wired()
    assert callable(w.stream.app_put)


async def test_ws_stream_attribute_state() -> None:
    from hypercorn.protocol.ws_stream import ASGIWebsocketState

    w = await wired()
    assert w.stream.state is ASGIWebsocketState.HANDSHAKE


async def test_ws_stream_attribute_handshake_extensions() -> None:
    w = await wired(b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n")
    assert w.stream.handshake.extensions == ["permessage-deflate; client_max_window_bits"]
    assert (await wired()).stream.handshake.extensions is None


async def test_ws_stream_accept_assigns_connection() -> None:
    from wsproto.connection import Connection

    w = await wired()
    stream = _internals.adopt(w.stream.app_send, report_close=True, deflate=True)
    await stream.app_send({"type": "websocket.accept"})
    recorder = stream.connection
    assert isinstance(recorder, _internals.CloseRecorder)
    assert isinstance(recorder._connection, Connection)
    assert callable(recorder._connection.events)


@pytest.mark.parametrize("member", ["CONNECTED", "CLOSED", "HTTPCLOSED"])
def test_asgi_websocket_state_member(member: str) -> None:
    from hypercorn.protocol.ws_stream import ASGIWebsocketState

    assert isinstance(getattr(ASGIWebsocketState, member), ASGIWebsocketState)


def test_stream_closed_event() -> None:
    from hypercorn.protocol.events import StreamClosed

    assert StreamClosed(stream_id=1).stream_id == 1


async def test_app_send_none_is_the_app_returned_step() -> None:
    w, client = await accepted()
    stream = w.stream
    assert _internals.is_open(stream)
    before = len(w.written())
    await _internals.app_finished(stream)
    client.receive_data(w.written()[before:])
    (event,) = list(client.events())
    assert isinstance(event, CloseConnection)
    assert event.code == 1011
    assert not _internals.is_open(stream)  # Hypercorn's StreamClosed came back: closed is set
    await _internals.app_finished(stream)  # and a second time is a no-op
    assert len(w.written()) > before


# -- wsproto -----------------------------------------------------------------------------------


def test_wsproto_close_connection_code_and_reason() -> None:
    event = CloseConnection(code=4000, reason="bye")
    assert (event.code, event.reason) == (4000, "bye")


# -- the hook behaviours, sans IO --------------------------------------------------------------


@pytest.mark.parametrize(("report", "expected"), [(True, (4000, "bye")), (False, (1006, None))])
async def test_adopted_stream_reports_the_clients_close(
    report: bool, expected: tuple[int, str | None]
) -> None:
    w, client = await accepted()
    w.stream.trio_ws_report_close = report
    await w.protocol.handle(RawData(client.send(CloseConnection(code=4000, reason="bye"))))
    message = w.task_group.inbound[-1]
    assert message["type"] == "websocket.disconnect"
    assert (message["code"], message.get("reason")) == expected


@pytest.mark.parametrize("deflate", [True, False])
async def test_adopted_stream_deflate_switch(deflate: bool) -> None:
    offer = PerMessageDeflate().offer()
    w = await wired(
        b"Sec-WebSocket-Extensions: permessage-deflate; " + str(offer).encode() + b"\r\n"
    )
    stream = _internals.adopt(w.stream.app_send, report_close=True, deflate=deflate)
    await stream.app_send({"type": "websocket.accept"})
    assert (b"sec-websocket-extensions" in w.written().lower()) is deflate


async def test_adopt_refuses_what_is_not_a_ws_stream(caplog: pytest.LogCaptureFixture) -> None:
    async def send(message: Any) -> None:
        pass

    assert _internals.adopt(send, report_close=True, deflate=True) is None


# -- hypercorn.protocol.h11 and hypercorn.trio.tcp_server ---------------------------------------


async def test_ws_stream_send_is_the_h11_protocols_stream_send() -> None:
    from hypercorn.protocol.h11 import H11Protocol

    w = await wired()
    assert isinstance(w.stream.send.__self__, H11Protocol)
    assert w.stream.send.__func__ is H11Protocol.stream_send


async def test_h11_protocol_send_is_the_tcp_servers_protocol_send() -> None:
    from hypercorn.trio.tcp_server import TCPServer

    stream, _ = trio.testing.memory_stream_pair()
    server = TCPServer(None, Config(), WorkerContext(None), {}, stream)  # type: ignore[arg-type]
    assert server.stream is stream
    w = await wired(send=server.protocol_send)
    assert w.stream.send.__self__.send == server.protocol_send
    assert _internals._tcp_server_of(w.stream.app_send) is server


def test_tcp_server_protocol_send_shields_the_write() -> None:
    """What :func:`_internals.abort` wakes: a shielded ``send_all`` that handles
    ``ClosedResourceError`` as a closed connection."""
    from hypercorn.trio.tcp_server import TCPServer

    source = inspect.getsource(TCPServer.protocol_send)
    assert "shield = True" in source
    assert "send_all" in source
    assert "ClosedResourceError" in source


async def test_abort_closes_the_tcp_servers_socket() -> None:
    from hypercorn.trio.tcp_server import TCPServer

    listener = trio.socket.socket()
    with listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = trio.socket.socket()
        with client:
            await client.connect(listener.getsockname())
            accepted_sock, _ = await listener.accept()
            stream = trio.SocketStream(accepted_sock)
            server = TCPServer(None, Config(), WorkerContext(None), {}, stream)  # type: ignore[arg-type]
            w = await wired(send=server.protocol_send)
            assert _internals.abort(w.stream.app_send) is True
            assert accepted_sock.fileno() == -1
            with pytest.raises(ConnectionResetError):
                await client.recv(1)


def test_tcp_server_keep_alive_timer_is_a_stoppable_idle_task() -> None:
    """``ServedTCPServer._read_data`` stops ``idle_task`` once Hypercorn's read loop ended."""
    from hypercorn.trio.tcp_server import TCPServer
    from hypercorn.trio.worker_context import TrioSingleTask

    stream, _ = trio.testing.memory_stream_pair()
    server = TCPServer(None, Config(), WorkerContext(None), {}, stream)  # type: ignore[arg-type]
    assert isinstance(server.idle_task, TrioSingleTask)
    assert inspect.iscoroutinefunction(TrioSingleTask.stop)
    assert "idle_task.restart" in inspect.getsource(TCPServer.run)
    assert "await self._read_data()" in inspect.getsource(TCPServer.run)
    assert _internals.ServedTCPServer._read_data is not TCPServer._read_data


def test_served_protocol_wrapper_creates_served_protocols() -> None:
    """HTTP/2 by ALPN is :class:`ServedH2Protocol` (prior knowledge and ``h2c`` go through the
    rebound ``handle``: ``tests/test_h2_leavers.py``); HTTP/1.1 is ``ServedH11Protocol``."""
    from hypercorn.protocol.h2 import StreamBuffer

    stream, _ = trio.testing.memory_stream_pair()
    args = (None, Config(), WorkerContext(None), None, {}, False, None, None, stream)
    h2 = _internals._served_protocol(*args, alpn_protocol="h2")
    h11 = _internals._served_protocol(*args, alpn_protocol="http/1.1")
    assert type(h2.protocol) is _internals.ServedH2Protocol
    assert type(h11.protocol) is _internals.ServedH11Protocol
    assert h2.protocol.stream_buffers == {}
    assert inspect.iscoroutinefunction(StreamBuffer.close)
    source = inspect.getsource(StreamBuffer.close)
    assert "_is_empty.set()" in source
    assert "_paused.set()" in source


# -- the data plane's handover (HypercornHandover, find_handover) ----------------------------------


def test_tcp_server_rereads_protocol_on_every_read_and_close() -> None:
    """The takeover puts the data plane in ``TCPServer.protocol`` before the 101 is written."""
    from hypercorn.trio.tcp_server import TCPServer

    source = inspect.getsource(TCPServer._read_data)
    assert "await self.protocol.handle(RawData(" in source
    assert "await self.protocol.handle(Closed())" in source
    assert "self.protocol = ProtocolWrapper(" in inspect.getsource(TCPServer.run)


async def test_protocol_wrapper_attribute_protocol_is_the_h11_protocol() -> None:
    from hypercorn.protocol.h11 import H11Protocol

    w = await wired()
    assert isinstance(w.protocol.protocol, H11Protocol)
    assert w.stream.send.__self__ is w.protocol.protocol


def test_tcp_server_attributes_stream_and_config_read_timeout() -> None:
    from hypercorn.trio.tcp_server import TCPServer

    stream, _ = trio.testing.memory_stream_pair()
    config = Config()
    server = TCPServer(None, config, WorkerContext(None), {}, stream)  # type: ignore[arg-type]
    assert server.stream is stream
    assert server.config is config
    assert config.read_timeout is None


async def test_task_group_app_put_is_a_trio_memory_channel_send() -> None:
    from hypercorn.trio.task_group import TaskGroup

    got: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any, sync_spawn: Any, call_soon: Any) -> None:
        got.append(receive)

    async def send(message: Any) -> None:
        pass

    async with TaskGroup() as task_group:
        put = await task_group.spawn_app(app, Config(), {}, send)  # type: ignore[arg-type]
        assert isinstance(put.__self__, trio.MemorySendChannel)
    assert got[0].__func__ is trio.MemoryReceiveChannel.receive


async def test_task_group_spawn_starts_a_task() -> None:
    from hypercorn.trio.task_group import TaskGroup

    ran = trio.Event()

    async def task() -> None:
        ran.set()

    async with TaskGroup() as task_group:
        task_group.spawn(task)
    assert ran.is_set()
    w = await wired()
    assert w.stream.task_group is w.task_group


async def test_wsproto_connection_proto_is_its_frame_protocol() -> None:
    from wsproto.frame_protocol import FrameProtocol

    w, _ = await accepted()
    proto = w.stream.connection._proto
    assert isinstance(proto, FrameProtocol)
    for name in ("send_data", "receive_bytes", "received_frames", "close", "ping", "pong"):
        assert callable(getattr(proto, name))
    assert proto.extensions == []


async def test_trio_socket_sock_is_the_stdlib_socket() -> None:
    import socket as stdlib_socket

    sock = trio.socket.socket()
    with sock:
        assert isinstance(sock._sock, stdlib_socket.socket)  # type: ignore[attr-defined]
        assert sock._sock.fileno() == sock.fileno()  # type: ignore[attr-defined]


async def test_find_handover_and_take_over() -> None:
    listener = trio.socket.socket()
    with listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = trio.socket.socket()
        with client:
            await client.connect(listener.getsockname())
            accepted_sock, _ = await listener.accept()
            await _check_handover(trio.SocketStream(accepted_sock), accepted_sock)
            accepted_sock.close()


async def tls_pair() -> tuple[trio.SSLStream[Any], trio.SSLStream[Any]]:
    """A server and a client ``trio.SSLStream`` over a socket pair, handshake done (the server
    is ``https_compatible`` like Hypercorn's TLS listener)."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("x").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    a, b = trio.socket.socketpair()
    server = trio.SSLStream(
        trio.SocketStream(a), server_context, server_side=True, https_compatible=True
    )
    client = trio.SSLStream(trio.SocketStream(b), client_context, server_hostname="x")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.do_handshake)
        nursery.start_soon(client.do_handshake)
    return server, client


async def test_find_handover_and_take_over_tls() -> None:
    """A ``trio.SSLStream`` (its ``transport_stream`` a SocketStream) takes the stream plane."""
    server, client = await tls_pair()
    async with server, client:
        await _check_handover(server, server.transport_stream.socket)  # type: ignore[attr-defined]


async def test_find_handover_refuses_a_stream_without_a_socket() -> None:
    from hypercorn.trio.tcp_server import TCPServer

    stream, _ = trio.testing.memory_stream_pair()
    server = TCPServer(None, Config(), WorkerContext(None), {}, stream)  # type: ignore[arg-type]
    w = await wired(send=server.protocol_send)
    server.protocol = w.protocol
    assert "not over a trio socket" in str(_internals.find_handover(w.stream.app_send))
    assert _internals.socket_under(stream) is None


async def test_tcp_server_close_is_quiet_after_the_stream_plane_closed_the_stream() -> None:
    """``TCPServer._close`` (``send_eof``, then ``aclose``) after the data plane closed the
    socket under an ``SSLStream`` and then the stream with ``trio.aclose_forcefully``."""
    from hypercorn.trio.tcp_server import TCPServer

    server_stream, client = await tls_pair()
    async with client:
        server = TCPServer(None, Config(), WorkerContext(None), {}, server_stream)  # type: ignore[arg-type]
        server_stream.transport_stream.socket.close()  # type: ignore[attr-defined]
        await trio.aclose_forcefully(server_stream)
        await server._close()


async def _check_handover(stream: Any, accepted_sock: Any) -> None:
    from hypercorn.protocol.ws_stream import ASGIWebsocketState
    from hypercorn.trio.tcp_server import TCPServer

    streamed = not isinstance(stream, trio.SocketStream)
    server = TCPServer(None, Config(), WorkerContext(None), {}, stream)  # type: ignore[arg-type]
    w = await wired(send=server.protocol_send)
    server.protocol = w.protocol
    # The fake task group's put is not a trio channel: the handover says so.
    assert "memory channel" in str(_internals.find_handover(w.stream.app_send))
    send_channel, _receive_channel = trio.open_memory_channel[Any](10)
    w.stream.app_put = send_channel.send
    found = _internals.find_handover(w.stream.app_send)
    assert not isinstance(found, str)
    hook, inbox, max_size = found
    assert inbox is send_channel
    assert max_size == Config().websocket_max_message_size
    assert hook.can_take_over()
    previous = hook.swap_in(None)  # type: ignore[arg-type]
    assert previous is w.protocol
    assert server.protocol is None
    hook.swap_out(previous)
    await hook.forward({"type": "websocket.accept"})
    assert w.stream.state is ASGIWebsocketState.CONNECTED
    parts = hook.take_over()
    assert parts is not None
    sock, raw, proto, _spawn, idle = parts
    assert idle is _wsproto_private.frame_protocol_idle
    assert sock is accepted_sock
    assert hook.streamed is streamed
    if streamed:
        assert raw is stream
    else:
        assert raw is accepted_sock._sock
    assert proto is w.stream.connection._proto
    assert w.stream.closed is True
    assert hook.take_over() is None  # closed: nothing to take


async def test_find_handover_refuses_what_it_does_not_cover() -> None:
    async def send(message: Any) -> None:
        pass

    assert "not a Hypercorn WSStream" in str(_internals.find_handover(send))
    w = await wired()  # the recording send is not a TCPServer's
    assert "TCPServer" in str(_internals.find_handover(w.stream.app_send))


async def test_frame_protocol_idle_reads_wsprotos_decoder_state() -> None:
    """``FrameProtocol._frame_decoder.header``/``.buffer`` and ``._message_decoder.opcode``."""
    from wsproto.frame_protocol import FrameProtocol

    client = FrameProtocol(True, [])
    server = FrameProtocol(False, [])
    assert _wsproto_private.frame_protocol_idle(server)
    frame = bytes(client.send_data(b"abc", True))
    server.receive_bytes(frame[:1])  # one header byte buffered
    assert list(server.received_frames()) == []
    assert not _wsproto_private.frame_protocol_idle(server)
    server.receive_bytes(frame[1:])
    assert len(list(server.received_frames())) == 1
    assert _wsproto_private.frame_protocol_idle(server)
    server.receive_bytes(bytes(client.send_data(b"first half", False)))
    assert len(list(server.received_frames())) == 1
    assert not _wsproto_private.frame_protocol_idle(server)  # a fragmented message in progress


# -- the rebound functions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "qualname", "name"),
    [
        ("hypercorn.trio.run", "worker_serve", "TCPServer"),
        ("hypercorn.trio.tcp_server", "TCPServer.run", "ProtocolWrapper"),
        ("hypercorn.protocol.h11", "H11Protocol._create_stream", "WSStream"),
    ],
)
def test_rebound_function_uses_the_global(module: str, qualname: str, name: str) -> None:
    import importlib

    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    assert name in target.__code__.co_names
    assert target.__closure__ is None
    assert _internals.rebound(target, name, object()).__code__ is target.__code__


def test_worker_serve_signature() -> None:
    from hypercorn.trio.run import worker_serve

    parameters = inspect.signature(worker_serve).parameters
    assert list(parameters)[:2] == ["app", "config"]
    assert {"shutdown_trigger", "task_status"} <= set(parameters)


def test_asgi_wrapper() -> None:
    from hypercorn.app_wrappers import ASGIWrapper

    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    assert ASGIWrapper(app).app is app


def test_protocol_wrapper_attribute_protocol_is_h11() -> None:
    from hypercorn.protocol.h11 import H11Protocol

    wrapper = _internals._served_protocol(
        None,
        Config(),
        WorkerContext(None),
        FakeTaskGroup(),
        ConnectionState({}),
        False,
        None,
        None,
        None,
    )
    assert type(wrapper.protocol) is _internals.ServedH11Protocol
    assert isinstance(wrapper.protocol, H11Protocol)


async def test_served_h11_protocol_creates_served_ws_streams() -> None:
    async def record(event: Any) -> None:
        pass

    served = _internals._served_protocol(
        None,
        Config(),
        WorkerContext(None),
        FakeTaskGroup(),
        ConnectionState({}),
        False,
        ("127.0.0.1", 5000),
        ("127.0.0.1", 8000),
        record,
    )
    await served.handle(RawData(UPGRADE + b"\r\n"))
    assert type(served.protocol.stream) is _internals.ServedWSStream
    assert type((await wired()).stream).__name__ == "WSStream"  # plain Hypercorn: untouched


async def test_h11_connection_after_an_upgrade_has_h11_connection_and_buffer() -> None:
    import h11

    w = await wired()
    connection = w.protocol.protocol.connection
    assert isinstance(connection.h11_connection, h11.Connection)
    assert connection.h11_connection.our_state is h11.SEND_RESPONSE
    assert connection.buffer == bytearray()


def test_request_event_is_a_dataclass_with_headers() -> None:
    import dataclasses

    from hypercorn.protocol.events import Request as HypercornRequest

    assert "headers" in {f.name for f in dataclasses.fields(HypercornRequest)}


@pytest.mark.parametrize("name", ["Body", "Data", "Request", "StreamClosed"])
def test_protocol_event(name: str) -> None:
    import hypercorn.protocol.events

    assert isinstance(getattr(hypercorn.protocol.events, name), type)


async def test_ws_stream_attribute_handshake_accepted_and_subprotocols() -> None:
    w = await wired(b"Sec-WebSocket-Protocol: a, b\r\n")
    assert w.stream.handshake.accepted is False
    assert w.stream.handshake.subprotocols == ["a", "b"]
    assert w.stream.scope["subprotocols"] is w.stream.handshake.subprotocols


async def test_stream_closed_from_the_stream_closes_the_connection() -> None:
    from hypercorn.events import Closed
    from hypercorn.protocol.events import StreamClosed

    w = await wired()
    await w.stream.send(StreamClosed(stream_id=w.stream.stream_id))
    assert any(isinstance(event, Closed) for event in w.sent)


async def test_served_tcp_server_contains_a_failing_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The firewall: plain ``TCPServer.run`` raises out of a non-ASCII header; ours returns."""
    from hypercorn.trio.tcp_server import TCPServer

    for server_class, raises in [(TCPServer, True), (_internals.ServedTCPServer, False)]:
        client, server_stream = trio.testing.memory_stream_pair()
        server_stream.socket = FakeSocket()  # type: ignore[attr-defined]
        config = Config()
        config.accesslog = None
        server = server_class(FakeApp(), config, WorkerContext(None), {}, server_stream)
        await client.send_all(
            UPGRADE.replace(b"Sec-WebSocket-Version", b"Sec-WebSocket-Protocol: \xff\r\nX")
            + b"\r\n"
        )
        with trio.fail_after(5):
            if raises:
                with pytest.raises(BaseExceptionGroup):
                    await server.run()
            else:
                await server.run()


class FakeSocket:
    family = socket.AF_INET

    def getpeername(self) -> tuple[str, int]:
        return ("127.0.0.1", 50000)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 8000)


class FakeApp:
    async def __call__(self, *args: Any) -> None:
        pass


# -- wsproto's PerMessageDeflate (CappedDeflate) --------------------------------------------------


@pytest.mark.parametrize(
    "name", ["_inbound_compressed", "_inbound_is_compressible", "_decompressor"]
)
def test_per_message_deflate_attribute(name: str) -> None:
    assert name in vars(PerMessageDeflate())


def test_per_message_deflate_inbound_steps_and_bookkeeping() -> None:
    """The steps CappedDeflate overrides, and what wsproto's complete step leaves behind."""
    from wsproto.frame_protocol import FrameProtocol, Opcode, RsvBits

    for name in ("frame_inbound_header", "frame_inbound_payload_data", "frame_inbound_complete"):
        assert name in vars(PerMessageDeflate)
    ext = PerMessageDeflate()
    assert isinstance(ext.accept("permessage-deflate; client_no_context_takeover"), str)
    proto = FrameProtocol(False, [ext])
    ext.frame_inbound_header(proto, Opcode.TEXT, RsvBits(True, False, False), 5)
    assert ext._inbound_compressed is True
    assert ext._inbound_is_compressible is True
    assert ext._decompressor is not None
    ext.frame_inbound_complete(proto, True)
    assert ext._inbound_compressed is None
    assert ext._decompressor is None  # client_no_context_takeover: a fresh context next time
