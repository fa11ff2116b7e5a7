"""Broadcast: publish a message once, deliver it to many subscriptions, bounded.

In memory for one process, or through Redis (the ``trio_ws[redis]`` extra, coredis) across
worker processes and hosts. Each subscription has its own bounded backlog and overflow policy;
``publish`` never waits for a subscriber. See :func:`trio_ws.open_broadcast` and the
"Broadcast" how-to page.

Exceptions:

.. code-block:: text

    Exception
    +-- BroadcastUnavailable          the backend (Redis) cannot take the message
    +-- WebSocketException
        +-- SubscriptionOverflow      on_overflow="close": 1008 "too slow" in a session
"""

from __future__ import annotations

from ._forward import forward as forward
from ._hub import (
    BroadcastUnavailable as BroadcastUnavailable,
    Hub as Hub,
    HubStatistics as HubStatistics,
    Overflow as Overflow,
    Subscription as Subscription,
    SubscriptionItems as SubscriptionItems,
    SubscriptionOverflow as SubscriptionOverflow,
    SubscriptionStatistics as SubscriptionStatistics,
)
from ._open import open_broadcast as open_broadcast

for _obj in (
    forward,
    BroadcastUnavailable,
    Hub,
    HubStatistics,
    Subscription,
    SubscriptionItems,
    SubscriptionOverflow,
    SubscriptionStatistics,
    open_broadcast,
):
    _obj.__module__ = __name__
del _obj
