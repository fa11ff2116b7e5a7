"""permessage-deflate on the data plane: inflation capped at ``websocket_max_message_size``.

wsproto inflates a compressed frame whole, so a small frame could inflate to any size before the
data plane's own 1009 check. ``trio_ws._wsproto_private.CappedDeflate`` inflates no more than a
message may still grow by. Here: a differential test against wsproto's own extension (random
messages, fragments, pings and byte splits: identical frames under a large limit, the same
frames up to a 1009 under a small one), and a decompression bomb sent by a raw client to real
``trio_ws.serve`` (memory stays bounded, the client gets 1009).
"""

from __future__ import annotations

import os
import random
import ssl
import tracemalloc
import zlib
from typing import Any

import pytest
import trio
from hypercorn.config import Config
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

from tests.test_dataplane import RawClient, Recorder, closes, serving
from trio_ws import _wsproto_private
from trio_ws._dataplane import CLOSED_BY_KEY

DEFLATE = b"Sec-WebSocket-Extensions: permessage-deflate\r\n"


def _pair(rng: random.Random) -> tuple[FrameProtocol, PerMessageDeflate, PerMessageDeflate]:
    """A client FrameProtocol with deflate negotiated, and two server-side extensions."""
    client_ext = PerMessageDeflate(
        client_no_context_takeover=rng.random() < 0.5,
        client_max_window_bits=rng.choice([9, 12, 15]),
    )
    offer = client_ext.offer()
    assert isinstance(offer, str)
    servers = [PerMessageDeflate(), PerMessageDeflate()]
    for server in servers:
        response = server.accept(offer)
        assert isinstance(response, str)
    client_ext.finalize(response)
    return FrameProtocol(True, [client_ext]), servers[0], servers[1]


