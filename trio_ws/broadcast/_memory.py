"""The in-memory backend: one process, one trio run; ``publish`` delivers synchronously."""

from __future__ import annotations

import trio

from ._hub import Hub

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """Delivers each message to the hub's own subscriptions; nothing leaves the process."""

    name = "memory"
    connected = True
    state = "connected"
    interruptions = 0
    last_error: str | None = None

    def __init__(self) -> None:
        self.hub: Hub | None = None

    async def publish(self, channel: str, message: str | bytes) -> None:
        # All or nothing: a cancelled publish delivered nothing, a returned one delivered all.
        await trio.lowlevel.checkpoint_if_cancelled()
        assert self.hub is not None
        self.hub._deliver(channel, message)
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def watch(self, channels: list[str]) -> None:
        await trio.lowlevel.checkpoint()

    def unwatch(self, channels: list[str]) -> None:
        pass
