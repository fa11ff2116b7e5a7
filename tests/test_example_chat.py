"""examples/chat.py and examples/ticker.py, served by the real Hypercorn command line.

Each server runs as a child process (as README's command runs it) with its log in a file; a
test fails on any traceback in that log. The chat is driven by trio-websocket clients and by
the page it serves, in headless Chromium (skipped only when /usr/bin/chromium is missing);
across two Hypercorn workers it shares rooms through a real redis-server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from tests.redis_server import RedisServer, free_port, redis_server
from tests.test_interop import Browser, chromium_browser, open_tab

__all__ = ["chromium_browser", "redis_server"]  # fixtures, imported for pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10.0
UPGRADE = {
    "connection": "upgrade",
    "upgrade": "websocket",
    "sec-websocket-version": "13",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
}

pytestmark = [
    # coredis 6.9 leaves the anyio memory streams of a failed connection for the collector.
    pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning"),
]


@asynccontextmanager
async def hypercorn_process(
    app: str, log: Path, *, workers: int = 1, env: dict[str, str] | None = None
) -> AsyncIterator[str]:
    """``python -m hypercorn -k trio [-w N] --bind 127.0.0.1:PORT app``; yields ``127.0.0.1:PORT``.

    On exit: SIGTERM, wait, then fail on any traceback in the log.
    """
    port = free_port()
    command = [sys.executable, "-m", "hypercorn", "-k", "trio", "-w", str(workers)]
    command += ["--bind", f"127.0.0.1:{port}", app]
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environment.pop("TRIO_WS_BROADCAST_URL", None) if env is None else None
    with log.open("wb") as out:
        process = await trio.lowlevel.open_process(
            command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        with trio.fail_after(30):
            while (text := await trio.Path(log).read_text()).count("Running on") < workers:
                assert process.poll() is None, text
                await trio.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        with trio.move_on_after(15) as waited:
            await process.wait()
        if waited.cancelled_caught:  # pragma: no cover
            process.kill()
            await process.wait()
    text = await trio.Path(log).read_text()
    assert "Traceback" not in text, text


async def next_event(ws: WebSocketConnection) -> dict[str, str]:
    with trio.fail_after(TIMEOUT):
        event: dict[str, str] = json.loads(await ws.get_message())
        return event


async def join(ws: WebSocketConnection, name: str) -> None:
    """Wait for this member's own join event: from then on it gets every message."""
    while True:
        event = await next_event(ws)
        if event.get("event") == "join" and event["user"] == name:
            return


async def test_chat_in_memory_rooms_page_and_departures(tmp_path: Path) -> None:
    async with hypercorn_process("examples.chat:app", tmp_path / "chat.log") as authority:
        async with httpx.AsyncClient() as http:
            page = await http.get(f"http://{authority}/")
        assert page.status_code == 200
        assert "new WebSocket" in page.text
        base = f"ws://{authority}/ws"
        async with open_websocket_url(f"{base}/blue?name=ann") as ann:
            await join(ann, "ann")
            async with (
                open_websocket_url(f"{base}/blue?name=bob") as bob,
                open_websocket_url(f"{base}/red?name=cy") as cy,
            ):
                await join(bob, "bob")
                await join(cy, "cy")
                assert await next_event(ann) == {"room": "blue", "user": "bob", "event": "join"}
                await bob.send_message("hi blue")
                expected = {"room": "blue", "user": "bob", "text": "hi blue"}
                assert await next_event(ann) == expected
                assert await next_event(bob) == expected
                await cy.send_message("hi red")
                assert await next_event(cy) == {"room": "red", "user": "cy", "text": "hi red"}
            assert await next_event(ann) == {"room": "blue", "user": "bob", "event": "leave"}


def wait_for_line(line: str) -> str:
    """A page script that resolves with the chat log once it shows ``line`` (5 s at most)."""
    return f"""new Promise((resolve, reject) => {{
        const end = Date.now() + 5000;
        const poll = () => {{
            const log = document.getElementById('log').textContent;
            if (log.includes({json.dumps(line)})) resolve(log);
            else if (Date.now() > end) reject(new Error(log));
            else setTimeout(poll, 20);
        }};
        poll();
    }})"""


