"""The hub: local fan-out into bounded per-subscriber backlogs, whatever the backend.

A backend (:mod:`._memory`, :mod:`._redis`) carries published messages to every hub that
shares it and calls :meth:`Hub._deliver` once per message and channel; the hub copies a
reference into the backlog of each local subscription of that channel, without awaiting
anything. A subscription whose backlog is full applies its own overflow policy; nothing else
notices.

Delivery is synchronous and ``publish`` never waits for a subscriber, so a slow subscriber
costs the publisher and the other subscribers nothing, and its memory is its backlog.

Waking the readers: a message for a thousand waiting readers does not wake them all at once.
Each woken reader wakes the next one waiting (a wave) before it does anything else, and at
most ``_WAVES`` waves run at a time. A reader that then blocks (a client that does not read)
holds up nobody, since it passed the wave on first; and only about ``_WAVES`` readers are in
the middle of their work at any moment. Woken all at once, a thousand ``forward`` tasks would
each be suspended inside the server's send at the same time (on Hypercorn, some 18 objects
tracked by the garbage collector each), and the collections that this many live young objects
set off cost more than the sends themselves (docs/performance.rst, "Broadcast fan-out").
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Protocol

import trio

from .._exceptions import WebSocketException

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "BroadcastUnavailable",
    "Hub",
    "HubStatistics",
    "Overflow",
    "Subscription",
    "SubscriptionItems",
    "SubscriptionOverflow",
    "SubscriptionStatistics",
]

#: What a subscription does when a message arrives and its backlog is full.
Overflow = Literal["drop_oldest", "drop_newest", "close"]
_POLICIES = ("drop_oldest", "drop_newest", "close")
_Item = tuple[str, "str | bytes"]
#: How many wake-up waves may run at once (see the module docstring).
_WAVES = 8


class SubscriptionOverflow(WebSocketException):
    """A subscription with ``on_overflow="close"`` fell ``max_backlog`` messages behind.

    Raised by the subscription's iteration (and by :func:`~trio_ws.broadcast.forward`). It is a
    :class:`~trio_ws.WebSocketException` with code 1008 and reason ``"too slow"``, so a session
    that lets it propagate closes the connection with 1008 "too slow" (RFC 6455 section 7.4.1:
    policy violation) and the client can reconnect and catch up.
    """

    def __init__(self, code: int = 1008, reason: str | None = "too slow") -> None:
        super().__init__(code, reason)


class BroadcastUnavailable(Exception):
    """The backend cannot take the message (Redis is unreachable) or could not be reached.

    Raised by :meth:`Hub.publish` while the backend is down, and by
    :func:`~trio_ws.open_broadcast` when the first connection fails.
    """


@dataclass(frozen=True)
class HubStatistics:
    """A snapshot of a hub's counters, from :meth:`Hub.statistics`.

    Attributes:
        backend: ``"memory"`` or ``"redis"``.
        state: ``"connected"``, ``"reconnecting"`` (the backend connection was lost; the hub
            is retrying with backoff) or ``"closed"``.
        connected: Whether the backend is connected now (``state == "connected"``).
        channels: Channels with at least one local subscription.
        subscriptions: Local subscriptions.
        published: Calls of :meth:`Hub.publish` on this hub that returned.
        received: Messages that reached this hub from the backend, for channels with local
            subscriptions.
        delivered: Copies delivered to subscriptions: put into their backlogs, or handed
            straight to the session of a waiting `~trio_ws.broadcast.forward` (under
            `trio_ws.serve`'s data plane).
        dropped: Copies dropped by overflow policies (including backlogs discarded by
            ``"close"``).
        overflow_closes: Subscriptions ended by ``on_overflow="close"``.
        interruptions: Times the backend connection was lost after it had been established; a
            subscriber may have missed messages published meanwhile. Always 0 in memory.
        last_error: The last backend error, ``None`` when there was none.
    """

    backend: str
    state: str
    connected: bool
    channels: int
    subscriptions: int
    published: int
    received: int
    delivered: int
    dropped: int
    overflow_closes: int
    interruptions: int
    last_error: str | None


@dataclass(frozen=True)
class SubscriptionStatistics:
    """A snapshot of a subscription's counters, from :meth:`Subscription.statistics`.

    Attributes:
        channels: The subscribed channels.
        max_backlog: The backlog's bound (messages).
        on_overflow: The overflow policy.
        backlog: Messages waiting to be read now.
        queued: Messages delivered to the subscription since it began: put into its backlog,
            or handed straight to the session of its waiting `~trio_ws.broadcast.forward`
            (under `trio_ws.serve`'s data plane; those count as ``received`` too).
        received: Messages the subscriber has read.
        dropped: Messages lost to the overflow policy.
        overflowed: Whether ``on_overflow="close"`` ended the subscription.
        interruptions: Backend interruptions since the subscription began; when it is not 0,
            messages published during an interruption may be missing.
        backend_connected: Whether the hub's backend is connected now.
    """

    channels: tuple[str, ...]
    max_backlog: int
    on_overflow: Overflow
    backlog: int
    queued: int
    received: int
    dropped: int
    overflowed: bool
    interruptions: int
    backend_connected: bool


class _Backend(Protocol):
    """What the hub needs from a backend."""

    name: str
    connected: bool
    state: str
    interruptions: int
    last_error: str | None

    async def publish(self, channel: str, message: str | bytes) -> None: ...

    async def watch(self, channels: list[str]) -> None: ...

    def unwatch(self, channels: list[str]) -> None: ...


def _check_channel(channel: object) -> str:
    if not isinstance(channel, str):
        raise TypeError(f"a channel name is a str, not {type(channel).__name__}")
    return channel


class Hub:
    """Publish to channels and subscribe to them; made by :func:`~trio_ws.open_broadcast`.

    A hub may be used from any number of tasks of the trio run that opened it.
    """

    __slots__ = (
        "_backend",
        "_by_channel",
        "_closed",
        "_delivered",
        "_dropped",
        "_overflow_closes",
        "_published",
        "_received",
        "_subscriptions",
        "_to_wake",
        "_waves",
    )

    def __init__(self, backend: _Backend) -> None:
        self._backend = backend
        self._by_channel: dict[str, dict[Subscription, None]] = {}
        self._subscriptions = 0
        self._closed = False
        self._published = 0
        self._received = 0
        self._delivered = 0
        self._dropped = 0
        self._overflow_closes = 0
        # Subscriptions whose waiting reader has a message, in the order they got it, and how
        # many woken readers have yet to pass the wave on.
        self._to_wake: deque[Subscription] = deque()
        self._waves = 0

    async def publish(self, channel: str, message: str | bytes) -> None:
        """Publish ``message`` on ``channel`` to every subscription of it, on every hub.

        Returns once the backend has the message: in memory, once it is in every local
        subscription's backlog (or dropped by its policy); on Redis, once Redis answered the
        ``PUBLISH``. It never waits for a subscriber to read. Subscribers get ``message``
        with its type (``str`` or ``bytes``).

        Cancellation: in memory, a cancelled ``publish`` published nothing. On Redis, a
        ``publish`` cancelled while waiting for Redis's answer may have been delivered (at most
        once, never twice).

        Args:
            channel: The channel's name.
            message: The message, ``str`` or ``bytes``.

        Raises:
            BroadcastUnavailable: The backend is unreachable (Redis down); nothing was sent.
            trio.ClosedResourceError: The hub was closed.
            TypeError: ``message`` is neither ``str`` nor ``bytes``, or ``channel`` not ``str``.
        """
        _check_channel(channel)
        if not isinstance(message, (str, bytes)):
            raise TypeError(f"a message is str or bytes, not {type(message).__name__}")
        if self._closed:
            await trio.lowlevel.checkpoint()
            raise trio.ClosedResourceError("the broadcast hub is closed")
        await self._backend.publish(channel, message)
        self._published += 1

    def subscribe(
        self,
        *channels: str,
        max_backlog: int = 100,
        on_overflow: Overflow = "close",
    ) -> Subscription:
        """A subscription to ``channels``, active inside ``async with``.

        Use it as ``async with hub.subscribe("a", "b") as sub: async for message in sub:``.
        Entering returns once the backend subscribed (Redis acknowledged the ``SUBSCRIBE``,
        or, while Redis is down, once the hub will subscribe when it reconnects); every
        message published after that reaches the subscription, once, in each publisher's
        order. Leaving ends it; so does the end of the task that owns the ``async with``.

        Args:
            *channels: One or more channel names.
            max_backlog: How many unread messages the subscription holds (at least 1).
            on_overflow: When a message arrives and the backlog is full: ``"drop_oldest"``
                drops the oldest unread message (tickers: the latest value matters),
                ``"drop_newest"`` drops the arriving one, ``"close"`` ends the subscription
                with :class:`SubscriptionOverflow` (a session closes with 1008 "too slow").

        Raises:
            ValueError: No channel, ``max_backlog`` below 1, or an unknown policy.
        """
        if not channels:
            raise ValueError("subscribe() needs at least one channel")
        if on_overflow not in _POLICIES:
            raise ValueError(f"on_overflow must be one of {_POLICIES}, not {on_overflow!r}")
        if isinstance(max_backlog, bool) or not isinstance(max_backlog, int) or max_backlog < 1:
            raise ValueError(f"max_backlog must be an int of at least 1, not {max_backlog!r}")
        return Subscription(
            self, tuple(dict.fromkeys(map(_check_channel, channels))), max_backlog, on_overflow
        )

    def statistics(self) -> HubStatistics:
        """Return a snapshot of the hub's counters and its backend's state."""
        backend = self._backend
        return HubStatistics(
            backend=backend.name,
            state="closed" if self._closed else backend.state,
            connected=backend.connected and not self._closed,
            channels=len(self._by_channel),
            subscriptions=self._subscriptions,
            published=self._published,
            received=self._received,
            delivered=self._delivered,
            dropped=self._dropped,
            overflow_closes=self._overflow_closes,
            interruptions=backend.interruptions,
            last_error=backend.last_error,
        )

    # ------------------------------------------------------------------ backend side

    def _deliver(self, channel: str, message: str | bytes) -> None:
        """Put ``message`` into the backlog of every local subscription of ``channel``."""
        subscriptions = self._by_channel.get(channel)
        if not subscriptions:
            return
        self._received += 1
        item = (channel, message)
        # A copy: an overflowing subscription with the "close" policy leaves the channel.
        for subscription in tuple(subscriptions):
            subscription._offer(item)

    def _wake_later(self, subscription: Subscription) -> None:
        """``subscription``'s reader waits and now has a message: wake it in turn."""
        self._to_wake.append(subscription)
        if self._waves < _WAVES:
            self._wake_next()

    def _wake_next(self) -> None:
        """Wake the next waiting reader in line, if any; it carries the wave on."""
        to_wake = self._to_wake
        while to_wake:
            subscription = to_wake.popleft()
            subscription._in_line = False
            waiter = subscription._waiter
            if waiter is not None:  # else it stopped waiting (cancelled, or the end)
                subscription._waiter = None
                subscription._carries_wave = True
                self._waves += 1
                trio.lowlevel.reschedule(waiter)
                return

    def _pass_wave(self) -> None:
        """A reader woken in turn runs: it wakes the next one before doing anything else."""
        self._waves -= 1
        self._wake_next()

    def _close(self) -> None:
        self._closed = True
        self._to_wake.clear()
        for subscriptions in list(self._by_channel.values()):
            for subscription in list(subscriptions):
                subscription._finish(None)

    # ------------------------------------------------------------------ subscriptions

    async def _join(self, subscription: Subscription) -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            raise trio.ClosedResourceError("the broadcast hub is closed")
        new: list[str] = []
        for channel in subscription._channels:
            members = self._by_channel.get(channel)
            if members is None:
                members = self._by_channel[channel] = {}
                new.append(channel)
            members[subscription] = None
        self._subscriptions += 1
        try:
            await self._backend.watch(new)
        except BaseException:
            subscription._finish("closed")
            raise

    def _leave(self, subscription: Subscription) -> None:
        gone: list[str] = []
        for channel in subscription._channels:
            members = self._by_channel.get(channel)
            if members is None or subscription not in members:
                continue
            del members[subscription]
            if not members:
                del self._by_channel[channel]
                gone.append(channel)
        self._subscriptions -= 1
        if gone and not self._closed:
            self._backend.unwatch(gone)


class Subscription:
    """Messages published on some channels, held in a bounded backlog until read.

    Made by :meth:`Hub.subscribe`; active inside ``async with``. Iterate it to read the
    messages (``str`` or ``bytes`` as published), or use :meth:`items` for
    ``(channel, message)`` pairs. One task at a time may iterate it.

    Iteration ends (``StopAsyncIteration``) when the hub closes; it raises
    :class:`SubscriptionOverflow` once ``on_overflow="close"`` ended it, and
    :class:`trio.ClosedResourceError` after the ``async with`` block.

    Whether messages may have been missed: ``statistics().dropped`` counts the ones the overflow
    policy dropped, ``statistics().interruptions`` the backend outages (Redis restarts) since the
    subscription began.
    """

    __slots__ = (
        "__weakref__",
        "_backlog",
        "_cancel_on_overflow",
        "_carries_wave",
        "_channels",
        "_dropped",
        "_end",
        "_entered",
        "_hub",
        "_in_line",
        "_interruptions_at_start",
        "_max_backlog",
        "_on_overflow",
        "_queued",
        "_received",
        "_sink",
        "_sink_task",
        "_waiter",
    )

    def __init__(
        self, hub: Hub, channels: tuple[str, ...], max_backlog: int, on_overflow: Overflow
    ) -> None:
        self._hub = hub
        self._channels = channels
        self._max_backlog = max_backlog
        self._on_overflow = on_overflow
        self._backlog: deque[_Item] = deque()
        self._waiter: trio.lowlevel.Task | None = None
        # Whether this subscription is in the hub's line of readers to wake, and whether its
        # reader was woken from that line (then it passes the wave on when it runs).
        self._in_line = False
        self._carries_wave = False
        # None while active; then "closed" (left), "hub" (hub closed) or "overflow".
        self._end: str | None = None
        self._entered = False
        self._queued = 0
        self._received = 0
        self._dropped = 0
        self._interruptions_at_start = 0
        self._cancel_on_overflow: set[trio.CancelScope] = set()
        # forward()'s way past the backlog (see _offer): a synchronous send of the session it
        # feeds, used only while its task waits for a message (so the backlog is empty).
        self._sink: Callable[[str | bytes], bool] | None = None
        self._sink_task: trio.lowlevel.Task | None = None

    @property
    def channels(self) -> tuple[str, ...]:
        """The subscribed channels."""
        return self._channels

    async def __aenter__(self) -> Self:
        """Subscribe; returns once the backend subscribed (see :meth:`Hub.subscribe`)."""
        if self._entered:
            raise RuntimeError("this subscription was already entered")
        self._entered = True
        self._interruptions_at_start = self._hub._backend.interruptions
        await self._hub._join(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Unsubscribe: drop the backlog and stop receiving."""
        self._finish("closed")
        await trio.lowlevel.checkpoint_if_cancelled()
        return None

    def __aiter__(self) -> Self:
        """The subscription is its own iterator."""
        return self

    async def __anext__(self) -> str | bytes:
        """The next message, waiting for one if the backlog is empty."""
        return (await self._next())[1]

    def items(self) -> SubscriptionItems:
        """Iterate ``(channel, message)`` pairs instead of bare messages (same backlog)."""
        return SubscriptionItems(self)

    async def _next(self) -> _Item:
        backlog = self._backlog
        if backlog:
            await trio.lowlevel.checkpoint_if_cancelled()
            self._received += 1
            item = backlog.popleft()
            await trio.lowlevel.cancel_shielded_checkpoint()
            return item
        while True:
            if self._end is not None or not self._entered:
                await trio.lowlevel.checkpoint()
                self._raise_end()
            if self._waiter is not None:
                raise trio.BusyResourceError("another task is already reading this subscription")
            self._waiter = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort)
            # Woken in turn (the hub's wave) or by _finish: that was this call's checkpoint.
            if self._carries_wave:
                self._carries_wave = False
                self._hub._pass_wave()
            if backlog:
                self._received += 1
                return backlog.popleft()

    def _abort(self, _: object) -> trio.lowlevel.Abort:
        self._waiter = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _raise_end(self) -> None:
        if self._end == "overflow":
            raise SubscriptionOverflow()
        if self._end == "hub":
            raise StopAsyncIteration
        if not self._entered:
            raise RuntimeError('a subscription is read inside "async with hub.subscribe(...)"')
        raise trio.ClosedResourceError("this subscription has ended")

    def statistics(self) -> SubscriptionStatistics:
        """Return a snapshot of the subscription's counters."""
        backend = self._hub._backend
        return SubscriptionStatistics(
            channels=self._channels,
            max_backlog=self._max_backlog,
            on_overflow=self._on_overflow,
            backlog=len(self._backlog),
            queued=self._queued,
            received=self._received,
            dropped=self._dropped,
            overflowed=self._end == "overflow",
            interruptions=backend.interruptions - self._interruptions_at_start,
            backend_connected=backend.connected,
        )

    # ------------------------------------------------------------------ hub side

    def _offer(self, item: _Item) -> None:
        if self._end is not None:
            return
        backlog = self._backlog
        hub = self._hub
        waiter = self._waiter
        if waiter is not None and waiter is self._sink_task and not backlog:
            # forward() waits with nothing queued: its session takes the message now if its
            # server can without waiting (trio_ws.serve's data plane), which spares the wake-up.
            sink = self._sink
            try:
                taken = sink is not None and sink(item[1])
            except Exception:  # forward's own send raises it again, in its session
                taken = False
            if taken:
                self._queued += 1
                self._received += 1
                hub._delivered += 1
                return
        if len(backlog) >= self._max_backlog:
            policy = self._on_overflow
            if policy == "drop_oldest":
                backlog.popleft()
            elif policy == "drop_newest":
                self._dropped += 1
                hub._dropped += 1
                return
            else:
                self._dropped += 1 + len(backlog)
                hub._dropped += 1 + len(backlog)
                hub._overflow_closes += 1
                self._finish("overflow")
                return
            self._dropped += 1
            hub._dropped += 1
        backlog.append(item)
        self._queued += 1
        hub._delivered += 1
        if waiter is not None and not self._in_line:
            self._in_line = True
            hub._wake_later(self)

    def _put_back(self, item: _Item) -> None:
        """``forward`` took ``item`` and its send was cancelled before the session sent it:
        ``item`` is again the next message. If the backlog filled meanwhile, the overflow
        policy treats it as the oldest message."""
        if self._end is not None:
            return
        self._received -= 1
        backlog = self._backlog
        if len(backlog) >= self._max_backlog:
            policy = self._on_overflow
            if policy == "drop_oldest":
                self._dropped += 1
                self._hub._dropped += 1
                return
            if policy == "drop_newest":
                backlog.pop()
                self._dropped += 1
                self._hub._dropped += 1
            else:
                self._dropped += 1 + len(backlog)
                self._hub._dropped += 1 + len(backlog)
                self._hub._overflow_closes += 1
                self._finish("overflow")
                return
        backlog.appendleft(item)

    def _finish(self, how: str | None) -> None:
        """End the subscription: ``how`` is "closed", "overflow", or None (hub closed)."""
        if self._end is not None:
            return
        self._end = "hub" if how is None else how
        if self._entered:
            self._hub._leave(self)
        self._backlog.clear()
        if how == "overflow":
            for scope in self._cancel_on_overflow:
                scope.cancel()
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            trio.lowlevel.reschedule(waiter)


class SubscriptionItems:
    """``async for channel, message in subscription.items():`` (see :meth:`Subscription.items`)."""

    __slots__ = ("_subscription",)

    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription

    def __aiter__(self) -> Self:
        """Its own iterator."""
        return self

    async def __anext__(self) -> tuple[str, str | bytes]:
        """The next ``(channel, message)`` pair."""
        return await self._subscription._next()
