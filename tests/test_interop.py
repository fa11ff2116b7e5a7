"""The interop matrix: the same scenarios, each real client, real servers on 127.0.0.1.

One ASGI app (:func:`interop_app`) serves a route per scenario: WebSocket routes run by
``trio_ws.websocket_app`` and an HTTP route with the page that drives the browser. Each test is one
scenario, run once per client (the ``client`` fixture) and per server (the ``server`` fixture);
it asserts what the client saw (:class:`Seen`) and what the app saw (:class:`AppSaw`).
``docs/interop.rst`` is this file as a table; keep the two in step.

Servers (the ``server`` fixture):

``hypercorn``
    Plain ``hypercorn.trio.serve`` (``tests/hypercorn_harness.py``).
``trio_ws.serve``
    trio_ws's own server (Hypercorn plus a drain on shutdown and the client's real close codes),
    Expected values that differ by server: :func:`app_sees_client_close`, ``SHUTDOWN_CLOSE``.

Clients (the ``client`` fixture):

``trio-websocket``
    Over a TCP stream the test owns (``wrap_client_stream``): ``open_websocket_url`` leaks its
    socket when the server closes first (see ``test_session_hypercorn.py``).
``websockets``, ``aiohttp``, ``httpx-ws``
    Their blocking or asyncio APIs, in a worker thread (``trio.to_thread.run_sync``); every
    blocking call has its own timeout, since a thread cannot be cancelled.
``chromium``
    Debian's headless Chromium, one process for the whole test session, driven over the DevTools
    protocol (a trio-websocket connection per test): each test opens a tab on the app's
    ``/interop.html`` and evaluates ``talk(url, script)`` there, the page's own JavaScript using the
    browser's ``WebSocket``. Skipped only when ``/usr/bin/chromium`` is missing.

Every wait is bounded; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import selectors
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import httpx
import httpx_ws
import hypercorn.config
import pytest
import trio
import websockets.exceptions
import websockets.sync.client
import wsproto.events
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    wrap_client_stream,
)

import trio_ws
from tests.hypercorn_harness import hypercorn_server
from trio_ws import WebSocket, WebSocketDisconnect, WebSocketException

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Data = str | bytes

TIMEOUT = 5.0
"""Bound on each wait (a connection, a message, a close), in real seconds."""

GRACE = 0.5
"""The server's graceful shutdown timeout in the shutdown scenario."""

CLIENT_MAX_SIZE = 4 * 2**20
"""Every client's own message limit: above the 1 MiB echo (httpx-ws defaults to 64 KiB,
trio-websocket and ``websockets`` to exactly 1 MiB)."""

OVERSIZE_LIMIT = 1024
"""The ``max_message_size`` session option of the ``/oversize`` route."""

ONE_MIB = bytes(i % 251 for i in range(2**20))

ECHO_MESSAGES: tuple[Data, ...] = ("hello", "", b"\x00\x01\xfe\xff", b"", "héllo ✓", ONE_MIB)
"""Text and binary, empty frames of both kinds, non-ASCII text, and 1 MiB of binary."""

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
CHROMIUM_START_TIMEOUT = 30.0


# ============================================================================== the app side


@dataclass(eq=False)
class AppSaw:
    """What the app saw on one route (one connection)."""

    received: list[Data] = field(default_factory=list)
    deflate_offered: bool = False
    """Whether the client's handshake offered permessage-deflate (Hypercorn accepts it)."""
    disconnect: tuple[int, str] | None = None
    """The ``WebSocketDisconnect`` (code, reason) that reached the handler, if one did."""
    close: tuple[int | None, str, str | None] | None = None
    """After the session: ``(ws.close_code, ws.close_reason, ws.closed_by)``."""
    escaped: BaseException | None = None
    """What escaped the app to the server (``None``: the app returned)."""
    ended: trio.Event = field(default_factory=trio.Event)


