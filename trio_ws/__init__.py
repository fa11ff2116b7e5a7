"""trio_ws: Starlette's WebSocket API, nursery-scoped, for trio applications under Hypercorn."""

from . import status as status, types as types
from ._app import websocket_app as websocket_app
from ._datastructures import (
    URL as URL,
    Address as Address,
    Headers as Headers,
    ImmutableMultiDict as ImmutableMultiDict,
    MutableHeaders as MutableHeaders,
    QueryParams as QueryParams,
    State as State,
    URLPath as URLPath,
)
from ._exceptions import (
    WebSocketDisconnect as WebSocketDisconnect,
    WebSocketDisconnected as WebSocketDisconnected,
    WebSocketException as WebSocketException,
    WebSocketMessageTypeError as WebSocketMessageTypeError,
)
from ._http import HTTPConnection as HTTPConnection
from ._json import JSONCodec as JSONCodec, JSONValidationError as JSONValidationError
from ._origins import OriginPolicy as OriginPolicy, check_origin as check_origin
from ._request import ClientDisconnect as ClientDisconnect, Request as Request
from ._responses import (
    HTMLResponse as HTMLResponse,
    JSONResponse as JSONResponse,
    PlainTextResponse as PlainTextResponse,
    Response as Response,
)
from ._routing import (
    BaseRoute as BaseRoute,
    Match as Match,
    Mount as Mount,
    NoMatchFound as NoMatchFound,
    Route as Route,
    Router as Router,
    WebSocketRoute as WebSocketRoute,
)
from ._server import serve as serve
from ._session import SessionStatistics as SessionStatistics
from ._starlette import StarletteWebSocket as StarletteWebSocket, session as session
from ._state import WebSocketState as WebSocketState
from ._trio_websocket import (
    TrioWebSocketConnection as TrioWebSocketConnection,
    TrioWebSocketRequest as TrioWebSocketRequest,
    trio_websocket_app as trio_websocket_app,
)
from ._websocket import WebSocket as WebSocket
from .broadcast import open_broadcast as open_broadcast

__version__ = "0.1.0.dev0"

# The public names (`from trio_ws import *`, pyright --verifytypes); keep in step with the imports.
__all__ = [
    "URL",
    "Address",
    "BaseRoute",
    "ClientDisconnect",
    "HTMLResponse",
    "HTTPConnection",
    "Headers",
    "ImmutableMultiDict",
    "JSONCodec",
    "JSONResponse",
    "JSONValidationError",
    "Match",
    "Mount",
    "MutableHeaders",
    "NoMatchFound",
    "OriginPolicy",
    "PlainTextResponse",
    "QueryParams",
    "Request",
    "Response",
    "Route",
    "Router",
    "SessionStatistics",
    "StarletteWebSocket",
    "State",
    "TrioWebSocketConnection",
    "TrioWebSocketRequest",
    "URLPath",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketDisconnected",
    "WebSocketException",
    "WebSocketMessageTypeError",
    "WebSocketRoute",
    "WebSocketState",
    "broadcast",
    "check_origin",
    "open_broadcast",
    "serve",
    "session",
    "status",
    "trio_websocket_app",
    "types",
    "websocket_app",
]

# Show the public path in reprs, tracebacks and docs (trio does the same).
for _obj in (
    URL,
    Address,
    Headers,
    ImmutableMultiDict,
    MutableHeaders,
    QueryParams,
    State,
    URLPath,
    WebSocketDisconnect,
    WebSocketDisconnected,
    WebSocketException,
    WebSocketMessageTypeError,
    HTTPConnection,
    OriginPolicy,
    check_origin,
    ClientDisconnect,
    Request,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    BaseRoute,
    Match,
    Mount,
    NoMatchFound,
    Route,
    Router,
    WebSocketRoute,
    serve,
    WebSocketState,
    SessionStatistics,
    WebSocket,
    websocket_app,
    open_broadcast,
    StarletteWebSocket,
    session,
    TrioWebSocketConnection,
    TrioWebSocketRequest,
    trio_websocket_app,
    JSONCodec,
    JSONValidationError,
):
    _obj.__module__ = __name__
del _obj
