"""Shared pieces of the benchmark servers: lifespan, 404 and the /push parameters.

Every server variant uses these, so they all do the same work outside the WebSocket path.
"""

from __future__ import annotations

from urllib.parse import parse_qs

PUSH_DEFAULT_N = 20_000
PUSH_DEFAULT_SIZE = 32
PUSH_MAX_N = 10_000_000
PUSH_MAX_SIZE = 16 * 1024 * 1024


async def lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def not_found(send) -> None:
    body = b"Not Found"
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def push_params(scope) -> tuple[int, str]:
    """Return ``(n, payload)`` for ``/push?n=&size=``: n text messages of ``size`` ASCII bytes."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    n = int(query.get("n", [PUSH_DEFAULT_N])[0])
    size = int(query.get("size", [PUSH_DEFAULT_SIZE])[0])
    n = max(0, min(n, PUSH_MAX_N))
    size = max(0, min(size, PUSH_MAX_SIZE))
    return n, "x" * size
