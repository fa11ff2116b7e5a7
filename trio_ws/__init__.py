"""trio_ws: Starlette's WebSocket API, nursery-scoped, for trio applications under Hypercorn."""

from __future__ import annotations

from . import status as status
from ._app import websocket_app as websocket_app
from ._datastructures import (
    URL as URL,
    Address as Address,
    Headers as Headers,
    ImmutableMultiDict as ImmutableMultiDict,
    MutableHeaders as MutableHeaders,
    QueryParams as QueryParams,
    State as State,
)
from ._exceptions import (
    WebSocketDisconnect as WebSocketDisconnect,
    WebSocketDisconnected as WebSocketDisconnected,
    WebSocketException as WebSocketException,
    WebSocketMessageTypeError as WebSocketMessageTypeError,
)
from ._http import HTTPConnection as HTTPConnection
from ._state import WebSocketState as WebSocketState
from ._websocket import SessionStatistics as SessionStatistics, WebSocket as WebSocket

__version__ = "0.1.0.dev0"

# Show the public path in reprs, tracebacks and docs (trio does the same).
for _obj in (
    URL,
    Address,
    Headers,
    ImmutableMultiDict,
    MutableHeaders,
    QueryParams,
    State,
    WebSocketDisconnect,
    WebSocketDisconnected,
    WebSocketException,
    WebSocketMessageTypeError,
    HTTPConnection,
    WebSocketState,
    SessionStatistics,
    WebSocket,
    websocket_app,
):
    _obj.__module__ = __name__
del _obj
