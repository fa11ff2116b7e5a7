"""``forward``: pass a subscription's messages to a WebSocket session's client."""

from __future__ import annotations

import trio

from .._session import SessionCore
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

    Under `trio_ws.serve`'s data plane, while this task waits with nothing queued, a
    ``publish`` writes the message into the connection itself when the socket's outbound
    buffer has room (no task switch per delivery); otherwise the message waits in the backlog
    for this task. Either way the client gets the messages in order, each once. A
    `~trio_ws.WebSocket` subclass that overrides ``send``, ``send_text`` or ``send_bytes``
    gets every message through its override instead.

    Cancelled between taking a message and starting its send (a deadline that expired, an
    overflow), it puts the message back at the front of the subscription's backlog (the
    overflow policy counts it as the oldest if the backlog filled meanwhile), so a
    ``forward`` started again gets it next. A send cancelled once under way is not repeated:
    the server may have queued the message already (Hypercorn's HTTP/2 send does, then waits
    for room), and under `trio_ws.serve`'s data plane such a cancellation aborts the
    connection.

    Returns when the subscription ends (its hub closed).

    Raises:
        SubscriptionOverflow: ``on_overflow="close"`` ended the subscription.
        WebSocketDisconnect: The client left (the session treats it as a normal end).
    """
    with trio.CancelScope() as scope:
        subscription._cancel_on_overflow.add(scope)
        if _sends_plainly(websocket):
            # While this task waits for a message, the publisher hands it straight to the
            # session if its server takes it without waiting (Subscription._offer).
            subscription._sink = websocket._send_now
            subscription._sink_task = trio.lowlevel.current_task()
        try:
            backlog = subscription._backlog
            while True:
                if backlog:
                    # Each send checkpoints, so a ready message needs no checkpoint of its own.
                    subscription._received += 1
                    item = backlog.popleft()
                else:
                    try:
                        item = await subscription._next()
                    except StopAsyncIteration:
                        return  # noqa: ASYNC910 (_next checkpointed first)
                try:
                    await trio.lowlevel.checkpoint_if_cancelled()
                except trio.Cancelled:
                    # Cancelled before the send began: the message stays the next one. A send
                    # cancelled once under way may have queued it (Hypercorn's HTTP/2 send
                    # does, then waits), so it is never put back.
                    subscription._put_back(item)
                    raise
                message = item[1]
                if isinstance(message, str):
                    await websocket.send_text(message)
                else:
                    await websocket.send_bytes(message)
        finally:
            subscription._cancel_on_overflow.discard(scope)
            if subscription._sink_task is trio.lowlevel.current_task():
                subscription._sink = subscription._sink_task = None
    if scope.cancelled_caught:
        raise SubscriptionOverflow()


def _sends_plainly(websocket: WebSocket) -> bool:
    """Whether ``websocket`` is a session whose server can send synchronously, and whose
    ``send``, ``send_text`` and ``send_bytes`` are trio_ws's own (a subclass that overrides one
    gets every message through it)."""
    cls = type(websocket)
    return (
        websocket._write_now is not None
        and cls.send is SessionCore._session_send
        and cls.send_text is WebSocket.send_text
        and cls.send_bytes is WebSocket.send_bytes
    )
