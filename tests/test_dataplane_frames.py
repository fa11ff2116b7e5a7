"""The data plane's own frame parser against wsproto: identical messages, bytes out and outcome.

The data plane parses complete, unfragmented, masked text and binary frames itself and leaves
everything else to wsproto. This differential fuzz test feeds the same random byte streams
(text, binary, empty and large frames; fragments, pings, pongs, closes; unmasked frames, RSV
bits, reserved opcodes, non-minimal lengths, invalid UTF-8, oversize messages), cut at random
points, to a data plane with the fast path and to one that uses wsproto alone, and requires
identical results.
"""

from __future__ import annotations

import math
import os
import random
import struct
from typing import Any

import pytest
import trio
from wsproto.frame_protocol import FrameProtocol

from trio_ws import _wsproto_private
from trio_ws._dataplane import DataPlane

MAX_SIZE = 100_000


class FakeRaw:
    """The stdlib socket: records what is written."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.shut = False

    def send(self, data: bytes) -> int:
        self.written += data
        return len(data)

    def shutdown(self, how: int) -> None:
        self.shut = True

    def setsockopt(self, *args: Any) -> None:
        pass


class FakeSock:
    def close(self) -> None:
        pass


class FakeHook:
    def __init__(self, raw: FakeRaw) -> None:
        self.raw = raw

    async def forward(self, message: Any) -> None:
        await trio.lowlevel.checkpoint()

    def can_take_over(self) -> bool:
        return True

    def swap_in(self, plane: Any) -> Any:
        return None

    def swap_out(self, previous: Any) -> None:
        pass

    def take_over(self) -> Any:
        def spawn(fn: Any) -> None:
            pass

        return (
            FakeSock(),
            self.raw,
            FrameProtocol(False, []),
            spawn,
            _wsproto_private.frame_protocol_idle,
        )


async def run_plane(chunks: list[bytes], *, fast: bool) -> tuple[list[Any], bytes, Any]:
    raw = FakeRaw()
    send, receive = trio.open_memory_channel[Any](math.inf)
    plane = DataPlane(
        FakeHook(raw),  # type: ignore[arg-type]
        send,
        max_message_size=MAX_SIZE,
        ping_interval=None,
        ping_timeout=None,
    )
    await plane.send({"type": "websocket.accept"})
    assert plane.active
    if not fast:
        plane._fast = plane._fast_ok = False
    for chunk in chunks:
        if plane.closed or plane._outcome is not None:
            break
        await plane._receive(chunk)
    messages = []
    while True:
        try:
            messages.append(receive.receive_nowait())
        except trio.WouldBlock:
            break
    return messages, bytes(raw.written), plane._outcome


def masked(
    first: int, payload: bytes, rng: random.Random, *, mask: bool = True, width: int = 0
) -> bytes:
    length = len(payload)
    bit = 0x80 if mask else 0
    if width == 0:
        width = 1 if length < 126 else 2 if length < 65536 else 8
    if width == 1:
        header = bytes((first, length | bit))
    elif width == 2:
        header = struct.pack("!BBH", first, 126 | bit, length)
    else:
        header = struct.pack("!BBQ", first, 127 | bit, length)
    if not mask:
        return header + payload
    key = rng.randbytes(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return header + key + body


def random_stream(rng: random.Random) -> bytes:
    out = b""
    for _ in range(rng.randrange(1, 25)):
        kind = rng.random()
        size = rng.choice([0, 1, 3, 4, 5, 125, 126, 127, 300, 65535, 65536, 70000])
        if kind < 0.35:
            text = "".join(rng.choice("aZ é€𝄞") for _ in range(size // 3))
            out += masked(0x81, text.encode(), rng)
        elif kind < 0.6:
            out += masked(0x82, rng.randbytes(size), rng)
        elif kind < 0.68:  # fragmented message with a ping in the middle
            opcode = rng.choice([0x1, 0x2])
            data = "x€y".encode() * (size // 5 + 1)
            cut = rng.randrange(len(data) + 1)
            out += masked(opcode, data[:cut], rng)
            out += masked(0x89, b"mid", rng)
            out += masked(0x80, data[cut:], rng)
        elif kind < 0.75:
            out += masked(rng.choice([0x89, 0x8A]), rng.randbytes(rng.randrange(0, 126)), rng)
        elif kind < 0.78:
            out += masked(0x81, b"\xff\xfe" + rng.randbytes(size), rng)  # invalid UTF-8
        elif kind < 0.80:
            out += masked(0x81, b"ok", rng, mask=False)  # unmasked
        elif kind < 0.82:
            out += masked(rng.choice([0xC1, 0xA2, 0x83, 0x8B]), b"odd", rng)  # RSV bits, opcodes
        elif kind < 0.84:
            out += masked(0x82, rng.randbytes(min(size, 125)), rng, width=rng.choice([2, 8]))
        elif kind < 0.86:
            out += masked(0x82, rng.randbytes(MAX_SIZE + 1), rng)  # too big
        elif kind < 0.88:
            out += masked(0x80, b"orphan continuation", rng)
        elif kind < 0.90:
            out += masked(
                0x88, struct.pack("!H", rng.choice([1000, 999, 4000, 1005])) + b"bye", rng
            )
        else:
            out += masked(0x81, os.urandom(0)[:0] + b"plain ascii " * (size // 12), rng)
    return out


def cut(data: bytes, rng: random.Random) -> list[bytes]:
    if rng.random() < 0.2:
        return [data]
    points = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randrange(1, 12))))
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=False)]


@pytest.mark.parametrize("seed", range(150))
async def test_fast_path_matches_wsproto(seed: int) -> None:
    rng = random.Random(seed)
    chunks = cut(random_stream(rng), rng)
    assert await run_plane(chunks, fast=True) == await run_plane(chunks, fast=False)


async def test_fast_path_is_taken() -> None:
    rng = random.Random(0)
    chunks = [masked(0x81, b"hello", rng) + masked(0x82, b"\x00" * 70000, rng)]
    messages, _, outcome = await run_plane(chunks, fast=True)
    assert [m["text"] or len(m["bytes"]) for m in messages] == ["hello", 70000]
    assert outcome is None