@dataclass(eq=False)
class AppLog:
    """What the app saw, by path; ``waiting`` is set when ``/shutdown`` waits for the client."""

    routes: dict[str, AppSaw] = field(default_factory=dict)
    waiting: trio.Event = field(default_factory=trio.Event)

    def route(self, path: str) -> AppSaw:
        """The record of the (one) connection to ``path``."""
        return self.routes.setdefault(path, AppSaw())

    async def ended(self, path: str) -> AppSaw:
        """Wait (bounded) until the connection to ``path`` has ended; return what it saw."""
        saw = self.route(path)
        with trio.fail_after(TIMEOUT):
            await saw.ended.wait()
        return saw


async def echo_route(ws: WebSocket, saw: AppSaw) -> None:
    await ws.accept()
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1005), message.get("reason") or "")
        if message.get("text") is not None:
            saw.received.append(message["text"])
            await ws.send_text(message["text"])
        else:
            saw.received.append(message["bytes"])
            await ws.send_bytes(message["bytes"])


async def deny_route(ws: WebSocket, saw: AppSaw) -> None:
    await ws.deny(401, b"unauthorized")


async def app_close_route(ws: WebSocket, saw: AppSaw) -> None:
    await ws.accept()
    raise WebSocketException(4001, "bye")


async def client_close_route(ws: WebSocket, saw: AppSaw) -> None:
    await ws.accept()
    saw.received.append(await ws.receive_text())


async def error_route(ws: WebSocket, saw: AppSaw) -> None:
    await ws.accept()
    raise RuntimeError("boom")


def shutdown_route(log: AppLog) -> Callable[[WebSocket, AppSaw], Awaitable[None]]:
    async def route(ws: WebSocket, saw: AppSaw) -> None:
        await ws.accept()
        log.waiting.set()
        saw.received.append(await ws.receive_text())

    return route


async def oversize_route(ws: WebSocket, saw: AppSaw) -> None:
    await ws.accept()
    saw.received.append(await ws.receive_bytes())


def interop_app(log: AppLog) -> ASGIApp:
    """The app every test serves: a WebSocket route per scenario, plus ``GET /interop.html``."""
    routes: dict[str, Callable[[WebSocket, AppSaw], Awaitable[None]]] = {
        "/echo": echo_route,
        "/deny": deny_route,
        "/app-close": app_close_route,
        "/client-close": client_close_route,
        "/error": error_route,
        "/shutdown": shutdown_route(log),
        "/oversize": oversize_route,
    }

    async def handler(ws: WebSocket) -> None:
        saw = log.route(ws.scope["path"])
        try:
            await routes[ws.scope["path"]](ws, saw)
        except WebSocketDisconnect as exc:
            saw.disconnect = (exc.code, exc.reason)
            raise
        finally:
            sessions[ws.scope["path"]] = ws

    sessions: dict[str, WebSocket] = {}
    plain = trio_ws.websocket_app(handler)
    limited = trio_ws.websocket_app(handler, max_message_size=OVERSIZE_LIMIT)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/interop.html":
            await send_page(send)
            return
        if scope["type"] != "websocket":
            await plain(scope, receive, send)  # lifespan; 404 for other HTTP paths
            return
        path = scope["path"]
        saw = log.route(path)
        saw.deflate_offered = any(
            name == b"sec-websocket-extensions" and b"permessage-deflate" in value
            for name, value in scope["headers"]
        )
        try:
            await (limited if path == "/oversize" else plain)(scope, receive, send)
        except BaseException as exc:
            saw.escaped = exc
            raise
        finally:
            ws = sessions.get(path)
            if ws is not None:
                saw.close = (ws.close_code, ws.close_reason, ws.closed_by)
            saw.ended.set()

    return app


async def send_page(send: Send) -> None:
    body = PAGE_HTML.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                # No idle keep-alive connection left to hold up the server's shutdown.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


