"""``forward`` over Hypercorn's HTTP/2 WebSocket send (RFC 8441), where the session does not
shield its sends (no permessage-deflate offered, no data plane).

Hypercorn's ``H2Protocol.stream_send(Data)`` appends the frame to the stream's ``StreamBuffer``
and then, above 32 KiB buffered, waits on ``_paused`` (cancellable). A send cancelled in that
wait has already queued the frame, and Hypercorn's send task still writes it: ``forward`` must
not put such a message back, or a restarted ``forward`` sends it twice. (Found in review.)
"""

from __future__ import annotations

import functools
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import trio
from wsproto.frame_protocol import FrameProtocol, Opcode

import trio_ws
from trio_ws import Router, WebSocket, WebSocketRoute
from trio_ws.broadcast import Subscription, forward

BIG = "A" * 4_000_000  # more than the loopback socket buffers hold


class H2WebSocketClient:
    """A raw RFC 8441 client: extended CONNECT, then WebSocket frames in DATA frames."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.frames = FrameProtocol(client=True, extensions=[])
        self.messages: list[str] = []
        self._partial = ""
        self.status: str | None = None

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            await self.sock.send(data)

    async def pump_once(self) -> None:
        data = await self.sock.recv(65536)
        assert data, "server closed"
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                self.status = dict(event.headers)[":status"]
            elif isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                self.frames.receive_bytes(event.data)
                for frame in self.frames.received_frames():
                    if frame.opcode in (Opcode.TEXT, Opcode.CONTINUATION):
                        self._partial += frame.payload
                        if frame.message_finished:
                            self.messages.append(self._partial)
                            self._partial = ""
        await self.flush()

    async def connect(self) -> None:
        self.conn.initiate_connection()
        # Windows wide enough for everything: only the TCP socket holds the server back.
        self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
        self.conn.increment_flow_control_window(2**31 - 1 - 65535)
        await self.flush()
        settings = h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL
        while not self.conn.remote_settings.get(settings):
            await self.pump_once()
        self.conn.send_headers(
            1,
            [
                (":method", "CONNECT"),
                (":protocol", "websocket"),
                (":scheme", "http"),
                (":path", "/sub"),
                (":authority", "127.0.0.1"),
                ("sec-websocket-version", "13"),
            ],
        )
        await self.flush()
        while self.status is None:
            await self.pump_once()
        assert self.status == "200"


async def test_forward_restarted_after_a_send_cancelled_under_way_sends_it_once() -> None:
    subs: list[Subscription] = []
    scopes: list[trio.CancelScope] = []
    shielded: list[bool] = []
    ws_of: list[WebSocket] = []

    async def handler(ws: WebSocket) -> None:
        await ws.accept()
        shielded.append(ws._shield)
        ws_of.append(ws)
        async with hub.subscribe("t", max_backlog=10) as sub:
            subs.append(sub)

            async def restartable_forward() -> None:
                while True:
                    with trio.CancelScope() as scope:
                        scopes.append(scope)
                        await forward(sub, ws)
                        return

            ws.start_soon(restartable_forward)
            await ws.wait_disconnected()

    app = Router([WebSocketRoute("/sub", handler)])
    with trio.fail_after(20):
        async with trio_ws.open_broadcast() as hub, trio.open_nursery() as nursery:
            urls = await nursery.start(
                functools.partial(trio_ws.serve, app, host="127.0.0.1", port=0)
            )
            port = int(urls[0].rsplit(":", 1)[1])
            sock = trio.socket.socket()
            sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
            with sock:
                await sock.connect(("127.0.0.1", port))
                client = H2WebSocketClient(sock)
                await client.connect()
                while not (subs and scopes):  # noqa: ASYNC110
                    await trio.sleep(0.01)
                assert shielded == [False]  # HTTP/2, no deflate offered: unshielded sends

                await hub.publish("t", BIG)
                # The client stops reading its socket: Hypercorn's send_task blocks in
                # send_all and forward's send waits in StreamBuffer.push (``_paused``).
                await trio.sleep(0.5)
                assert subs[0].statistics().received == 1
                sent_before = ws_of[0]._messages_out
                scopes[-1].cancel()  # forward's send is cancelled while it waits
                while len(scopes) < 2:  # noqa: ASYNC110
                    await trio.sleep(0.01)
                # The session did not count it as sent, yet it is queued: not put back.
                assert ws_of[0]._messages_out == sent_before == 0
                assert subs[0].statistics().received == 1

                await hub.publish("t", "end")
                while "end" not in client.messages:
                    await client.pump_once()
            nursery.cancel_scope.cancel()
    # The message went out once: it was queued before the cancel.
    assert [len(m) for m in client.messages] == [len(BIG), 3]
