"""trio_ws.testing.open_server and the pytest plugin: real Hypercorn, real sockets, a real client.

Real sockets mean the real clock: every wait is bounded by ``trio.fail_after``. The client is
trio-websocket over a stream this module owns (``wrap_client_stream``), because
``open_websocket_url`` leaks its socket when the server closes first.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

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
from trio_ws.testing import LiveServer, open_server

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


async def test_open_server_yields_http_and_ws_base_urls_and_serves_real_clients() -> None:
    with trio.fail_after(LIMIT):
        async with open_server(app) as server:
            assert server == LiveServer(
                url=f"http://127.0.0.1:{server.port}",
                ws_url=f"ws://127.0.0.1:{server.port}",
                host="127.0.0.1",
                port=server.port,
            )
            async with ws_client(server.ws_url, "/echo", subprotocols=["v1"]) as ws:
                assert ws.subprotocol == "v1"
                await ws.send_message("hi")
                assert await ws.get_message() == "/echo: hi"
                await ws.send_message("")
                assert await ws.get_message() == "/echo: "


async def test_denial_reaches_the_client_as_an_http_response() -> None:
    with trio.fail_after(LIMIT):
        async with open_server(app) as server:
            with pytest.RaisesGroup(ConnectionRejected, allow_unwrapped=True) as info:
                async with ws_client(server.ws_url, "/deny"):
                    pass  # pragma: no cover
    rejected = (
        info.value if isinstance(info.value, ConnectionRejected) else info.value.exceptions[0]
    )
    assert isinstance(rejected, ConnectionRejected)
    assert rejected.status_code == 401
    assert rejected.body == b"who are you?"


async def test_server_is_gone_after_the_block() -> None:
    with trio.fail_after(LIMIT):
        async with open_server(app) as server:
            pass
        with pytest.raises(OSError):  # noqa: PT011 (refused: errno differs between systems)
            await trio.open_tcp_stream("127.0.0.1", server.port)


async def test_shutdown_with_a_client_still_connected_is_bounded() -> None:
    config = Config()
    config.graceful_timeout = 0.2
    with trio.fail_after(LIMIT):
        async with open_server(app, config=config) as server:
            stream = await trio.open_tcp_stream("127.0.0.1", server.port)
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
        async with open_server(app, config=config) as server:
            assert server.url.startswith("http://127.0.0.1:")
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
        async with open_server(app, host="::1") as server:
            assert (server.url, server.ws_url, server.host) == (
                f"http://[::1]:{server.port}",
                f"ws://[::1]:{server.port}",
                "::1",
            )
            stream = await trio.open_tcp_stream("::1", server.port)
            await trio.aclose_forcefully(stream)


async def test_the_blocks_own_error_propagates_unwrapped() -> None:
    with trio.fail_after(LIMIT):
        with pytest.raises(KeyError, match="from the test") as info:
            async with open_server(app):
                raise KeyError("from the test")
    assert info.type is KeyError


async def test_client_sees_close_1000_when_the_handler_returns() -> None:
    async def short(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text("one")

    with trio.fail_after(LIMIT):
        async with open_server(trio_ws.websocket_app(short)) as server:
            async with ws_client(server.ws_url) as ws:
                assert await ws.get_message() == "one"
                with pytest.raises(ConnectionClosed) as info:
                    await ws.get_message()
                assert info.value.reason.code == 1000


# --------------------------------------------------------------------------- the pytest plugin
# Each run is a subprocess: pytest cannot rewrite the asserts of a plugin module it finds
# already imported, and says so with a warning (an error here).


PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def pytest11_entry_points() -> dict[str, str]:
    """The ``pytest11`` entry points pyproject.toml declares."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is new in Python 3.11")
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    entry_points: dict[str, str] = project["entry-points"]["pytest11"]
    return entry_points


def install_entry_points(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make pyproject's ``pytest11`` entry points visible to the subprocess, as an installed
    trio_ws does: a distribution's metadata on ``PYTHONPATH``, without installing anything."""
    site = pytester.path / "site"
    dist_info = site / "trio_ws_entry_points-0.dist-info"
    dist_info.mkdir(parents=True)
    dist_info.joinpath("METADATA").write_text(
        "Metadata-Version: 2.1\nName: trio_ws_entry_points\nVersion: 0\n", encoding="utf-8"
    )
    lines = [f"{name} = {value}" for name, value in pytest11_entry_points().items()]
    dist_info.joinpath("entry_points.txt").write_text(
        "[pytest11]\n" + "\n".join(lines) + "\n", encoding="utf-8"
    )
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    )