PAGE_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>trio_ws interop</title></head><body><script>
// talk(url, script) runs one conversation with the browser's WebSocket and resolves to what the
// browser saw: {status: null, body: null, replies: [...], code, reason}. Messages cross the
// DevTools protocol as {text: "..."} or {base64: "..."}.
function encode(data) {
  if (typeof data === "string") return {text: data};
  const bytes = new Uint8Array(data);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return {base64: btoa(binary)};
}
function decode(message) {
  if ("text" in message) return message.text;
  return Uint8Array.from(atob(message.base64), (c) => c.charCodeAt(0));
}
async function talk(url, script) {
  const seen = {status: null, body: null, replies: [], code: null, reason: null};
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const inbox = [];
  let wake = null;
  const closed = new Promise((resolve) => {
    ws.onclose = (event) => {
      seen.code = event.code;
      seen.reason = event.reason;
      resolve();
      if (wake) wake();
    };
  });
  ws.onmessage = (event) => {
    inbox.push(event.data);
    if (wake) wake();
  };
  const opened = await new Promise((resolve) => {
    ws.onopen = () => resolve(true);
    ws.onerror = () => resolve(false);
  });
  if (!opened) {
    await closed;
    return seen;
  }
  async function next() {
    while (inbox.length === 0) {
      if (ws.readyState === WebSocket.CLOSED) return null;
      await new Promise((resolve) => { wake = resolve; });
      wake = null;
    }
    return inbox.shift();
  }
  for (const message of script.send) {
    ws.send(decode(message));
    if (script.echo) {
      const reply = await next();
      if (reply === null) break;
      seen.replies.push(encode(reply));
    }
  }
  if (script.close !== null) ws.close(script.close[0], script.close[1]);
  for (let reply = await next(); reply !== null; reply = await next()) {
    seen.replies.push(encode(reply));
  }
  await closed;
  return seen;
}
</script></body></html>
"""


# ========================================================================== the servers


class Serve(Protocol):
    """Serve an app on 127.0.0.1 and yield its ``ws://`` URL; shut down on exit (or ``shutdown``)."""

    def __call__(
        self, app: ASGIApp, *, graceful_timeout: float = ..., shutdown: trio.Event | None = ...
    ) -> AbstractAsyncContextManager[str]: ...


def _serve_hypercorn(
    app: ASGIApp, *, graceful_timeout: float = 1.0, shutdown: trio.Event | None = None
) -> AbstractAsyncContextManager[str]:
    return hypercorn_server(app, graceful_timeout=graceful_timeout, shutdown=shutdown)


@asynccontextmanager
async def _serve_trio_ws(
    app: ASGIApp, *, graceful_timeout: float = 1.0, shutdown: trio.Event | None = None
) -> AsyncIterator[str]:
    """``trio_ws.serve`` (default options) on 127.0.0.1:0; like ``hypercorn_server``."""
    config = hypercorn.config.Config()
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = graceful_timeout
    trigger = trio.Event() if shutdown is None else shutdown
    finished = trio.Event()

    async def run(*, task_status: trio.TaskStatus[list[str]]) -> None:
        try:
            await trio_ws.serve(
                app, config=config, shutdown_trigger=trigger.wait, task_status=task_status
            )
        finally:
            finished.set()

    async with trio.open_nursery() as nursery:
        with trio.fail_after(TIMEOUT):
            urls: list[str] = await nursery.start(run)
        try:
            yield "ws://" + urls[0].removeprefix("http://")
        finally:
            trigger.set()
        with trio.fail_after(graceful_timeout + 2 * TIMEOUT):  # drain, then Hypercorn's own
            await finished.wait()


SERVERS: dict[str, Serve] = {"hypercorn": _serve_hypercorn, "trio_ws.serve": _serve_trio_ws}


def app_sees_client_close(server: str, code: int, reason: str) -> tuple[int, str]:
    """The ``WebSocketDisconnect`` (code, reason) the app gets when the client closes with
    ``code`` and ``reason``."""
    if server == "hypercorn":
        return (1006, "")  # Hypercorn drops the client's close frame (its issue #127)
    return (code, reason)  # trio_ws.serve reports the client's close frame


SHUTDOWN_CLOSE: dict[str, tuple[int, str]] = {
    # Hypercorn cancels the app at its graceful deadline: the session's shutdown_close_code.
    "hypercorn": (1012, ""),
    # trio_ws.serve drains first: every session closes with drain_close_code at once.
    "trio_ws.serve": (1001, "server shutting down"),
}


