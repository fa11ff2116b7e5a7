"""What trio_ws relies on in wsproto's private code, in one place.

wsproto's public API covers the protocol; the data plane needs two things it does not offer:
to know when wsproto holds no partial frame or message (so complete frames may be parsed
without it), and inflation with a limit (permessage-deflate, RFC 7692, without a decompression
bomb). Both are checked against the installed wsproto by ``tests/test_internals.py`` and, for
the inflation, by a differential test against wsproto's own (``tests/test_dataplane_deflate.py``).

The names each relies on:

:func:`frame_protocol_idle` (when the data plane may parse frames itself)
    Reads wsproto's ``FrameProtocol._frame_decoder`` (``header``, ``buffer``) and
    ``FrameProtocol._message_decoder.opcode``: the data plane parses complete frames itself
    only while wsproto holds nothing.

:class:`CappedDeflate` and :func:`cap_inflation` (no decompression bomb)
    wsproto's ``PerMessageDeflate`` inflates a frame whole, without a limit. At the takeover
    the negotiated instance (in ``FrameProtocol.extensions``) is re-classed into a subclass
    whose inbound steps inflate with zlib's ``max_length`` set to what the message may still
    grow by (``websocket_max_message_size``). It reads ``PerMessageDeflate``'s
    ``_inbound_compressed``, ``_inbound_is_compressible`` and ``_decompressor`` (a zlib
    decompress object; None for a fresh context at the next message) and relies on
    ``frame_inbound_header``, ``frame_inbound_payload_data`` and ``frame_inbound_complete``
    (wsproto's ``Extension`` interface) being called per frame, and on
    ``CloseReason.MESSAGE_TOO_BIG`` returned from them ending the parse with ``ParseFailed``
    (code 1009). It also saves ``_inbound_compressed`` and ``_inbound_is_compressible`` across
    a control frame inside a fragmented message, which wsproto's own steps reset (the
    fragments after a ping would pass on still compressed).
"""

from __future__ import annotations

import zlib
from typing import Any, cast

from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason, Opcode

__all__ = ["CappedDeflate", "cap_inflation", "frame_protocol_idle"]


def frame_protocol_idle(proto: Any) -> bool:
    """wsproto's ``FrameProtocol`` is between messages with no byte buffered.

    Relies on ``FrameProtocol._frame_decoder`` (``buffer``, a ``Buffer`` with ``__len__``;
    ``header``, None between frames) and ``FrameProtocol._message_decoder.opcode`` (None
    between messages).
    """
    decoder = proto._frame_decoder
    return (
        decoder.header is None and not len(decoder.buffer) and proto._message_decoder.opcode is None
    )


class CappedDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate whose inbound messages inflate to at most ``trio_ws_limit``
    bytes: past it the parse fails with 1009 (RFC 6455 section 7.4.1) before more is inflated.

    Only the inflation differs from wsproto's (the module docstring lists the names it reads),
    and one fix: a control frame between the fragments of a compressed message (RFC 6455
    section 5.4 allows it) leaves that message's state alone, where wsproto's steps forget it
    and pass the following fragments on still compressed.
    """

    #: The most bytes one inbound message may inflate to.
    trio_ws_limit = 0
    #: Bytes the current inbound message has inflated to so far.
    trio_ws_size = 0
    #: While a control frame is parsed: the state of the message it interrupts.
    trio_ws_interrupted: tuple[bool | None, bool | None] | None = None

    def frame_inbound_header(
        self, proto: Any, opcode: Opcode, rsv: Any, payload_length: int
    ) -> Any:
        if opcode.iscontrol():
            self.trio_ws_interrupted = (self._inbound_compressed, self._inbound_is_compressible)
        elif opcode is Opcode.TEXT or opcode is Opcode.BINARY:  # a new message
            self.trio_ws_size = 0
        return super().frame_inbound_header(proto, opcode, rsv, payload_length)

    def frame_inbound_payload_data(self, proto: Any, data: bytes) -> bytes | CloseReason:
        if not self._inbound_compressed or not self._inbound_is_compressible:
            return data  # not compressed: the data plane counts it
        return self._trio_ws_inflate(data)

    def frame_inbound_complete(self, proto: Any, fin: bool) -> bytes | CloseReason | None:
        interrupted = self.trio_ws_interrupted
        if interrupted is not None:  # a control frame ends: back to the message it interrupted
            self.trio_ws_interrupted = None
            self._inbound_compressed, self._inbound_is_compressible = interrupted
            return None
        if not (fin and self._inbound_compressed and self._inbound_is_compressible):
            return super().frame_inbound_complete(proto, fin)
        # The message's end (RFC 7692 section 7.2.2): the empty block the sender left off,
        # inflated under the cap; then wsproto's bookkeeping, in its terms: a fresh context
        # for the next message if the peer may not keep its own, and no message in progress.
        tail = self._trio_ws_inflate(b"\x00\x00\xff\xff")
        if isinstance(tail, CloseReason):
            return tail
        if self.server_no_context_takeover if proto.client else self.client_no_context_takeover:
            self._decompressor = None
        self._inbound_compressed = None
        return tail

    def _trio_ws_inflate(self, data: bytes) -> bytes | CloseReason:
        room = self.trio_ws_limit - self.trio_ws_size
        assert self._decompressor is not None
        try:
            # max_length 0 would mean "no limit": room + 1 >= 1, and one byte more than the
            # room shows the message is too big.
            out = self._decompressor.decompress(bytes(data), max(room, 0) + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        if len(out) > room:
            return CloseReason.MESSAGE_TOO_BIG
        self.trio_ws_size += len(out)
        return out


def cap_inflation(proto: Any, limit: int) -> None:
    """Make wsproto's permessage-deflate in ``proto`` (a ``FrameProtocol``) inflate at most
    ``limit`` bytes per message (:class:`CappedDeflate`)."""
    for extension in proto.extensions:
        if type(extension) is PerMessageDeflate:
            extension.__class__ = CappedDeflate
            cast(CappedDeflate, extension).trio_ws_limit = limit
