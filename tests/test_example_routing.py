"""examples/routing.py served by real Hypercorn (trio worker), with real clients.

Real sockets, so the real clock: every wait is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

import httpx
import pytest
import trio

from examples.routing import app, rooms
from tests.hypercorn_harness import Rejected, hypercorn_server, trio_websocket_client
from tests.test_routing_hypercorn import http_url

TIMEOUT = 10.0


async def test_chat_room_members_hear_each_other_and_the_http_route_counts_them() -> None:
    with trio.fail_after(TIMEOUT):
        async with hypercorn_server(app) as url:
            async with trio_websocket_client(url + "/chat/lobby/alice") as alice:
                assert await alice.get_message() == "alice joined"
                async with trio_websocket_client(
                    url + "/chat/lobby/bob", [(b"origin", b"http://localhost:8000")]
                ) as bob:
                    assert await alice.get_message() == "bob joined"
                    assert await bob.get_message() == "bob joined"

                    async with httpx.AsyncClient(base_url=http_url(url)) as client:
                        info = (await client.get("/rooms/lobby")).json()
                        empty = (await client.get("/rooms/attic")).json()
                    assert info == {
                        "room": "lobby",
                        "members": 2,
                        "join": url + "/chat/lobby/YOUR-NAME",
                    }
                    assert empty["members"] == 0

                    await alice.send_message("hello, bob")
                    assert await alice.get_message() == "alice: hello, bob"
                    assert await bob.get_message() == "alice: hello, bob"
                assert await alice.get_message() == "bob left"
                # bob has left the room: only alice is counted.
                assert rooms.count("lobby") == 1


@pytest.mark.parametrize("origin", [b"https://evil.test", b"https://example.com"])
async def test_chat_refuses_unlisted_origins(origin: bytes) -> None:
    with trio.fail_after(TIMEOUT):
        async with hypercorn_server(app) as url:
            with pytest.raises(Rejected) as rejected:
                async with trio_websocket_client(url + "/chat/lobby/eve", [(b"origin", origin)]):
                    pytest.fail("the handshake should have been refused")  # pragma: no cover
            assert rejected.value.status == 403
            async with trio_websocket_client(
                url + "/chat/lobby/carol", [(b"origin", b"https://www.example.com")]
            ) as carol:
                assert await carol.get_message() == "carol joined"
