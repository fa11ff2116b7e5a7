"""Which event loop calls the app: trio_ws needs trio (Hypercorn's trio worker).

Served by ``hypercorn`` without ``-k trio``, an app is called from asyncio, where every trio call
fails deep inside trio (``AttributeError: 'RunContext' object has no attribute 'runner'``).
:func:`require_trio` says what is wrong instead; it costs one attribute lookup, so the entry
points call it once per connection (and :func:`trio_ws.websocket_app` fails the lifespan
startup with the same message, so such a server does not even start).
"""

from __future__ import annotations

import trio

__all__ = ["NEEDS_TRIO", "in_trio", "require_trio"]

NEEDS_TRIO = (
    "trio_ws needs Hypercorn's trio worker, but this app was called from another event loop "
    "(asyncio: hypercorn's default worker). Run it with `hypercorn -k trio module:app`, or "
    "serve it from a trio program with trio_ws.serve"
)


def in_trio() -> bool:
    """True when called from a trio task."""
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


def require_trio() -> None:
    """Raise ``RuntimeError`` with :data:`NEEDS_TRIO` unless called from a trio task."""
    if not in_trio():
        raise RuntimeError(NEEDS_TRIO)