@pytest.fixture(params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> str:
    """The server's name (a key of ``SERVERS``)."""
    return str(request.param)


# ========================================================================== the clients


@dataclass(frozen=True)
class Script:
    """One conversation: send each message (reading one reply after each if ``echo``), then
    close with ``close`` or, if ``None``, read until the server closes."""

    send: tuple[Data, ...] = ()
    echo: bool = False
    close: tuple[int, str] | None = None


@dataclass
class Seen:
    """What a client saw: a refused handshake's HTTP status (and body, where the client shows
    it), or the messages and the close (code 1006: no close frame; ``None``: not observed)."""

    status: int | None = None
    body: bytes | None = None
    replies: list[Data] = field(default_factory=list)
    code: int | None = None
    reason: str | None = None


Talk = Callable[[str, Script], Awaitable[Seen]]


def _split(url: str) -> tuple[str, str, int, str]:
    """``ws://host:port/path`` -> (authority, host, port, /path)."""
    authority, _, path = url.removeprefix("ws://").partition("/")
    host, _, port = authority.rpartition(":")
    return authority, host, int(port), "/" + path


# --------------------------------------------------------------------------- trio-websocket


class _Rejected(Exception):
    def __init__(self, rejection: ConnectionRejected) -> None:
        super().__init__(rejection.status_code)
        self.rejection = rejection


@asynccontextmanager
async def open_trio_websocket(
    url: str, *, max_message_size: int = CLIENT_MAX_SIZE
) -> AsyncIterator[WebSocketConnection]:
    """trio-websocket over a TCP stream this test owns and always closes.

    Raises:
        _Rejected: The server refused the handshake.
    """
    authority, host, port, path = _split(url)
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(host, port)
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(TIMEOUT):
                ws = await wrap_client_stream(
                    nursery, stream, authority, path, max_message_size=max_message_size
                )
            try:
                yield ws
            finally:
                with trio.fail_after(TIMEOUT):
                    await ws.aclose()
    except BaseExceptionGroup as group:  # the reader task raised ConnectionRejected
        rejected, rest = group.split(ConnectionRejected)
        if rejected is None or rest is not None:
            raise
        leaf = rejected.exceptions[0]
        assert isinstance(leaf, ConnectionRejected)
        raise _Rejected(leaf) from None
    finally:
        await trio.aclose_forcefully(stream)


async def talk_trio_websocket(url: str, script: Script) -> Seen:
    seen = Seen()
    try:
        async with open_trio_websocket(url) as ws:
            with trio.fail_after(TIMEOUT):
                try:
                    for data in script.send:
                        await ws.send_message(data)
                        if script.echo:
                            seen.replies.append(await ws.get_message())
                    if script.close is not None:
                        await ws.aclose(*script.close)
                    while True:
                        seen.replies.append(await ws.get_message())
                except ConnectionClosed as exc:
                    closed = exc.reason
                    seen.code = 1006 if closed is None else closed.code
                    seen.reason = "" if closed is None else closed.reason or ""
    except _Rejected as exc:
        return Seen(status=exc.rejection.status_code, body=exc.rejection.body)
    return seen


# ------------------------------------------------------------------------------- websockets


def _talk_websockets_sync(url: str, script: Script) -> Seen:
    seen = Seen()
    try:
        with websockets.sync.client.connect(
            url,
            open_timeout=TIMEOUT,
            close_timeout=TIMEOUT,
            max_size=CLIENT_MAX_SIZE,
            proxy=None,
        ) as ws:
            try:
                for data in script.send:
                    ws.send(data)
                    if script.echo:
                        seen.replies.append(ws.recv(timeout=TIMEOUT))
                if script.close is not None:
                    ws.close(*script.close)
                while True:
                    seen.replies.append(ws.recv(timeout=TIMEOUT))
            except websockets.exceptions.ConnectionClosed as exc:
                received = exc.rcvd
                seen.code = 1006 if received is None else received.code
                seen.reason = "" if received is None else received.reason
    except websockets.exceptions.InvalidStatus as exc:
        body = exc.response.body
        return Seen(status=exc.response.status_code, body=None if body is None else bytes(body))
    return seen


async def talk_websockets(url: str, script: Script) -> Seen:
    return await trio.to_thread.run_sync(_talk_websockets_sync, url, script)


# ---------------------------------------------------------------------------------- aiohttp


async def _talk_aiohttp_async(url: str, script: Script) -> Seen:
    seen = Seen()
    timeout = aiohttp.ClientWSTimeout(ws_receive=TIMEOUT, ws_close=TIMEOUT)
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, timeout=timeout, max_msg_size=CLIENT_MAX_SIZE) as ws:
                for data in script.send:
                    if isinstance(data, str):
                        await ws.send_str(data)
                    else:
                        await ws.send_bytes(data)
                    if script.echo:
                        reply = await ws.receive()
                        if reply.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                            raise AssertionError(f"expected an echo, got {reply!r}")
                        seen.replies.append(reply.data)
                if script.close is not None:
                    # close() sends the close frame and waits for the server's; the code it
                    # shows afterwards is the server's.
                    await ws.close(code=script.close[0], message=script.close[1].encode())
                    seen.code, seen.reason = ws.close_code, None
                    return seen
                while True:
                    message = await ws.receive()
                    if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        seen.replies.append(message.data)
                    elif message.type is aiohttp.WSMsgType.CLOSE:
                        seen.code, seen.reason = message.data, message.extra or ""
                        return seen
                    else:  # CLOSED or ERROR: the connection ended without a close frame
                        seen.code, seen.reason = ws.close_code, ""
                        return seen
        except aiohttp.WSServerHandshakeError as exc:
            return Seen(status=exc.status)  # aiohttp does not keep the response body


