"""trio_ws.testing.serve_app and the pytest plugin: real Hypercorn, real sockets, a real client.

Real sockets mean the real clock: every wait is bounded by ``trio.fail_after``. The client is
trio-websocket over a stream this module owns (``wrap_client_stream``), because
``open_websocket_url`` leaks its socket when the server closes first.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import pytest
import trio
from hypercorn.config import Config
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    wrap_client_stream,
)

import trio_ws
from trio_ws import WebSocket
from trio_ws.testing import serve_app

pytest_plugins = ["pytester"]

LIMIT = 10


async def handler(ws: WebSocket) -> None:
    if ws.url.path == "/deny":
        await ws.deny(401, b"who are you?")
        return
    await ws.accept(subprotocol=ws.scope["subprotocols"][0] if ws.scope["subprotocols"] else None)
    async for text in ws.iter_text():
        await ws.send_text(f"{ws.url.path}: {text}")


app = trio_ws.websocket_app(handler)


@asynccontextmanager
async def ws_client(
    base_url: str, path: str = "/", *, subprotocols: Iterable[str] = ()
) -> AsyncIterator[WebSocketConnection]:
    """A trio-websocket client on a stream the test owns and always closes."""
    authority = base_url.removeprefix("ws://")
    host, _, port = authority.rpartition(":")
    stream = await trio.open_tcp_stream(host, int(port))
    try:
        async with trio.open_nursery() as nursery:
            ws = await wrap_client_stream(
                nursery, stream, authority, path, subprotocols=list(subprotocols)
            )
            try:
                yield ws
            finally:
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + LIMIT
                    await ws.aclose()
                nursery.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(stream)


def port_of(base_url: str) -> int:
    return int(base_url.rpartition(":")[2])


async def test_serve_app_yields_a_ws_base_url_and_serves_real_clients() -> None:
    with trio.fail_after(LIMIT):
        async with serve_app(app) as base_url:
            assert base_url.startswith("ws://127.0.0.1:")
            assert not base_url.endswith("/")
            async with ws_client(base_url, "/echo", subprotocols=["v1"]) as ws:
                assert ws.subprotocol == "v1"
                await ws.send_message("hi")
                assert await ws.get_message() == "/echo: hi"
                await ws.send_message("")
                assert await ws.get_message() == "/echo: "


async def test_denial_reaches_the_client_as_an_http_response() -> None:
    with trio.fail_after(LIMIT):
        async with serve_app(app) as base_url:
            with pytest.RaisesGroup(ConnectionRejected, allow_unwrapped=True) as info:
                async with ws_client(base_url, "/deny"):
                    pass  # pragma: no cover
    rejected = (
        info.value if isinstance(info.value, ConnectionRejected) else info.value.exceptions[0]
    )
    assert isinstance(rejected, ConnectionRejected)
    assert rejected.status_code == 401
    assert rejected.body == b"who are you?"


async def test_server_is_gone_after_the_block() -> None:
    with trio.fail_after(LIMIT):
        async with serve_app(app) as base_url:
            pass
        with pytest.raises(OSError):  # noqa: PT011 (refused: errno differs between systems)
            await trio.open_tcp_stream("127.0.0.1", port_of(base_url))


async def test_shutdown_with_a_client_still_connected_is_bounded() -> None:
    config = Config()
    config.graceful_timeout = 0.2
    with trio.fail_after(LIMIT):
        async with serve_app(app, config=config) as base_url:
            stream = await trio.open_tcp_stream("127.0.0.1", port_of(base_url))
            async with trio.open_nursery() as nursery:
                ws = await wrap_client_stream(nursery, stream, "127.0.0.1", "/")
                await ws.send_message("x")
                assert await ws.get_message() == "/: x"
                nursery.cancel_scope.cancel()
        # Hypercorn cancelled the app at its graceful deadline; the session closed with 1012.
        await trio.aclose_forcefully(stream)


async def test_the_given_config_is_copied_not_changed() -> None:
    config = Config()
    config.bind = ["0.0.0.0:9"]
    with trio.fail_after(LIMIT):
        async with serve_app(app, config=config) as base_url:
            assert base_url.startswith("ws://127.0.0.1:")
    assert config.bind == ["0.0.0.0:9"]


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
async def test_ipv6_host() -> None:
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:  # pragma: no cover
        pytest.skip("::1 is not available")
    with trio.fail_after(LIMIT):
        async with serve_app(app, host="::1") as base_url:
            assert base_url.startswith("ws://[::1]:")
            stream = await trio.open_tcp_stream("::1", port_of(base_url))
            await trio.aclose_forcefully(stream)


async def test_the_blocks_own_error_propagates_unwrapped() -> None:
    with trio.fail_after(LIMIT):
        with pytest.raises(KeyError, match="from the test") as info:
            async with serve_app(app):
                raise KeyError("from the test")
    assert info.type is KeyError


async def test_client_sees_close_1000_when_the_handler_returns() -> None:
    async def short(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("one")

    with trio.fail_after(LIMIT):
        async with serve_app(trio_ws.websocket_app(short)) as base_url:
            async with ws_client(base_url) as ws:
                assert await ws.get_message() == "one"
                with pytest.raises(ConnectionClosed) as info:
                    await ws.get_message()
                assert info.value.reason.code == 1000


# --------------------------------------------------------------------------- the pytest plugin
# Each run is a subprocess: pytest cannot rewrite the asserts of a plugin module it finds
# already imported, and says so with a warning (an error here).


def test_plugin_fixture_serves_the_test_app(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        trio_mode = true
        filterwarnings = error
        """
    )
    pytester.makeconftest('pytest_plugins = ["trio_ws.testing.pytest_plugin"]\n')
    pytester.makepyfile(
        """
        import trio
        from trio_websocket import wrap_client_stream

        import trio_ws


        async def shout(ws):
            await ws.accept()
            await ws.send_text((await ws.receive_text()).upper())


        def test_default_config(hypercorn_config):
            assert hypercorn_config.graceful_timeout == 1.0


        async def test_factory(hypercorn_server):
            with trio.fail_after(10):
                async with hypercorn_server(trio_ws.websocket_app(shout)) as base_url:
                    host, _, port = base_url.removeprefix("ws://").rpartition(":")
                    stream = await trio.open_tcp_stream(host, int(port))
                    try:
                        async with trio.open_nursery() as nursery:
                            ws = await wrap_client_stream(nursery, stream, host, "/")
                            await ws.send_message("hi")
                            assert await ws.get_message() == "HI"
                            await ws.aclose()
                    finally:
                        await trio.aclose_forcefully(stream)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(passed=2)


def test_plugin_config_fixture_can_be_overridden(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\nfilterwarnings = error\n")
    pytester.makeconftest(
        """
        import pytest
        from hypercorn.config import Config

        pytest_plugins = ["trio_ws.testing.pytest_plugin"]


        @pytest.fixture
        def hypercorn_config():
            config = Config()
            config.graceful_timeout = 0.1
            return config
        """
    )
    pytester.makepyfile(
        """
        import trio_ws


        async def handler(ws):
            await ws.accept()


        app = trio_ws.websocket_app(handler)


        async def test_factory_uses_it(hypercorn_server, hypercorn_config):
            assert hypercorn_config.graceful_timeout == 0.1
            async with hypercorn_server(app) as base_url:
                assert base_url.startswith("ws://127.0.0.1:")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(passed=1)


def test_plugin_module_exports() -> None:
    # Imported here, not at the top: the runs above import it themselves, in a subprocess.
    from trio_ws.testing import pytest_plugin

    assert pytest_plugin.__all__ == ["HypercornServer", "hypercorn_config", "hypercorn_server"]
