"""``forward``: pass a subscription's messages to a WebSocket session's client."""

from __future__ import annotations

import trio

from .._websocket import WebSocket
from ._hub import Subscription, SubscriptionOverflow

__all__ = ["forward"]


async def forward(subscription: Subscription, websocket: WebSocket) -> None:
    """Send each message of ``subscription`` to ``websocket``'s client until either ends.

    ``str`` messages go as text frames, ``bytes`` as binary frames. Meant to run beside the
    handler's receive loop, as a helper task of the session (the whole program is on the
    :doc:`broadcast page </broadcast>`)::

        from trio_ws.broadcast import forward

        async def chat(ws: trio_ws.WebSocket) -> None:
            hub, room = ws.state.hub, ws.path_params["room"]
            await ws.accept()
            async with hub.subscribe(f"room:{room}", max_backlog=100) as sub:
                ws.start_soon(forward, sub, ws)
                async for text in ws.iter_text():
                    await hub.publish(f"room:{room}", text)

    A client that stops reading holds up only this task: the subscription's backlog fills and
    its overflow policy applies (publishers and other subscribers never wait). With
    ``on_overflow="close"`` the overflow cancels a send that is stuck on the client and
    raises :class:`~trio_ws.broadcast.SubscriptionOverflow`, which the session turns into
    close 1008 "too slow". (A send the session shields, which it does when the client
    negotiated permessage-deflate, cannot be cancelled: then the session ends once that send
    completes or the server aborts the connection.)

    Returns when the subscription ends (its hub closed).

    Raises:
        SubscriptionOverflow: ``on_overflow="close"`` ended the subscription.
        WebSocketDisconnect: The client left (the session treats it as a normal end).
    """
    with trio.CancelScope() as scope:
        subscription._cancel_on_overflow.add(scope)
        try:
            backlog = subscription._backlog
            while True:
                if backlog:
                    # Each send checkpoints, so a ready message needs no checkpoint of its own.
                    subscription._received += 1
                    message = backlog.popleft()[1]
                else:
                    try:
                        message = await subscription.__anext__()
                    except StopAsyncIteration:
                        return  # noqa: ASYNC910 (__anext__ checkpointed first)
                if isinstance(message, str):
                    await websocket.send_text(message)
                else:
                    await websocket.send_bytes(message)
        finally:
            subscription._cancel_on_overflow.discard(scope)
    if scope.cancelled_caught:
        raise SubscriptionOverflow()