def _talk_aiohttp_sync(url: str, script: Script) -> Seen:
    async def bounded() -> Seen:
        return await asyncio.wait_for(_talk_aiohttp_async(url, script), 4 * TIMEOUT)

    return asyncio.run(bounded())


async def talk_aiohttp(url: str, script: Script) -> Seen:
    return await trio.to_thread.run_sync(_talk_aiohttp_sync, url, script)


# --------------------------------------------------------------------------------- httpx-ws


def _talk_httpx_ws_sync(url: str, script: Script) -> Seen:
    seen = Seen()
    http_url = "http://" + url.removeprefix("ws://")
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as client:
        try:
            with httpx_ws.connect_ws(
                http_url,
                client,
                max_message_size_bytes=CLIENT_MAX_SIZE,
                keepalive_ping_interval_seconds=None,
                session_class=httpx_ws.WebSocketSession,
            ) as ws:
                try:
                    for data in script.send:
                        if isinstance(data, str):
                            ws.send_text(data)
                        else:
                            ws.send_bytes(data)
                        if script.echo:
                            seen.replies.append(_httpx_ws_data(ws.receive(timeout=TIMEOUT)))
                    if script.close is not None:
                        # close() sends the close frame and closes the socket at once: the
                        # server's close frame is never read.
                        ws.close(*script.close)
                        return seen
                    while True:
                        seen.replies.append(_httpx_ws_data(ws.receive(timeout=TIMEOUT)))
                except httpx_ws.WebSocketDisconnect as exc:
                    seen.code, seen.reason = exc.code, exc.reason
        except httpx_ws.WebSocketUpgradeError as exc:
            response = exc.response
            try:
                body: bytes | None = response.content
            except httpx.ResponseNotRead:
                body = None
            return Seen(status=response.status_code, body=body)
    return seen


def _httpx_ws_data(event: wsproto.events.Event) -> Data:
    if isinstance(event, wsproto.events.TextMessage):
        return event.data
    if isinstance(event, wsproto.events.BytesMessage):
        return bytes(event.data)
    raise AssertionError(f"expected a message, got {event!r}")


async def talk_httpx_ws(url: str, script: Script) -> Seen:
    return await trio.to_thread.run_sync(_talk_httpx_ws_sync, url, script)


# --------------------------------------------------------------------------------- Chromium


@dataclass(frozen=True)
class Browser:
    """A running Chromium: its DevTools WebSocket URL (the browser target)."""

    devtools_url: str


