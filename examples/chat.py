"""Chat rooms on :mod:`trio_ws.broadcast`, with the page that uses them served by the same app.

``GET /`` is a small HTML page; ``ws://HOST/ws/{room}?name=NAME`` joins a room. Every text a
member sends reaches every member of the room (the sender included) as JSON:
``{"room": ..., "user": ..., "text": ...}``, with ``"event": "join"`` or ``"leave"`` for
arrivals and departures.

The hub is opened in the app's lifespan and reached from handlers as ``ws.state.hub``. In memory
by default (one process); set ``TRIO_WS_BROADCAST_URL`` to a Redis URL to share rooms between
worker processes and hosts::

    python3 -m hypercorn -k trio --bind 127.0.0.1:8000 examples.chat:app
    TRIO_WS_BROADCAST_URL=redis://127.0.0.1:6379/0 \\
        python3 -m hypercorn -k trio -w 2 --bind 127.0.0.1:8000 examples.chat:app

then open http://127.0.0.1:8000/ in two browser tabs.

A member whose client stops reading falls behind by at most 256 messages; then its
subscription overflows and the connection closes with 1008 "too slow" (the page reconnects).
Nobody else waits for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio_ws
from trio_ws import HTMLResponse, Request, Response, Route, Router, WebSocket, WebSocketRoute
from trio_ws.broadcast import BroadcastUnavailable, Hub, forward

#: The environment variable that switches the hub to Redis (unset or empty: in memory).
BROADCAST_URL_VARIABLE = "TRIO_WS_BROADCAST_URL"
MAX_TEXT = 2000


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[dict[str, Hub]]:
    """Open the hub for the server's lifetime; handlers find it as ``ws.state.hub``."""
    async with trio_ws.open_broadcast(os.environ.get(BROADCAST_URL_VARIABLE) or None) as hub:
        yield {"hub": hub}


async def chat(ws: WebSocket) -> None:
    """One member of a room, for as long as the connection lasts."""
    hub: Hub = ws.state.hub
    room = ws.path_params["room"]
    user = ws.query_params.get("name", "") or "anonymous"
    channel = f"chat:{room}"

    def event(**fields: str) -> str:
        return json.dumps({"room": room, "user": user[:32], **fields})

    await ws.accept()
    async with hub.subscribe(channel, max_backlog=256, on_overflow="close") as sub:
        ws.start_soon(forward, sub, ws)  # room -> this client, a helper task of the session
        try:
            await hub.publish(channel, event(event="join"))
            async for text in ws.iter_text():  # this client -> room; ends when it leaves
                await hub.publish(channel, event(text=text[:MAX_TEXT]))
            await hub.publish(channel, event(event="leave"))
        except BroadcastUnavailable:
            # Redis is down: tell this client; it may retry when the hub has reconnected.
            await ws.send_text(json.dumps({"error": "chat unavailable, try again later"}))


async def home(request: Request) -> Response:
    """``GET /``: the chat page."""
    return HTMLResponse(PAGE)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>trio_ws chat</title>
<style>body{font:15px sans-serif;max-width:40em;margin:2em auto}#log{height:20em;overflow:auto;
border:1px solid #ccc;padding:.5em;white-space:pre-wrap}</style></head>
<body><h1>trio_ws chat</h1>
<form id="join">Room <input id="room" value="lobby"> Name <input id="name" value="guest">
<button>Join</button></form>
<div id="log"></div>
<form id="say"><input id="text" size="50" autocomplete="off"> <button>Send</button></form>
<script>
let socket = null;
const log = (line) => { const el = document.getElementById("log");
  el.textContent += line + "\\n"; el.scrollTop = el.scrollHeight; };
function join(room, name) {
  if (socket) socket.close();
  const url = location.origin.replace(/^http/, "ws") + "/ws/" + encodeURIComponent(room)
    + "?name=" + encodeURIComponent(name);
  socket = new WebSocket(url);
  socket.onopen = () => log("joined " + room);
  socket.onmessage = (e) => { const m = JSON.parse(e.data);
    if (m.error) log("! " + m.error);
    else if (m.event) log("* " + m.user + " " + (m.event === "join" ? "joined" : "left"));
    else log(m.user + ": " + m.text); };
  socket.onclose = (e) => log("closed " + e.code + " " + e.reason);
}
document.getElementById("join").onsubmit = (e) => { e.preventDefault();
  join(document.getElementById("room").value, document.getElementById("name").value); };
document.getElementById("say").onsubmit = (e) => { e.preventDefault();
  const input = document.getElementById("text");
  if (socket && socket.readyState === 1) socket.send(input.value); input.value = ""; };
</script></body></html>
"""

app = Router(
    [
        Route("/", home),
        # A client that sends faster than the room takes its messages waits (TCP backpressure)
        # instead of being closed; big messages close with 1009.
        WebSocketRoute(
            "/ws/{room}", chat, name="chat", on_inbox_full="block", max_message_size=16 * 1024
        ),
    ],
    lifespan=lifespan,
)
