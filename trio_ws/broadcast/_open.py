"""``open_broadcast``: the hub's lifetime, and the backend a URL names."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from ._hub import Hub
from ._memory import MemoryBackend

if TYPE_CHECKING:
    from ._redis import RedisBackend

__all__ = ["open_broadcast"]

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@asynccontextmanager
async def open_broadcast(url: str | None = None) -> AsyncIterator[Hub]:
    """Open a broadcast hub for the block: in memory, or shared through Redis.

    In memory (``url`` is ``None`` or ``"memory://"``), the hub reaches the subscriptions of
    this process's trio run. With a Redis URL (``"redis://host:6379/0"``, ``rediss://`` for
    TLS, ``unix://`` for a socket), every hub on that Redis reaches every other: across worker
    processes and hosts. Redis needs the ``trio_ws[redis]`` extra (coredis).

    The hub owns a task (Redis's reader) for the block; leaving the block ends every
    subscription (their iteration stops) and closes the hub. Open it in the application's
    lifespan and hand it to handlers through the lifespan state::

        import os
        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def lifespan(app):
            async with trio_ws.open_broadcast(os.environ.get("TRIO_WS_BROADCAST_URL")) as hub:
                yield {"hub": hub}          # handlers: ws.state.hub

    Args:
        url: ``None`` or ``"memory://"`` for in memory, or a Redis URL.

    Yields:
        The :class:`~trio_ws.broadcast.Hub`.

    Raises:
        BroadcastUnavailable: Redis could not be reached at first. (Later outages are
            retried with backoff; see :class:`~trio_ws.broadcast.HubStatistics`.)
        ValueError: ``url`` names no known backend.
        ImportError: A Redis URL without coredis installed.
    """
    backend: MemoryBackend | RedisBackend
    if url is None or url == "memory://":
        backend = MemoryBackend()
    elif url.startswith(_REDIS_SCHEMES):
        from ._redis import RedisBackend

        backend = RedisBackend(url)
    else:
        raise ValueError(f"open_broadcast() takes None, 'memory://' or a redis:// URL, not {url!r}")
    hub = Hub(backend)
    backend.hub = hub
    # The body's exception leaves unwrapped: it is caught inside the nursery and raised again
    # after it, so callers see their own exception, not an exception group around it.
    failure: BaseException | None = None
    async with trio.open_nursery() as nursery:
        try:
            if isinstance(backend, MemoryBackend):
                await trio.lowlevel.checkpoint()
            else:
                await nursery.start(backend.run)
        except BaseException as exc:
            failure = exc
        if failure is None:
            try:
                yield hub
            except BaseException as exc:
                failure = exc
            finally:
                hub._close()
                nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
