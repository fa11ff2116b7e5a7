"""Typed JSON messages with a fast codec: msgspec structs, validated as they arrive.

``ws://HOST/chat`` takes ``{"type": "join", "room": ...}`` and ``{"type": "say", "text": ...}``
messages, decoded straight into msgspec structs (``ws.iter_json(type=Message)``), and answers
``{"type": "said", "room": ..., "text": ...}``. A message that is not JSON, or not one of the two
shapes, closes the connection with 1007 and a reason that says so (``close_on_invalid_json``).
The router's ``json_codec`` makes msgspec encode and decode for every route below it.

Run it (from the repository root, with msgspec installed)::

    python3 -m hypercorn -k trio --bind 127.0.0.1:8000 examples.json_typed:app

then ``python3 -m websockets ws://127.0.0.1:8000/chat`` and type
``{"type": "join", "room": "lobby"}`` and ``{"type": "say", "text": "hi"}``.
"""

from __future__ import annotations

import msgspec

import trio_ws


class Join(msgspec.Struct, tag="join"):
    room: str


class Say(msgspec.Struct, tag="say"):
    text: str


class Said(msgspec.Struct, tag="said"):
    room: str
    text: str


Message = Join | Say


async def chat(ws: trio_ws.WebSocket) -> None:
    await ws.accept()
    room = "nowhere"
    async for message in ws.iter_json(type=Message):
        if isinstance(message, Join):
            room = message.room
        else:
            await ws.send_json(Said(room=room, text=message.text))


app = trio_ws.Router(
    [trio_ws.WebSocketRoute("/chat", chat, close_on_invalid_json=True)],
    json_codec=trio_ws.JSONCodec.msgspec(),
)