async def test_chat_page_in_headless_chromium_talks_with_another_client(
    tmp_path: Path, chromium_browser: Browser
) -> None:
    async with hypercorn_process("examples.chat:app", tmp_path / "chat.log") as authority:
        async with open_websocket_url(f"ws://{authority}/ws/lobby?name=cli") as cli:
            await join(cli, "cli")
            async with open_tab(chromium_browser, f"http://{authority}/") as (devtools, session):

                async def evaluate(expression: str) -> object:
                    with trio.fail_after(TIMEOUT):
                        result = await devtools.call(
                            "Runtime.evaluate",
                            session,
                            expression=expression,
                            awaitPromise=True,
                            returnByValue=True,
                        )
                    assert "exceptionDetails" not in result, result
                    return result["result"].get("value")

                # Fill in the form and join, as a user would.
                await evaluate(
                    "document.getElementById('name').value = 'web';"
                    "document.querySelector('#join button').click()"
                )
                assert await next_event(cli) == {"room": "lobby", "user": "web", "event": "join"}
                await evaluate(wait_for_line("* web joined"))  # the page's socket is open
                await evaluate(
                    "document.getElementById('text').value = 'hello from the page';"
                    "document.querySelector('#say button').click()"
                )
                assert await next_event(cli) == {
                    "room": "lobby",
                    "user": "web",
                    "text": "hello from the page",
                }
                await cli.send_message("hello, browser")
                log = await evaluate(wait_for_line("cli: hello, browser"))
                assert isinstance(log, str)
                assert "web: hello from the page" in log


async def test_chat_across_two_hypercorn_workers_on_redis(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """``TRIO_WS_BROADCAST_URL=redis://... hypercorn -k trio -w 2 examples.chat:app``."""
    env = {"TRIO_WS_BROADCAST_URL": redis_server.url}
    log = tmp_path / "chat.log"
    async with hypercorn_process("examples.chat:app", log, workers=2, env=env) as authority:
        names = [f"u{i}" for i in range(8)]
        async with trio.open_nursery() as nursery:
            members: dict[str, WebSocketConnection] = {}
            for name in names:
                ws = await nursery.start(_member, f"ws://{authority}/ws/room?name={name}")
                await join(ws, name)
                members[name] = ws
            for name in names:
                await members[name].send_message(f"from {name}")
            for name in names:
                texts = []
                while len(texts) < len(names):
                    event = await next_event(members[name])
                    if "text" in event:
                        texts.append(event["text"])
                assert sorted(texts) == sorted(f"from {n}" for n in names)
            nursery.cancel_scope.cancel()
    # Both workers served (each logs its own "Running on") and met through Redis.
    assert log.read_text().count("Running on") >= 2


async def _member(
    url: str, *, task_status: trio.TaskStatus[WebSocketConnection] = trio.TASK_STATUS_IGNORED
) -> None:
    async with open_websocket_url(url) as ws:
        task_status.started(ws)
        await trio.sleep_forever()


async def test_ticker_pushes_the_newest_price_and_skips_stale_ones(tmp_path: Path) -> None:
    async with hypercorn_process("examples.ticker:app", tmp_path / "ticker.log") as authority:
        url = f"ws://{authority}/ticker/trio"
        async with open_websocket_url(url) as ws:
            first = json.loads(await _get(ws))
            second = json.loads(await _get(ws))
            assert first["symbol"] == "TRIO"
            assert second["seq"] == first["seq"] + 1
            await trio.sleep(0.2)
            later = json.loads(await _get(ws))
            assert later["seq"] > second["seq"]
        # An unknown symbol is refused before accept (HTTP 403).
        async with httpx.AsyncClient() as http:
            refused = await http.get(f"http://{authority}/ticker/nope", headers=UPGRADE)
        assert refused.status_code == 403
        # Client gone: cancel_on_disconnect ended the handler (the log stays clean).


async def _get(ws: WebSocketConnection) -> str:
    with trio.fail_after(TIMEOUT):
        message = await ws.get_message()
    assert isinstance(message, str)
    return message