def _read_devtools_url(process: subprocess.Popen[bytes], output: deque[bytes]) -> str:
    """Read Chromium's stderr until it prints the DevTools URL, within the start timeout."""
    assert process.stderr is not None
    fd = process.stderr.fileno()
    buffer = b""
    marker = b"DevTools listening on "
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        end = time.monotonic() + CHROMIUM_START_TIMEOUT
        while True:
            left = end - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise TimeoutError(f"Chromium did not start: {b''.join(output)!r}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"Chromium exited: {b''.join(output)!r}")
            output.append(chunk)
            buffer += chunk
            start = buffer.find(marker)
            if start >= 0 and b"\n" in buffer[start:]:
                line = buffer[start + len(marker) :].split(b"\n", 1)[0]
                return line.decode().strip()


@pytest.fixture(scope="session")
def chromium_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the whole session, with a fresh profile."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    output: deque[bytes] = deque(maxlen=64)
    drain: threading.Thread | None = None
    try:
        url = _read_devtools_url(process, output)
        assert process.stderr is not None
        stderr = process.stderr

        def drain_stderr() -> None:  # a full pipe would stall Chromium
            for chunk in iter(lambda: os.read(stderr.fileno(), 65536), b""):
                output.append(chunk)

        drain = threading.Thread(target=drain_stderr, name="chromium-stderr", daemon=True)
        drain.start()
        yield Browser(url)
    finally:
        process.terminate()
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(TIMEOUT)
        if drain is not None:
            drain.join(TIMEOUT)
        assert process.stderr is not None
        process.stderr.close()


class DevToolsError(Exception):
    """A DevTools command failed, or the page's script threw."""


@dataclass(eq=False)
class DevTools:
    """A minimal Chrome DevTools protocol client over one trio-websocket connection."""

    ws: WebSocketConnection
    events: list[dict[str, Any]] = field(default_factory=list)
    _last_id: int = 0

    async def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send a command (to a page when ``session`` is given) and return its result."""
        self._last_id += 1
        command: dict[str, Any] = {"id": self._last_id, "method": method, "params": params}
        if session is not None:
            command["sessionId"] = session
        await self.ws.send_message(json.dumps(command))
        while True:
            reply = json.loads(await self.ws.get_message())
            if reply.get("id") != self._last_id:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise DevToolsError(f"{method}: {reply['error']}")
            result: dict[str, Any] = reply["result"]
            return result

    async def wait_event(self, method: str, accept: Callable[[dict[str, Any]], bool]) -> None:
        """Wait for an event ``method`` whose params ``accept`` accepts."""
        while True:
            for event in self.events:
                if event.get("method") == method and accept(event.get("params", {})):
                    self.events.remove(event)
                    return
            self.events.append(json.loads(await self.ws.get_message()))


@asynccontextmanager
async def open_tab(browser: Browser, page_url: str) -> AsyncIterator[tuple[DevTools, str]]:
    """A new tab showing ``page_url`` (loaded); yields the client and the tab's session id."""
    async with open_trio_websocket(browser.devtools_url, max_message_size=64 * 2**20) as ws:
        devtools = DevTools(ws)
        with trio.fail_after(TIMEOUT):
            target = (await devtools.call("Target.createTarget", url="about:blank"))["targetId"]
        try:
            with trio.fail_after(TIMEOUT):
                attached = await devtools.call(
                    "Target.attachToTarget", targetId=target, flatten=True
                )
                session: str = attached["sessionId"]
                await devtools.call("Page.enable", session)
                await devtools.call("Page.setLifecycleEventsEnabled", session, enabled=True)
                loader = (await devtools.call("Page.navigate", session, url=page_url))["loaderId"]
                await devtools.wait_event(
                    "Page.lifecycleEvent",
                    lambda params: params.get("loaderId") == loader and params["name"] == "load",
                )
            yield devtools, session
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(TIMEOUT):
                await devtools.call("Target.closeTarget", targetId=target)


def _to_js(data: Data) -> dict[str, str]:
    if isinstance(data, str):
        return {"text": data}
    return {"base64": base64.b64encode(data).decode("ascii")}


def _from_js(message: dict[str, str]) -> Data:
    if "text" in message:
        return message["text"]
    return base64.b64decode(message["base64"])


def chromium_talker(browser: Browser) -> Talk:
    async def talk_chromium(url: str, script: Script) -> Seen:
        authority, _, _, _ = _split(url)
        js_script = {
            "send": [_to_js(data) for data in script.send],
            "echo": script.echo,
            "close": None if script.close is None else list(script.close),
        }
        expression = f"talk({json.dumps(url)}, {json.dumps(js_script)})"
        async with open_tab(browser, f"http://{authority}/interop.html") as (devtools, session):
            with trio.fail_after(4 * TIMEOUT):
                evaluated = await devtools.call(
                    "Runtime.evaluate",
                    session,
                    expression=expression,
                    awaitPromise=True,
                    returnByValue=True,
                )
        if "exceptionDetails" in evaluated:
            raise DevToolsError(f"talk() threw: {evaluated['exceptionDetails']}")
        value = evaluated["result"]["value"]
        return Seen(
            status=value["status"],
            body=value["body"],
            replies=[_from_js(message) for message in value["replies"]],
            code=value["code"],
            reason=value["reason"],
        )

    return talk_chromium


# ------------------------------------------------------------------------------- the fixture

CLIENTS = ["trio-websocket", "websockets", "aiohttp", "httpx-ws", "chromium"]


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> tuple[str, Talk]:
    """``(name, talk)``: ``await talk(url, script)`` runs one conversation with that client."""
    name = str(request.param)
    talkers: dict[str, Talk] = {
        "trio-websocket": talk_trio_websocket,
        "websockets": talk_websockets,
        "aiohttp": talk_aiohttp,
        "httpx-ws": talk_httpx_ws,
    }
    if name == "chromium":
        return name, chromium_talker(request.getfixturevalue("chromium_browser"))
    return name, talkers[name]


# ============================================================================ the scenarios


def digest(messages: list[Data] | tuple[Data, ...]) -> list[tuple[str, int, str]]:
    """Messages as (type, length, hash): readable in a failed assertion, even with 1 MiB."""
    return [
        (
            type(data).__name__,
            len(data),
            hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:12],
        )
        for data in messages
    ]


