"""The Redis backend: coredis (on trio through anyio), one reader task per hub.

Publishing is Redis's ``PUBLISH``. Receiving is one pub/sub connection per hub, read by one
task that never stops draining it (coredis queues pushed messages without a bound, so a reader
that fell behind would hold them all) and hands each message to the hub's synchronous fan-out.
The hub subscribes a channel in Redis when its first local subscription begins and
unsubscribes it when the last one ends.

When the pub/sub connection drops (Redis restarted, network cut), the reader reconnects with
exponential backoff (0.05 s doubling up to 2 s, with jitter) and subscribes every channel that
has local subscriptions again. Messages published in between are lost, as Redis pub/sub
promises no more; the hub counts the outage in ``statistics().interruptions``, which every
subscription compares with the value it started with.

Wire format, so that other Redis clients can take part: a ``str`` message is published as its
UTF-8 bytes (prefixed with ``b"\\x00t"`` only when the text itself begins with NUL), a ``bytes``
message as ``b"\\x00b"`` followed by the bytes. A message without a prefix arrives as ``str``
when it is valid UTF-8, otherwise as ``bytes``.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import trio

from ._hub import BroadcastUnavailable, Hub

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = ["RedisBackend"]

_TEXT = b"\x00t"
_BYTES = b"\x00b"
MIN_BACKOFF = 0.05
MAX_BACKOFF = 2.0


def encode(message: str | bytes) -> bytes:
    """The bytes published for ``message`` (see the module docstring)."""
    if isinstance(message, bytes):
        return _BYTES + message
    data = message.encode()
    return _TEXT + data if data[:1] == b"\x00" else data


def decode(data: bytes) -> str | bytes:
    """The message that ``data``, as read from Redis, stands for."""
    if data[:1] == b"\x00":
        if data[:2] == _BYTES:
            return data[2:]
        if data[:2] == _TEXT:
            data = data[2:]
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


def _import_coredis() -> Any:
    try:
        import coredis
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ImportError(
            "the Redis broadcast backend needs coredis: pip install 'trio_ws[redis]'"
        ) from exc
    return coredis


class RedisBackend:
    """Redis pub/sub through coredis; started by :func:`~trio_ws.open_broadcast`."""

    name = "redis"

    def __init__(self, url: str) -> None:
        coredis = _import_coredis()
        self._url = url
        self._client = coredis.Redis.from_url(url, decode_responses=False)
        self._errors: tuple[type[BaseException], ...] = (
            coredis.exceptions.RedisError,
            OSError,
            TimeoutError,
        )
        self._pubsub: Any = None
        self.hub: Hub | None = None
        self._nursery: trio.Nursery | None = None
        self.connected = False
        self.state = "connecting"
        self.interruptions = 0
        self.last_error: str | None = None
        self._backoff = MIN_BACKOFF
        self._started = False

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, report started, then read pub/sub until cancelled (reconnecting as needed).

        Raises:
            BroadcastUnavailable: The first connection failed.
        """
        try:
            async with self._client:
                await self._client.ping()
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    await nursery.start(self._read_forever)
                    task_status.started()
        except Exception as exc:
            # coredis's pool reports a failed first connection as an exception group.
            if self._started:
                raise
            leaf: BaseException = exc
            while isinstance(leaf, BaseExceptionGroup):
                leaf = leaf.exceptions[0]
            raise BroadcastUnavailable(f"cannot reach Redis at {self._url}: {leaf}") from exc

    async def _read_forever(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        while True:
            try:
                await self._read(task_status)
            except BaseExceptionGroup as group:
                cancelled, errors = group.split(trio.Cancelled)
                if cancelled is not None:
                    raise cancelled from None
                self._lost(errors)
            except Exception as exc:
                self._lost(exc)
            await trio.sleep(self._backoff * random.uniform(0.5, 1.0))
            self._backoff = min(self._backoff * 2, MAX_BACKOFF)

    async def _read(self, task_status: trio.TaskStatus[None]) -> None:
        hub = self.hub
        assert hub is not None
        async with self._client.pubsub(ignore_subscribe_messages=True, retry_policy=None) as pubsub:
            # Set and snapshot in one step: a subscription that begins later subscribes itself.
            self._pubsub = pubsub
            channels = list(hub._by_channel)
            if channels:
                await pubsub.subscribe(*channels)
            self.connected = True
            self.state = "connected"
            self._backoff = MIN_BACKOFF
            if not self._started:
                self._started = True
                task_status.started()
            deliver = hub._deliver
            while True:
                message = await pubsub.get_message()
                if message is not None and message["type"] == "message":
                    channel = message["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode(errors="replace")
                    deliver(channel, decode(message["data"]))

    def _lost(self, exc: BaseException | None) -> None:
        self._pubsub = None
        if self.connected:
            self.interruptions += 1
        self.connected = False
        self.state = "reconnecting"
        if exc is not None:
            leaf = exc
            while isinstance(leaf, BaseExceptionGroup):
                leaf = leaf.exceptions[0]
            self.last_error = f"{type(leaf).__name__}: {leaf}"

    async def publish(self, channel: str, message: str | bytes) -> None:
        try:
            await self._client.publish(channel, encode(message))
        except self._errors as exc:
            raise BroadcastUnavailable(f"Redis did not take the message: {exc}") from exc

    async def watch(self, channels: list[str]) -> None:
        pubsub = self._pubsub
        if not channels or pubsub is None:
            await trio.lowlevel.checkpoint()
            return
        try:
            await pubsub.subscribe(*channels)
        except self._errors:
            # The connection went down meanwhile: the reader subscribes again on reconnect.
            await trio.lowlevel.checkpoint()

    def unwatch(self, channels: list[str]) -> None:
        if self._nursery is not None and self._pubsub is not None:
            self._nursery.start_soon(self._unsubscribe, channels)

    async def _unsubscribe(self, channels: list[str]) -> None:
        pubsub = self._pubsub
        hub = self.hub
        idle = [c for c in channels if hub is not None and c not in hub._by_channel]
        if pubsub is None or not idle:
            await trio.lowlevel.checkpoint()
            return
        try:
            await pubsub.unsubscribe(*idle)
        except self._errors:
            await trio.lowlevel.checkpoint()
