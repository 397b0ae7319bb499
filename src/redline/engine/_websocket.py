"""The WebSocket driver: connections held open, messages on a schedule, round trips timed.

Each virtual user of the plan's closed load is one connection, opened (and opened again
if the server drops it) for as long as the load asks for it. With ``every``, a
connection sends its next message at its own fixed times (``first + k * every``: the
schedule does not wait for replies, so a slow server cannot slow the sender down and
hide itself); a reply is matched to its message (the same text for ``echo``, or the same
value of a JSON field) and timed from the message's intended send time. Handshakes are
the ``connect`` endpoint (status 101), round trips the plan's message endpoint.

The framing is the websockets library's sans-I/O protocol on redline's own asyncio
connections: no task per connection, one object and one transport each, so one worker
holds tens of thousands. permessage-deflate is offered only when the plan asks.

Errors: ``ws_handshake_<status>`` (the server did not switch protocols), ``ws_closed``
(messages unanswered when the server closed the connection), ``ws_protocol`` (a frame
websockets rejects), ``read_timeout`` (no reply within the plan's read timeout), and the
connect errors of HTTP (``connect_refused``...).
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import time
from collections import deque
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from redline.core import Counter
from redline.http import classify_os_error
from redline.plan import ClosedLoad, Plan, RenderContext

from ._clock import IntervalClock
from ._recorder import Recorder

__all__ = ["WsUsers"]

_SWITCHED = 101
_RECONNECT_S = 0.1


class _Connection(asyncio.Protocol):
    """One WebSocket connection: the sans-I/O protocol, its transport, its schedule."""

    __slots__ = (
        "answered", "driver", "open", "outstanding", "protocol", "started_ns", "timer", "transport",
    )  # fmt: skip

    def __init__(self, driver: WsUsers) -> None:
        self.driver = driver
        self.protocol = ClientProtocol(
            driver.uri, extensions=driver.extensions, max_size=driver.max_size
        )
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.answered = False
        self.outstanding = 0
        self.timer: asyncio.TimerHandle | None = None
        self.started_ns = time.monotonic_ns()

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        request = self.protocol.connect()
        for name, value in self.driver.headers:
            request.headers[name] = value
        self.protocol.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self._events()

    def _events(self) -> None:
        protocol = self.protocol
        driver = self.driver
        for event in protocol.events_received():
            if isinstance(event, Response):
                self.answered = True
                if event.status_code == _SWITCHED and protocol.handshake_exc is None:
                    self.open = True
                    driver.connected(self)
                else:
                    code = event.status_code
                    driver.handshake_failed(self, f"ws_handshake_{code}")
                    self.abort()
                    return
            elif isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY):
                driver.reply(self, bytes(event.data), event.opcode is Opcode.TEXT)
        if protocol.parser_exc is not None and self.open:  # a frame websockets rejected
            self.open = False
            driver.broken(self, "ws_protocol")
            return
        self._flush()

    def _flush(self) -> None:
        transport = self.transport
        for chunk in self.protocol.data_to_send():
            if transport is None or transport.is_closing():
                return
            if chunk:
                transport.write(chunk)
            else:  # the protocol asks for the end of the stream
                transport.close()
                return

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not self.open and not self.answered:  # closed before any handshake answer
            self.driver.handshake_failed(self, "ws_handshake_closed")
        self.driver.lost(self, exc)

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._events()  # a refusal without Content-Length ends at the end of the stream
        return None

    # -- sending ---------------------------------------------------------------------------
    def send(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self._flush()

    def abort(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.abort()


class _Pool:
    """What the worker reads of a driver's connections: how many, and closing them."""

    def __init__(self, driver: WsUsers) -> None:
        self.driver = driver

    @property
    def size(self) -> int:
        """Connections open or being opened."""
        return len(self.driver.connections) + self.driver.connecting

    async def aclose(self) -> None:
        """Abort every connection."""
        for conn in list(self.driver.connections):
            conn.abort()
        self.driver.connections.clear()