@asynccontextmanager
async def serving(
    server: str, *, graceful_timeout: float = 1.0, shutdown: trio.Event | None = None
) -> AsyncIterator[tuple[str, AppLog]]:
    log = AppLog()
    async with SERVERS[server](
        interop_app(log), graceful_timeout=graceful_timeout, shutdown=shutdown
    ) as url:
        yield url, log


async def test_echo_text_and_binary(server: str, client: tuple[str, Talk]) -> None:
    """(1) Echo: text and binary, empty frames, non-ASCII text, 1 MiB of binary; the client then
    closes with 1000 and sees the server's 1000."""
    name, talk = client
    async with serving(server) as (url, log):
        seen = await talk(url + "/echo", Script(ECHO_MESSAGES, echo=True, close=(1000, "")))
        saw = await log.ended("/echo")
    assert digest(seen.replies) == digest(ECHO_MESSAGES)
    assert seen.status is None
    expected_close = {
        "aiohttp": (1000, None),  # close() shows the server's code, not its reason
        "httpx-ws": (None, None),  # close() does not wait for the server's close frame
    }
    assert (seen.code, seen.reason) == expected_close.get(name, (1000, ""))
    assert digest(saw.received) == digest(ECHO_MESSAGES)
    assert saw.deflate_offered == (name in ("websockets", "chromium"))
    assert saw.disconnect == app_sees_client_close(server, 1000, "")
    assert saw.escaped is None


