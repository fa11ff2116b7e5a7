"""Close codes and HTTP status codes by name.

WebSocket close codes come from RFC 6455 section 7.4 and the IANA registry; HTTP status codes
from RFC 9110 and its companions. ``WS_1005_NO_STATUS_RCVD``, ``WS_1006_ABNORMAL_CLOSURE`` and
``WS_1015_TLS_HANDSHAKE`` are reported by endpoints and are never sent in a close frame;
:func:`is_sendable_close_code` says which codes a close frame may carry.

Stdlib only.
"""

from __future__ import annotations

#: The purpose of the connection was fulfilled.
WS_1000_NORMAL_CLOSURE = 1000
#: An endpoint is going away, as a server shutting down or a browser leaving the page.
WS_1001_GOING_AWAY = 1001
#: An endpoint received a frame that breaks the protocol.
WS_1002_PROTOCOL_ERROR = 1002
#: An endpoint received a type of data it cannot accept.
WS_1003_UNSUPPORTED_DATA = 1003
#: Reported when a close frame carried no code; reserved, never sent.
WS_1005_NO_STATUS_RCVD = 1005
#: Reported when the connection dropped without a close frame; reserved, never sent.
WS_1006_ABNORMAL_CLOSURE = 1006
#: A message's data did not match its type (for example invalid UTF-8 or JSON).
WS_1007_INVALID_FRAME_PAYLOAD_DATA = 1007
#: A message broke the endpoint's policy.
WS_1008_POLICY_VIOLATION = 1008
#: A message was too big to process.
WS_1009_MESSAGE_TOO_BIG = 1009
#: The client expected the server to negotiate an extension.
WS_1010_MANDATORY_EXT = 1010
#: The server met an unexpected condition.
WS_1011_INTERNAL_ERROR = 1011
#: The service is restarting.
WS_1012_SERVICE_RESTART = 1012
#: The service is overloaded; try again later.
WS_1013_TRY_AGAIN_LATER = 1013
#: A gateway received an invalid response from upstream.
WS_1014_BAD_GATEWAY = 1014
#: Reported when the TLS handshake failed; reserved, never sent.
WS_1015_TLS_HANDSHAKE = 1015

HTTP_100_CONTINUE = 100
HTTP_101_SWITCHING_PROTOCOLS = 101
HTTP_102_PROCESSING = 102
HTTP_103_EARLY_HINTS = 103
HTTP_200_OK = 200
HTTP_201_CREATED = 201
HTTP_202_ACCEPTED = 202
HTTP_203_NON_AUTHORITATIVE_INFORMATION = 203
HTTP_204_NO_CONTENT = 204
HTTP_205_RESET_CONTENT = 205
HTTP_206_PARTIAL_CONTENT = 206
HTTP_207_MULTI_STATUS = 207
HTTP_208_ALREADY_REPORTED = 208
HTTP_226_IM_USED = 226
HTTP_300_MULTIPLE_CHOICES = 300
HTTP_301_MOVED_PERMANENTLY = 301
HTTP_302_FOUND = 302
HTTP_303_SEE_OTHER = 303
HTTP_304_NOT_MODIFIED = 304
HTTP_305_USE_PROXY = 305
HTTP_307_TEMPORARY_REDIRECT = 307
HTTP_308_PERMANENT_REDIRECT = 308
HTTP_400_BAD_REQUEST = 400
HTTP_401_UNAUTHORIZED = 401
HTTP_402_PAYMENT_REQUIRED = 402
HTTP_403_FORBIDDEN = 403
HTTP_404_NOT_FOUND = 404
HTTP_405_METHOD_NOT_ALLOWED = 405
HTTP_406_NOT_ACCEPTABLE = 406
HTTP_407_PROXY_AUTHENTICATION_REQUIRED = 407
HTTP_408_REQUEST_TIMEOUT = 408
HTTP_409_CONFLICT = 409
HTTP_410_GONE = 410
HTTP_411_LENGTH_REQUIRED = 411
HTTP_412_PRECONDITION_FAILED = 412
HTTP_413_CONTENT_TOO_LARGE = 413
HTTP_414_URI_TOO_LONG = 414
HTTP_415_UNSUPPORTED_MEDIA_TYPE = 415
HTTP_416_RANGE_NOT_SATISFIABLE = 416
HTTP_417_EXPECTATION_FAILED = 417
HTTP_418_IM_A_TEAPOT = 418
HTTP_421_MISDIRECTED_REQUEST = 421
HTTP_422_UNPROCESSABLE_CONTENT = 422
HTTP_423_LOCKED = 423
HTTP_424_FAILED_DEPENDENCY = 424
HTTP_425_TOO_EARLY = 425
HTTP_426_UPGRADE_REQUIRED = 426
HTTP_428_PRECONDITION_REQUIRED = 428
HTTP_429_TOO_MANY_REQUESTS = 429
HTTP_431_REQUEST_HEADER_FIELDS_TOO_LARGE = 431
HTTP_451_UNAVAILABLE_FOR_LEGAL_REASONS = 451
HTTP_500_INTERNAL_SERVER_ERROR = 500
HTTP_501_NOT_IMPLEMENTED = 501
HTTP_502_BAD_GATEWAY = 502
HTTP_503_SERVICE_UNAVAILABLE = 503
HTTP_504_GATEWAY_TIMEOUT = 504
HTTP_505_HTTP_VERSION_NOT_SUPPORTED = 505
HTTP_506_VARIANT_ALSO_NEGOTIATES = 506
HTTP_507_INSUFFICIENT_STORAGE = 507
HTTP_508_LOOP_DETECTED = 508
HTTP_510_NOT_EXTENDED = 510
HTTP_511_NETWORK_AUTHENTICATION_REQUIRED = 511


#: Close codes that are defined but must never appear in a close frame.
RESERVED_CLOSE_CODES = frozenset({1004, 1005, 1006, 1015})


def is_sendable_close_code(code: int) -> bool:
    """Tell whether ``code`` may be sent in a close frame.

    Sendable are 1000-1003 and 1007-1014 (the assigned codes), 3000-3999 (registered with
    IANA) and 4000-4999 (private use). 1004, 1005, 1006 and 1015 are reserved, and
    1016-2999 are unassigned.
    """
    if 3000 <= code <= 4999:
        return True
    return 1000 <= code <= 1014 and code not in RESERVED_CLOSE_CODES