def _wire(rng: random.Random, client: FrameProtocol) -> tuple[bytes, list[int]]:
    """Random messages as the client sends them; also each message's inflated size."""
    wire = bytearray()
    sizes = []
    for _ in range(rng.randrange(1, 30)):
        size = rng.choice([0, 1, 100, 3000, 20000, 70000])
        if rng.random() < 0.5:
            payload: Any = "".join(rng.choice("ab é€") for _ in range(size // 3))
            sizes.append(len(payload.encode()))
        else:
            payload = rng.randbytes(size) if rng.random() < 0.3 else bytes(size)
            sizes.append(size)
        pieces = rng.randrange(1, 4)
        cut = [len(payload) * i // pieces for i in range(pieces + 1)]
        for n in range(pieces):
            wire += client.send_data(payload[cut[n] : cut[n + 1]], n == pieces - 1)
        if rng.random() < 0.3:
            # Between messages only: wsproto's deflate forgets a compressed message in
            # progress when a control frame arrives inside it (so does CappedDeflate, alike).
            wire += client.ping(b"p")
    return bytes(wire), sizes


def _frames(proto: FrameProtocol, wire: bytes, rng: random.Random) -> tuple[list[Any], int]:
    """Feed ``wire`` in random pieces; the frames parsed, and the ParseFailed code (or 0)."""
    got: list[Any] = []
    position = 0
    try:
        while position < len(wire):
            step = rng.randrange(1, 9000)
            proto.receive_bytes(wire[position : position + step])
            position += step
            for frame in proto.received_frames():
                got.append(
                    (frame.opcode, frame.payload, frame.frame_finished, frame.message_finished)
                )
    except ParseFailed as exc:
        return got, int(exc.code)
    return got, 0


@pytest.mark.parametrize("seed", range(40))
def test_capped_deflate_against_wsproto(seed: int) -> None:
    rng = random.Random(seed)
    client, plain_ext, capped_ext = _pair(rng)
    wire, sizes = _wire(rng, client)
    plain = FrameProtocol(False, [plain_ext])
    split = rng.random()
    expected, failed = _frames(plain, wire, random.Random(split))
    assert failed == 0
    limit = rng.choice([10**9, 70000, 20000, 3000, 50])
    capped = FrameProtocol(False, [capped_ext])
    _wsproto_private.cap_inflation(capped, limit)
    assert type(capped_ext) is _wsproto_private.CappedDeflate
    got, failed = _frames(capped, wire, random.Random(split))
    if max(sizes) <= limit:
        assert (got, failed) == (expected, 0)
    else:
        assert failed == 1009
        assert got == expected[: len(got)]
        assert len(got) < len(expected)


def _bomb(inflated: int) -> bytes:
    """One masked binary frame, compressed (RSV1), inflating to ``inflated`` zero bytes."""
    deflate = zlib.compressobj(wbits=-15)
    payload = deflate.compress(bytes(inflated)) + deflate.flush(zlib.Z_SYNC_FLUSH)
    payload = payload[:-4]  # RFC 7692 section 7.2.1: the empty block's tail is left off
    assert len(payload) < 1100
    first = 0x80 | 0x40 | 0x2  # FIN, RSV1 (compressed), binary
    if len(payload) < 126:
        header = bytes((first, 0x80 | len(payload)))
    else:
        header = bytes((first, 0x80 | 126)) + len(payload).to_bytes(2, "big")
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


async def assert_bomb_refused(address: str, ssl_context: ssl.SSLContext | None = None) -> None:
    """A ~1 KiB frame inflating to 1 MiB (the limit is 16 KiB): 1009, memory stays bounded."""
    bomb = _bomb(1 << 20)
    async with RawClient.connect(
        address, "/echo", ssl_context=ssl_context, headers=DEFLATE
    ) as client:
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            await client.send_raw(bomb)
            events = await client.events()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert closes(events) == [(1009, "message too big")]
    # Uncapped, wsproto's inflation alone holds the whole 1 MiB (and copies of it).
    assert peak - before < 512 * 1024


def small_limit(config: Config | None = None) -> Config:
    config = config or Config()
    config.websocket_max_message_size = 16 * 1024
    return config


async def test_a_decompression_bomb_gets_1009() -> None:
    app = Recorder()
    async with serving(app, small_limit()) as address:
        await assert_bomb_refused(address)
        disconnect = await app.until_disconnect()
        assert (disconnect["code"], disconnect[CLOSED_BY_KEY]) == (1009, "server")
        # A compressed message within the limit still arrives whole.
        async with RawClient.connect(address, "/echo", headers=DEFLATE) as client:
            await client.send_raw(_bomb(16 * 1024))
            with trio.fail_after(5):
                message = await app.next()
            assert message["bytes"] == bytes(16 * 1024)


@pytest.mark.parametrize("seed", range(20))
def test_control_frames_inside_a_compressed_message(seed: int) -> None:
    """RFC 6455 section 5.4: pings between the fragments of a compressed message leave it
    whole (wsproto's own extension passes the fragments after a ping on still compressed)."""
    rng = random.Random(seed)
    client, _, capped_ext = _pair(rng)
    wire = bytearray()
    sent: list[Any] = []
    pings = 0
    for _ in range(rng.randrange(1, 10)):
        payload: Any = rng.choice([bytes(5000), "é" * 3000, rng.randbytes(2000)])
        sent.append(payload)
        pieces = rng.randrange(2, 5)
        cut = [len(payload) * i // pieces for i in range(pieces + 1)]
        for n in range(pieces):
            wire += client.send_data(payload[cut[n] : cut[n + 1]], n == pieces - 1)
            if n < pieces - 1:
                wire += client.ping(b"%d" % pings)
                pings += 1
    capped = FrameProtocol(False, [capped_ext])
    _wsproto_private.cap_inflation(capped, 10**6)
    frames, failed = _frames(capped, bytes(wire), rng)
    assert failed == 0
    got: list[Any] = []
    parts: list[Any] = []
    for opcode, payload, _, message_finished in frames:
        if opcode == Opcode.PING:
            continue
        parts.append(payload)
        if message_finished:
            got.append("".join(parts) if isinstance(parts[0], str) else b"".join(parts))
            parts = []
    assert got == sent
    assert [f[1] for f in frames if f[0] == Opcode.PING] == [b"%d" % i for i in range(pings)]
