"""A trio-websocket server under Hypercorn: the handler unchanged, one serve line changed.

``echo_server`` is written exactly as trio-websocket's documentation writes its servers. With
trio-websocket alone it is served by::

    await serve_websocket(echo_server, "127.0.0.1", 8000, ssl_context=None)

Here the serve line is ``trio_ws.trio_websocket_app(echo_server)``, an ASGI app, so Hypercorn
serves it (TLS, HTTP on the same port, several workers)::

    python3 -m hypercorn -k trio --bind 127.0.0.1:8000 examples.trio_websocket_echo:app

or, with trio_ws's draining server, ``python3 -m examples.trio_websocket_echo``.
"""

from __future__ import annotations

import trio
from trio_websocket import ConnectionClosed, WebSocketRequest

import trio_ws


async def echo_server(request: WebSocketRequest) -> None:
    ws = await request.accept()
    while True:
        try:
            message = await ws.get_message()
            await ws.send_message(message)
        except ConnectionClosed:
            break


app = trio_ws.trio_websocket_app(echo_server)


async def main() -> None:
    await trio_ws.serve(app, host="127.0.0.1", port=8000)


if __name__ == "__main__":
    trio.run(main)
