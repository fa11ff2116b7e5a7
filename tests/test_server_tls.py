"""``trio_ws.serve`` over TLS (``wss://``, certificates from ``trustme``): echo, the drain on
shutdown, the abort of a client that stopped reading, and a bad handshake; each connection is
carried by serve's data plane (``tests/test_dataplane_tls.py`` has the data plane's own cases).

Every wait is bounded by ``trio.fail_after``; the real clock runs (real sockets).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import h2.config
import h2.connection
import pytest
import trio
import trustme
from hypercorn.config import Config
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_client_stream

from tests.test_h2_leavers import make_http_app
from tests.test_handshake_serve import UPGRADE, count_tasks, leave_early, task_names
from tests.test_server import make_app, serving

TIMEOUT = 5.0


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_config(ca: trustme.CA, tmp_path: Path, graceful_timeout: float) -> Config:
    """A Hypercorn config serving TLS on 127.0.0.1 (a free port) with a certificate of ``ca``."""
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(pem)
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.certfile = str(pem)
    config.keyfile = str(pem)
    config.graceful_timeout = graceful_timeout
    config.accesslog = None
    return config


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    """A client TLS context that trusts ``ca``."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def tls_config(ca: trustme.CA, tmp_path: Path) -> Config:
    return server_config(ca, tmp_path, graceful_timeout=3.0)


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    return trusting(ca)


def port_of(urls: list[str]) -> int:
    assert urls[0].startswith("https://127.0.0.1:")
    return int(urls[0].rsplit(":", 1)[1])


@asynccontextmanager
async def wss_client(
    port: int, path: str, context: ssl.SSLContext
) -> AsyncIterator[WebSocketConnection]:
    """A trio-websocket client over TLS on a stream the test owns and always closes."""
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_ssl_over_tcp_stream("127.0.0.1", port, ssl_context=context)
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(TIMEOUT):
                ws = await wrap_client_stream(nursery, stream, f"127.0.0.1:{port}", path)
            try:
                yield ws
            finally:
                with trio.fail_after(TIMEOUT):
                    await ws.aclose()
    finally:
        await trio.aclose_forcefully(stream)


async def assert_wss_echo(port: int, context: ssl.SSLContext) -> None:
    async with wss_client(port, "/echo", context) as ws:
        with trio.fail_after(TIMEOUT):
            await ws.send_message("over tls")
            assert await ws.get_message() == "over tls"


async def test_wss_echo(tls_config: Config, client_context: ssl.SSLContext) -> None:
    app, probe = make_app()
    async with serving(app, config=tls_config) as running:
        await assert_wss_echo(port_of(running.urls), client_context)
        await running.stop()
    assert probe.lifespan == ["startup", "shutdown"]
    assert probe.data_plane == [True]  # TLS takes serve's data plane


async def test_wss_without_the_data_plane(
    tls_config: Config, client_context: ssl.SSLContext
) -> None:
    app, probe = make_app()
    async with serving(app, config=tls_config, data_plane=False) as running:
        await assert_wss_echo(port_of(running.urls), client_context)
        await running.stop()
    assert probe.data_plane == [False]


async def test_wss_drain_closes_sessions_with_1001(
    tls_config: Config, client_context: ssl.SSLContext
) -> None:
    app, probe = make_app()
    async with serving(app, config=tls_config) as running:
        async with wss_client(port_of(running.urls), "/hold", client_context) as ws:
            with trio.fail_after(TIMEOUT):
                assert await ws.get_message() == "ready"
            elapsed = await running.stop()
            with pytest.raises(ConnectionClosed) as info, trio.fail_after(TIMEOUT):
                await ws.get_message()
    closed = info.value.reason
    assert closed is not None
    assert (closed.code, closed.reason) == (1001, "server shutting down")
    assert elapsed < 1.0
    assert probe.data_plane == [True]


async def test_wss_stalled_reader_is_aborted_at_shutdown(
    tls_config: Config, client_context: ssl.SSLContext
) -> None:
    app, probe = make_app()
    async with serving(app, config=tls_config, drain_seconds=0.5) as running:
        port = port_of(running.urls)
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        with trio.fail_after(TIMEOUT):
            await sock.connect(("127.0.0.1", port))
        stream = trio.SSLStream(
            trio.SocketStream(sock), client_context, server_hostname="127.0.0.1"
        )
        try:
            with trio.fail_after(TIMEOUT):
                await stream.send_all(UPGRADE.replace(b"/echo", b"/flood") + b"\r\n")
                head = b""
                while b"\r\n\r\n" not in head:
                    head += await stream.receive_some(1)
            assert head.startswith(b"HTTP/1.1 101")
            # Never read again; wait until the app's send has been stuck for a while.
            with trio.fail_after(TIMEOUT):
                stuck: tuple[int, float] | None = None
                while True:
                    if probe.sends_started > probe.sends_done:
                        if stuck is None or stuck[0] != probe.sends_done:
                            stuck = (probe.sends_done, trio.current_time())
                        elif trio.current_time() - stuck[1] > 0.3:
                            break
                    await trio.sleep(0.02)  # the real clock has to pass to see it stuck
            await assert_wss_echo(port, client_context)
            elapsed = await running.stop()
        finally:
            await trio.aclose_forcefully(stream)
    assert elapsed < 0.5 + 1.0
    assert probe.lifespan == ["startup", "shutdown"]
    assert probe.data_plane == [True, True]  # the stalled client and the echo


