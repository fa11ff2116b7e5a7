"""uvicorn with uvloop and the ``websockets`` protocol, serving the raw ASGI echo app.

Bench only (``pip install uvicorn uvloop``; not a trio_ws dependency).

    python3 -m servers.uvicorn_main --port 8101
"""

from __future__ import annotations

import argparse

import uvicorn

from .raw_echo import app

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        ws="websockets",
        lifespan="on",
        log_level="warning",
        access_log=False,
        ws_ping_interval=None,
    )