SHOUT_TESTS = """
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
            async with hypercorn_server(trio_ws.websocket_app(shout)) as server:
                assert server.ws_url == f"ws://127.0.0.1:{server.port}"
                stream = await trio.open_tcp_stream(server.host, server.port)
                try:
                    async with trio.open_nursery() as nursery:
                        ws = await wrap_client_stream(nursery, stream, server.host, "/")
                        await ws.send_message("hi")
                        assert await ws.get_message() == "HI"
                        await ws.aclose()
                finally:
                    await trio.aclose_forcefully(stream)
"""


def test_pyproject_declares_the_plugin_under_its_module_name() -> None:
    assert pytest11_entry_points() == {
        "trio_ws.testing.pytest_plugin": "trio_ws.testing.pytest_plugin"
    }


def test_plugin_loads_from_its_entry_point_with_no_conftest(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_entry_points(pytester, monkeypatch)
    pytester.makeini("[pytest]\ntrio_mode = true\nfilterwarnings = error\n")
    pytester.makepyfile(SHOUT_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(passed=2)


def test_plugin_can_be_disabled_by_its_entry_point_name(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_entry_points(pytester, monkeypatch)
    pytester.makeini("[pytest]\ntrio_mode = true\nfilterwarnings = error\n")
    pytester.makepyfile(SHOUT_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:trio_ws.testing.pytest_plugin", timeout=60
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*fixture 'hypercorn_config' not found*"])


def test_plugin_from_a_conftest_line_without_the_entry_point(pytester: pytest.Pytester) -> None:
    """A source checkout that is not installed: one line in the root conftest.py."""
    pytester.makeini("[pytest]\ntrio_mode = true\nfilterwarnings = error\n")
    pytester.makeconftest('pytest_plugins = ["trio_ws.testing.pytest_plugin"]\n')
    pytester.makepyfile(SHOUT_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(passed=2)


def test_plugin_config_fixture_can_be_overridden(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the entry point and the old conftest line both: registered once, not twice."""
    install_entry_points(pytester, monkeypatch)
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
            async with hypercorn_server(app) as server:
                assert server.url == f"http://127.0.0.1:{server.port}"
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(passed=1)


def test_plugin_module_exports() -> None:
    # Imported here, not at the top: the runs above import it themselves, in a subprocess.
    from trio_ws.testing import pytest_plugin

    assert pytest_plugin.__all__ == ["HypercornServer", "hypercorn_config", "hypercorn_server"]


# --------------------------------------------------------------------------- the deprecated name


async def test_serve_app_is_deprecated_and_still_yields_the_ws_url() -> None:
    with pytest.deprecated_call(match=r"trio_ws\.testing\.serve_app is deprecated.*open_server"):
        manager = trio_ws.testing.serve_app(app)
    assert manager is not None
    with trio.fail_after(LIMIT):
        async with manager as base_url:
            assert base_url.startswith("ws://127.0.0.1:")
            async with ws_client(base_url, "/old") as ws:
                await ws.send_message("hi")
                assert await ws.get_message() == "/old: hi"


# --------------------------------------------------------------------------- shutdown_trigger


async def test_shutdown_trigger_starts_hypercorns_graceful_shutdown_inside_the_block() -> None:
    config = Config()
    config.graceful_timeout = 5
    trigger = trio.Event()
    with trio.fail_after(LIMIT):
        async with open_server(app, config=config, shutdown_trigger=trigger.wait) as server:
            async with ws_client(server.ws_url, "/echo") as ws:
                await ws.send_message("before")
                assert await ws.get_message() == "/echo: before"
                trigger.set()
                # Hypercorn stops accepting: a new connection is refused (or reset) soon.
                while True:
                    try:
                        stream = await trio.open_tcp_stream(server.host, server.port)
                    except OSError:
                        break
                    await trio.aclose_forcefully(stream)
                    await trio.sleep(0.01)
                # The open connection still works until the graceful deadline.
                await ws.send_message("during")
                assert await ws.get_message() == "/echo: during"


async def test_a_shutdown_trigger_that_never_fires_is_cancelled_on_exit() -> None:
    never = trio.Event()
    with trio.fail_after(LIMIT):
        async with open_server(app, shutdown_trigger=never.wait) as server:
            assert server.port > 0


@pytest.mark.parametrize(
    ("bound", "expected"),
    [
        ("http://127.0.0.1:8000", ("ws://127.0.0.1:8000", "127.0.0.1", 8000)),
        ("https://127.0.0.1:8443", ("wss://127.0.0.1:8443", "127.0.0.1", 8443)),
        ("https://[::1]:9", ("wss://[::1]:9", "::1", 9)),
    ],
)
def test_live_server_from_what_hypercorn_reports(
    bound: str, expected: tuple[str, str, int]
) -> None:
    """Hypercorn reports ``https://`` when the config has TLS: the WebSocket URL is ``wss://``."""
    server = LiveServer._from_bound(bound)
    assert server.url == bound
    assert (server.ws_url, server.host, server.port) == expected