async def test_wss_bad_handshake_gets_400_and_the_server_keeps_serving(
    tls_config: Config, client_context: ssl.SSLContext
) -> None:
    app, probe = make_app()
    async with serving(app, config=tls_config) as running:
        port = port_of(running.urls)
        with trio.fail_after(TIMEOUT):
            stream = await trio.open_ssl_over_tcp_stream(
                "127.0.0.1", port, ssl_context=client_context
            )
            async with stream:
                await stream.send_all(UPGRADE + b"Content-Length: 5\r\n\r\nhello")
                answer = b""
                try:
                    while chunk := await stream.receive_some():
                        answer += chunk
                except trio.BrokenResourceError:
                    pass  # a TLS close without close_notify
        assert answer.startswith(b"HTTP/1.1 400 ")
        await assert_wss_echo(port, client_context)
    assert probe.data_plane == [True]


@pytest.mark.parametrize(
    ("over_tls", "sent"),
    [(False, b""), (False, bytes.fromhex("160301020001")), (True, b""), (True, UPGRADE)],
    ids=["no-bytes", "cut-off-client-hello", "tls-handshake-only", "tls-then-cut-off-request"],
)
async def test_a_tls_client_that_leaves_early_leaves_no_task(
    over_tls: bool, sent: bytes, tls_config: Config, client_context: ssl.SSLContext
) -> None:
    """The same kind as ``test_handshake_serve``'s early leavers, over TLS: before, during and
    after the TLS handshake, the connection's task ends with the connection (well inside
    Hypercorn's ``keep_alive_timeout``)."""
    app, _ = make_app()
    async with serving(app, config=tls_config) as running:
        port = port_of(running.urls)
        await assert_wss_echo(port, client_context)
        await trio.sleep(0.1)
        baseline = count_tasks()
        if over_tls:  # ``sent`` goes after the TLS handshake
            with trio.fail_after(TIMEOUT):
                stream = await trio.open_ssl_over_tcp_stream(
                    "127.0.0.1", port, ssl_context=client_context
                )
                await stream.do_handshake()
                if sent:
                    await stream.send_all(sent)
                await trio.sleep(0.05)
            await trio.aclose_forcefully(stream.transport_stream)
        else:
            await leave_early(port, sent, reset=False)
        with trio.move_on_after(1.0):
            while count_tasks() > baseline:  # noqa: ASYNC110 - tasks have no event
                await trio.sleep(0.01)
        assert count_tasks() <= baseline, task_names()
        await assert_wss_echo(port, client_context)


async def test_an_h2_peer_over_tls_that_leaves_before_its_answer_leaves_no_task(
    tls_config: Config, client_context: ssl.SSLContext
) -> None:
    """ALPN ``h2`` (what browsers use): the HTTP/2 protocol that ``serve`` creates for it ends
    the app's sends with the connection (``tests/test_h2_leavers.py`` has the cleartext cases)."""
    done: list[str] = []
    client_context.set_alpn_protocols(["h2"])
    async with serving(make_http_app(0.3, b"x", done), config=tls_config) as running:
        await trio.sleep(0.1)
        baseline = count_tasks()
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.send_headers(
            1,
            [(":method", "GET"), (":path", "/"), (":scheme", "https"), (":authority", "x")],
            end_stream=True,
        )
        with trio.fail_after(TIMEOUT):
            stream = await trio.open_ssl_over_tcp_stream(
                "127.0.0.1", port_of(running.urls), ssl_context=client_context
            )
            await stream.do_handshake()
            assert stream.selected_alpn_protocol() == "h2"
            await stream.send_all(conn.data_to_send())
            await trio.sleep(0.05)
        await trio.aclose_forcefully(stream.transport_stream)
        with trio.move_on_after(2.0):
            while count_tasks() > baseline:  # noqa: ASYNC110 - tasks have no event
                await trio.sleep(0.01)
        assert count_tasks() <= baseline, "\n".join(task_names())
    assert done == ["2"]