class WsUsers:
    """Closed model over WebSocket: each virtual user holds a connection and talks."""

    def __init__(
        self,
        *,
        plan: Plan,
        load: ClosedLoad,
        scale: Any,
        rng: random.Random,
        finished: asyncio.Event,
        recorder: Recorder,
        clock: IntervalClock,
        ctx: RenderContext,
        drained: asyncio.Event,
        tls: ssl.SSLContext | None,
        max_connecting: int = 64,
    ) -> None:
        """The connections of this worker's share of ``load``."""
        spec = plan.websocket
        assert spec is not None
        scheme, host, port = plan.origin
        secure = scheme in ("wss", "https")
        self.uri = parse_uri(f"{'wss' if secure else 'ws'}://{host}:{port}{spec.path}")
        self.host, self.port, self.tls = host, port, tls if secure else None
        self.headers = spec.headers
        if spec.compression:
            from websockets.extensions.permessage_deflate import (
                ClientPerMessageDeflateFactory,
            )

            self.extensions: list[Any] | None = [ClientPerMessageDeflateFactory()]
        else:
            self.extensions = None
        self.max_size = plan.max_response_size
        self.spec = spec
        self.load = load
        self.scale = scale
        self.random = rng
        self.finished = finished
        self.recorder = recorder
        self.clock = clock
        self.ctx = ctx
        self.drained = drained
        self.connect_timeout = plan.connect_timeout
        self.read_timeout_ns = int(plan.read_timeout * 1e9)
        self.max_connecting = max_connecting
        self.sent_count = Counter("ws.messages_sent")
        self.received_count = Counter("ws.messages_received")
        """Every message from the server, replies and its own (the message rates)."""
        self.connect_endpoint = recorder.index("connect")
        self.message_endpoint = recorder.index(spec.name)
        self.every_ns = int(spec.every * 1e9) if spec.every else 0
        self.field = None if spec.correlate == "echo" else spec.correlate
        self.connections: set[_Connection] = set()
        self.connecting = 0
        self.waiting: dict[tuple[_Connection, str], deque[int]] = {}
        """Messages awaiting their reply: (connection, key) -> intended send times."""
        self.sent_order: deque[tuple[int, _Connection, str]] = deque()
        self.in_flight = 0
        self.target = 0
        self.stopping = False
        self.open_model = False
        self.pool: Any = _Pool(self)  # the worker reads size and aclose, as of a pool
        self.loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- the driver's side for the worker --------------------------------------------------
    def target_rps(self, at_s: float) -> float | None:
        """No intended request rate: connections are the load."""
        return None

    def control(self, action: str, value: float | None) -> None:
        """Live control: ``vus`` sets the whole test's connections."""
        if action == "vus" and value is not None and value >= 0:
            self.load = ClosedLoad(vus=int(value))
            self._adjust()

    def prepare(self) -> None:
        """Connections open when the load starts."""

    def begin(self, loop: asyncio.AbstractEventLoop) -> None:
        """The load starts: open the connections the load asks for; end on time."""
        self.loop = loop
        self._adjust()
        loop.call_later(self.clock.left_s(), self.finished.set)

    def sweep(self) -> None:
        """Every 0.1 s: replies past the read timeout, and the number of connections."""
        deadline = time.monotonic_ns() - self.read_timeout_ns
        order = self.sent_order
        while order and order[0][0] < deadline:
            intended, conn, key = order.popleft()
            if self._take(conn, key, intended):
                self.recorder.record_error(self.message_endpoint, "read_timeout", deadline)
        if not self.stopping:
            self._adjust()

    def stop(self) -> None:
        """Send nothing new; replies still due are waited for."""
        self.stopping = True
        for conn in self.connections:
            if conn.timer is not None:
                conn.timer.cancel()
        self._check_drained()

    @property
    def pending(self) -> bool:
        """Whether replies are awaited."""
        return self.in_flight > 0

    async def cancel_unfinished(self) -> None:
        """Connection attempts still running are cancelled."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def abandon_unfinished(self) -> None:
        """Messages still unanswered after the grace period are ``unfinished``."""
        now = time.monotonic_ns()
        for times in self.waiting.values():
            for _ in times:
                self.recorder.record_error(self.message_endpoint, "unfinished", now)
        self.waiting.clear()
        self.in_flight = 0

    def take_counters(
        self,
    ) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, int]], list[str]]:
        """No checks or exceptions."""
        return {}, {}, []

    def take_exemplars(self) -> list[tuple[str, int, float, int | None, str]]:
        """No traces."""
        return []

    # -- connections -----------------------------------------------------------------------
    def _adjust(self) -> None:
        if self.loop is None:
            return
        elapsed = (time.monotonic_ns() - self.clock.t0) / 1e9
        self.target = self.scale(self.load.vus_at(elapsed))
        while (
            len(self.connections) + self.connecting < self.target
            and self.connecting < self.max_connecting
        ):
            self.connecting += 1
            task = self.loop.create_task(self._open())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        extra = len(self.connections) + self.connecting - self.target
        for conn in list(self.connections)[: max(0, extra)]:
            if not conn.outstanding:
                self._retire(conn)

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        started = time.monotonic_ns()
        try:
            try:
                _, conn = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: _Connection(self), self.host, self.port, ssl=self.tls,
                        server_hostname=self.host if self.tls else None,
                    ),
                    self.connect_timeout,
                )  # fmt: skip
            finally:
                self.connecting -= 1
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            self.recorder.record_error(
                self.connect_endpoint, classify_os_error(exc), time.monotonic_ns()
            )
            if not self.stopping:
                loop.call_later(_RECONNECT_S, self._adjust)
            return
        conn.started_ns = started
        self.connections.add(conn)

    def connected(self, conn: _Connection) -> None:
        """The handshake succeeded: record it and start the connection's schedule."""
        now = time.monotonic_ns()
        self.recorder.record(self.connect_endpoint, now - conn.started_ns,
                             now - conn.started_ns, _SWITCHED, 0, now)  # fmt: skip
        if self.every_ns and not self.stopping:
            first = now + int(self.random.random() * self.every_ns)  # spread the sends
            self._schedule(conn, first)

    def handshake_failed(self, conn: _Connection, error_class: str) -> None:
        """The server answered the upgrade with something else."""
        self.recorder.record_error(self.connect_endpoint, error_class, time.monotonic_ns())
        self.connections.discard(conn)

    def broken(self, conn: _Connection, error_class: str) -> None:
        """A frame the protocol rejected: the connection is failed."""
        self._fail_waiting(conn, error_class)
        conn.abort()

    def lost(self, conn: _Connection, exc: Exception | None) -> None:
        """The connection closed: its unanswered messages fail; the user connects again."""
        self.connections.discard(conn)
        self._fail_waiting(conn, "ws_closed")
        if not self.stopping and self.loop is not None:
            self.loop.call_later(_RECONNECT_S, self._adjust)

    def _retire(self, conn: _Connection) -> None:
        self.connections.discard(conn)
        if conn.timer is not None:
            conn.timer.cancel()
        conn.protocol.send_close()
        conn._flush()
        conn.abort()

    def _fail_waiting(self, conn: _Connection, error_class: str) -> None:
        if not conn.outstanding:
            return
        now = time.monotonic_ns()
        for key in [k for k in self.waiting if k[0] is conn]:
            for _ in self.waiting.pop(key):
                self.recorder.record_error(self.message_endpoint, error_class, now)
                self.in_flight -= 1
        conn.outstanding = 0
        self._check_drained()

    # -- messages --------------------------------------------------------------------------
    def _schedule(self, conn: _Connection, at_ns: int) -> None:
        assert self.loop is not None
        delay = max(0.0, (at_ns - time.monotonic_ns()) / 1e9)
        conn.timer = self.loop.call_later(delay, self._send, conn, at_ns)

    def _send(self, conn: _Connection, intended: int) -> None:
        if self.stopping or not conn.open or conn not in self.connections:
            return
        message = self.spec.message
        assert message is not None
        text = message.render(self.ctx)
        key = text
        if self.field is not None:
            try:
                key = str(json.loads(text)[self.field])
            except (ValueError, KeyError, TypeError):
                key = text
        now = time.monotonic_ns()
        self.waiting.setdefault((conn, key), deque()).append(intended)
        self.sent_order.append((intended, conn, key))
        conn.outstanding += 1
        self.in_flight += 1
        self.clock.started[now >= self.clock.boundary] += 1
        self.recorder.bytes_out[self.message_endpoint] += len(text)
        conn.send(text)
        self.sent_count.add(1)
        self._schedule(conn, intended + self.every_ns)

    def reply(self, conn: _Connection, data: bytes, text: bool) -> None:
        """A message from the server: the reply to one of ours, or one of its own."""
        self.received_count.add(1)
        key: str
        if self.field is None:
            key = data.decode("utf-8", "replace")
        else:
            try:
                key = str(json.loads(data)[self.field])
            except (ValueError, KeyError, TypeError):
                return  # not a reply: the server's own message
        found = self.waiting.get((conn, key))
        if not found:
            return
        intended = found.popleft()
        if not found:
            del self.waiting[(conn, key)]
        conn.outstanding -= 1
        self.in_flight -= 1
        now = time.monotonic_ns()
        self.recorder.record(self.message_endpoint, now - intended, now - intended, _SWITCHED,
                             len(data), now)  # fmt: skip
        if self.stopping:
            self._check_drained()

    def _take(self, conn: _Connection, key: str, intended: int) -> bool:
        """Remove an unanswered message (timed out); False if it was answered."""
        found = self.waiting.get((conn, key))
        if not found or intended not in found:
            return False
        found.remove(intended)
        if not found:
            del self.waiting[(conn, key)]
        conn.outstanding -= 1
        self.in_flight -= 1
        return True

    def _check_drained(self) -> None:
        if self.stopping and not self.in_flight:
            self.drained.set()