async def test_denial_with_body(server: str, client: tuple[str, Talk]) -> None:
    """(2) ``ws.deny(401, b"unauthorized")``: an HTTP 401 response with that body."""
    name, talk = client
    async with serving(server) as (url, log):
        seen = await talk(url + "/deny", Script())
        saw = await log.ended("/deny")
    expected = {
        "trio-websocket": Seen(status=401, body=b"unauthorized"),
        "websockets": Seen(status=401, body=b"unauthorized"),
        "aiohttp": Seen(status=401),  # WSServerHandshakeError keeps no body
        "httpx-ws": Seen(status=401),  # the response is closed unread
        "chromium": Seen(code=1006, reason=""),  # a failed handshake, no status for scripts
    }
    assert seen == expected[name]
    assert saw.escaped is None
    assert saw.disconnect is None
    assert saw.close == (None, "", None)


async def test_app_closes_with_code_and_reason(server: str, client: tuple[str, Talk]) -> None:
    """(3) ``raise WebSocketException(4001, "bye")``: the client sees 4001 "bye"."""
    _, talk = client
    async with serving(server) as (url, log):
        seen = await talk(url + "/app-close", Script())
        saw = await log.ended("/app-close")
    assert seen == Seen(code=4001, reason="bye")
    assert saw.escaped is None
    assert saw.close == (4001, "bye", "application")


async def test_client_closes_with_code_and_reason(server: str, client: tuple[str, Talk]) -> None:
    """(4) The client closes with 4000 "done". Under plain Hypercorn the app sees 1006 and no
    reason (Hypercorn issue #127); what the client sees of the server's answering close frame
    depends on the client."""
    name, talk = client
    async with serving(server) as (url, log):
        seen = await talk(url + "/client-close", Script(close=(4000, "done")))
        saw = await log.ended("/client-close")
    expected = {
        "trio-websocket": Seen(code=4000, reason="done"),
        "websockets": Seen(code=4000, reason="done"),
        "aiohttp": Seen(code=4000),  # close() shows the server's code, not its reason
        "httpx-ws": Seen(),  # close() does not wait for the server's close frame
        "chromium": Seen(code=4000, reason="done"),
    }
    assert seen == expected[name]
    app_code, app_reason = app_sees_client_close(server, 4000, "done")
    assert saw.disconnect == (app_code, app_reason)
    assert saw.close == (app_code, app_reason, "client")
    assert saw.escaped is None


async def test_handler_error_closes_1011(server: str, client: tuple[str, Talk]) -> None:
    """(5) The handler raises: the client sees 1011; the error escapes to the server."""
    _, talk = client
    async with serving(server) as (url, log):
        seen = await talk(url + "/error", Script())
        saw = await log.ended("/error")
    assert seen == Seen(code=1011, reason="")
    assert isinstance(saw.escaped, RuntimeError)
    assert saw.close == (1011, "", "application")


async def test_server_shutdown(server: str, client: tuple[str, Talk]) -> None:
    """(6) Server shutdown: under plain Hypercorn the handler is cancelled at the graceful
    deadline and the client sees 1012; ``trio_ws.serve`` drains at once with 1001."""
    _, talk = client
    shutdown = trio.Event()
    seen: list[Seen] = []
    async with serving(server, graceful_timeout=GRACE, shutdown=shutdown) as (url, log):

        async def converse() -> None:
            seen.append(await talk(url + "/shutdown", Script()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(converse)
            with trio.fail_after(TIMEOUT):
                await log.waiting.wait()
            shutdown.set()
        saw = await log.ended("/shutdown")
    code, reason = SHUTDOWN_CLOSE[server]
    assert seen == [Seen(code=code, reason=reason)]
    assert isinstance(saw.escaped, trio.Cancelled)  # cancelled from outside, by the server
    assert saw.close == (code, reason, "application")


async def test_oversize_message_closes_1009(server: str, client: tuple[str, Talk]) -> None:
    """(7) ``max_message_size=1024`` and the client sends 2048 bytes: the client sees 1009."""
    _, talk = client
    async with serving(server) as (url, log):
        seen = await talk(url + "/oversize", Script((bytes(2048),)))
        saw = await log.ended("/oversize")
    reason = f"message of 2048 bytes exceeds {OVERSIZE_LIMIT}"
    assert seen == Seen(code=1009, reason=reason)
    assert saw.disconnect == (1009, reason)
    assert saw.close == (1009, reason, "application")
    assert saw.received == []
    assert saw.escaped is None
