"""The ASGI types that appear in trio_ws's signatures, for annotating your own code.

These are plain aliases (stdlib ``typing`` only): any object of the right shape will do, and
the same types from another library (Starlette's, Hypercorn's, asgiref's) are compatible::

    from trio_ws.types import Receive, Scope, Send

    async def app(scope: Scope, receive: Receive, send: Send) -> None: ...
"""

from __future__ import annotations

from . import _types

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]

#: The connection scope an ASGI server hands to an application (``scope["type"]`` is
#: ``"websocket"``, ``"http"`` or ``"lifespan"``).
Scope = _types.Scope
#: One ASGI event, sent or received (a mapping with a ``"type"`` key).
Message = _types.Message
#: The ASGI ``receive`` callable; ``await receive()`` returns the next `Message`.
Receive = _types.Receive
#: The ASGI ``send`` callable, ``await send(message)``.
Send = _types.Send
#: An ASGI 3 application, ``await app(scope, receive, send)``.
ASGIApp = _types.ASGIApp
