"""HTTP/2 client connections for the engine: streams lent out as if they were connections.

A driver written for HTTP/1.1 keeps one request in flight per connection. Here each
:class:`H2Stream` is such a "connection" to the driver (it has ``send``, ``fail``,
``busy``, ``reusable`` and the phase stamps), and up to ``max_streams`` of them share one
TCP (or TLS, ALPN ``h2``) connection, an :class:`H2Connection`. The open model's queue,
the closed model's virtual users and the sessions of scenarios all work unchanged: a
virtual user is a stream, and a hundred of them need one connection, as in h2load's
``-m``.

The framing is redline's own (RFC 9113), kept to what a client needs and no slower:
one pass over each read, one write per read (frames produced while handling it are
batched), request header blocks encoded once per distinct request (:mod:`._hpack`).
h2 (the sans-IO library) was measured at 93 us of client CPU per request here, a ceiling
of about 10,000 requests a second per core; this path does the same work in a fraction.

Errors are classified: ``h2_rst_<code>`` for a stream the server reset
(``h2_rst_refused_stream``...), ``h2_goaway`` for a request the server's GOAWAY left
unprocessed, ``h2_goaway_<code>`` for requests lost when a server closed the connection
with an error, ``h2_<code>`` for a connection redline closed because the server broke
the protocol (``h2_protocol_error``, ``h2_frame_size_error``,
``h2_compression_error``, ``h2_flow_control_error``), and ``h2_flow_stall`` for a
request whose body waited on flow control past the read timeout.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

from redline.core import AddressPolicy, ProtocolError, TransportError

from ._connection import REUSED, PoolListener, timed_connection
from ._connection import classify_os_error as _classify_os_error
from ._encoding import CompressionMeter, content_encoding
from ._hpack import ResponseBlocks, encode_block, request_parts

__all__ = ["H2_ERRORS", "H2Connection", "H2Pool", "H2Stream"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _PRIORITY, _RST, _SETTINGS, _PUSH, _PING, _GOAWAY, _WINDOW, _CONT = range(10)
_END_STREAM, _ACK, _END_HEADERS, _PADDED, _PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
_MAX_STREAM_ID = 2**31 - 1
_MAX_WINDOW = 2**31 - 1
_ATTEMPTS = 3
"""Sends of one request that a server refused unprocessed (GOAWAY, REFUSED_STREAM)."""

H2_ERRORS = {
    0x0: "no_error", 0x1: "protocol_error", 0x2: "internal_error",
    0x3: "flow_control_error", 0x4: "settings_timeout", 0x5: "stream_closed",
    0x6: "frame_size_error", 0x7: "refused_stream", 0x8: "cancel",
    0x9: "compression_error", 0xA: "connect_error", 0xB: "enhance_your_calm",
    0xC: "inadequate_security", 0xD: "http_1_1_required",
}  # fmt: skip
"""HTTP/2 error codes by number (RFC 9113 section 7)."""
_CODES = {name: code for code, name in H2_ERRORS.items()}

STREAM_WINDOW = 16 * 1024 * 1024
"""The receive window redline gives each stream (SETTINGS_INITIAL_WINDOW_SIZE)."""
CONNECTION_WINDOW = 64 * 1024 * 1024
"""The receive window of each connection (raised from 65,535 by a WINDOW_UPDATE)."""

_frame_head = struct.Struct(">I B I")  # length << 8 | type, flags, stream id
_u32 = struct.Struct(">I")
_monotonic_ns = time.monotonic_ns
_parts_cache: dict[tuple[bytes, bytes], tuple[bytes, bytes, bool]] = {}


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return _frame_head.pack(len(payload) << 8 | kind, flags, stream) + payload


def _name(code: int) -> str:
    return H2_ERRORS.get(code, f"0x{code:x}")


def request_block(data: bytes, scheme: bytes) -> tuple[bytes, bytes, bool]:
    """``(HPACK block, body, is gRPC)`` of an HTTP/1.1-encoded request, remembered by its bytes.

    Raises:
        ProtocolError: ``data`` is not an HTTP/1.1 request.
    """
    key = (data, scheme)
    found = _parts_cache.get(key)
    if found is None:
        fields, body = request_parts(data, scheme)
        grpc = any(n == b"content-type" and v.startswith(b"application/grpc") for n, v in fields)
        found = (encode_block(fields), body, grpc)
        if len(_parts_cache) >= 4096:  # dynamic requests: a fresh head each time
            _parts_cache.clear()
        _parts_cache[key] = found
    return found


class H2Stream:
    """One stream slot of an :class:`H2Connection`: what a driver takes for a connection.

    Carries one request at a time; after its response it takes the next on a new stream
    id of the same connection. Attributes as :class:`~redline.http.ClientConnection`
    (``tag``, ``intended_ns``, ``token``, ``busy``, ``reusable``, the phase stamps; with
    ``capture``, ``head`` and ``body``), and ``headers``/``trailers`` of the last
    response as raw fields.
    """

    __slots__ = (
        "alive", "attempts", "body", "busy", "bytes_in", "chunks", "data", "first_ns", "grpc",
        "head", "headers", "intended_ns", "link", "pending", "pool", "recv_consumed", "requests",
        "reusable", "send_window", "sent_ns", "setup", "status", "stream_id", "tag", "token",
        "trailers", "wire_out", "written_ns",
    )  # fmt: skip

    def __init__(self, link: H2Connection) -> None:
        """A slot on ``link``."""
        self.link: H2Connection | None = link
        """None while its request waits for another connection (after a GOAWAY)."""
        self.pool = link.pool
        self.data = b""
        self.wire_out = 0
        """Bytes of the request in flight as framed (HEADERS, CONTINUATION, DATA)."""
        self.grpc = False
        """Whether the request in flight is a gRPC call (its status is in the trailers)."""
        self.attempts = 0
        self.alive = True
        self.busy = False
        self.reusable = True
        self.tag = 0
        self.token: object = None
        self.intended_ns = 0
        self.sent_ns = 0
        self.written_ns = 0
        self.first_ns = 0
        self.bytes_in = 0
        self.setup = REUSED
        self.requests = 0
        self.stream_id = 0
        self.status = 0
        self.send_window = 0
        self.recv_consumed = 0
        self.pending: memoryview | None = None
        """The part of the request body flow control has not let out yet."""
        self.headers: list[tuple[bytes, bytes]] = []
        self.trailers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] | None = None
        self.head = b""
        self.body = b""

    def send(self, data: bytes, tag: int, intended_ns: int, sent_ns: int) -> None:
        """Send one request (encoded as HTTP/1.1; sent as HTTP/2) on a new stream."""
        self.busy = True
        self.tag = tag
        self.intended_ns = intended_ns
        self.sent_ns = sent_ns
        self.bytes_in = 0
        self.attempts = 0
        count = self.requests + 1
        self.requests = count
        timed = count & 7 == 1  # one in PHASE_EVERY (8), the first with the set-up
        if timed:
            self.first_ns = 0
        self.link.start(self, data)  # type: ignore[union-attr]  # lent slots have a link
        counted = self.pool.bytes_out
        if counted is not None:  # the driver counted the request as HTTP/1.1: the frames count
            counted[tag] += self.wire_out - len(data)
        if timed:
            self.written_ns = _monotonic_ns()

    def first_exchange_done(self) -> None:
        """Its first response is recorded, and the connection's set-up with it."""
        self.setup = REUSED

    def fail(self, error_class: str) -> None:
        """Reset this stream and retire the slot, reporting ``error_class`` if busy."""
        if not self.alive:
            return
        if self.link is None:
            self.pool.abandon(self, error_class)
        else:
            self.link.drop(self, error_class, reset=True)


class H2Connection(asyncio.Protocol):
    """One HTTP/2 connection of an :class:`H2Pool`: frames in, frames out, its streams."""

    def __init__(self, pool: H2Pool) -> None:
        """A connection owned by ``pool`` (the event loop calls the rest)."""
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self._write: Callable[[bytes], object] | None = None
        self.buffer = bytearray()
        self.out = bytearray()
        self.reading = False
        self.blocks = ResponseBlocks()
        self.streams: dict[int, H2Stream] = {}
        self.slots = 0
        self.next_id = 1
        self.peer_max_streams = 100  # until the server's SETTINGS say
        self.capacity = min(pool.max_streams, 100)
        """Streams this connection lends at most: ours and the server's limits."""
        self.peer_window = 65_535  # SETTINGS_INITIAL_WINDOW_SIZE of the server
        self.peer_max_frame = 16_384
        self.send_window = 65_535  # the connection's
        self.recv_consumed = 0
        self.blocked: list[H2Stream] = []
        self.usable = True
        """False once a GOAWAY came, stream ids ran out or the connection failed."""
        self.closed = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.partial: tuple[int, int, bytearray] | None = None  # headers awaiting CONTINUATION
        self.scheme = b"https" if pool.tls is not None else b"http"
        self.setup: tuple[int, int, int] = REUSED

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._write = self.transport.write
        # HEADER_TABLE_SIZE 0: the server indexes nothing, so its blocks repeat byte for
        # byte and decode from memory (the cache in ResponseBlocks); no push; big windows
        settings = struct.pack(
            ">HIHIHIHI", 0x1, 0, 0x2, 0, 0x4, STREAM_WINDOW, 0x6, self.pool.max_header_list_size
        )
        self._write(
            PREFACE
            + _frame(_SETTINGS, 0, 0, settings)
            + _frame(_WINDOW, 0, 0, _u32.pack(CONNECTION_WINDOW - 65_535))
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc or TransportError("closed before HTTP/2 SETTINGS"))
            self.ready.exception()  # retrieved: the pool reads it from the connect task
        self._fail_all(_classify_os_error(exc), goaway=None)

    def eof_received(self) -> bool | None:
        return None

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        if buffer:  # a frame began in an earlier read
            buffer += data
            data = bytes(buffer)
            buffer.clear()
        view = memoryview(data)
        self.reading = True
        streams = self.streams
        max_size = self.pool.max_response_size
        size = len(view)
        position = 0
        try:
            while size - position >= 9:
                word, flags, stream = _frame_head.unpack_from(view, position)
                length = word >> 8
                if length > 16_384:  # our SETTINGS_MAX_FRAME_SIZE is the default
                    raise _ConnectionError("frame_size_error", f"a {length}-byte frame")
                end = position + 9 + length
                if end > size:
                    break
                kind = word & 0xFF
                slot = streams.get(stream)
                if (
                    kind == _DATA and flags == _END_STREAM and slot is not None and slot.status
                    and self.partial is None
                ):  # fmt: skip
                    # the common end of a response: its last (often only) DATA frame
                    consumed = self.recv_consumed + length
                    if consumed >= CONNECTION_WINDOW // 2:
                        self.out += _frame(_WINDOW, 0, 0, _u32.pack(consumed))
                        consumed = 0
                    self.recv_consumed = consumed
                    slot.bytes_in += length + 9
                    if slot.chunks is not None:
                        slot.chunks.append(data[position + 9 : end])
                    if slot.bytes_in > max_size:
                        self.drop(slot, "too_large", reset=True)
                    else:
                        self._complete(slot)
                elif (
                    kind == _HEADERS and flags | _END_STREAM == _END_HEADERS | _END_STREAM
                    and slot is not None and self.partial is None
                ):  # fmt: skip
                    self._header_block(stream, flags, data[position + 9 : end], length)
                else:
                    self._frame(kind, flags, stream & _MAX_STREAM_ID, view[position + 9 : end])
                position = end
                if self.closed:
                    return
        except _ConnectionError as exc:
            self.reading = False
            self._fail_all("h2_" + exc.code, goaway=exc.code)
            return
        finally:
            self.reading = False
        if position < size:
            buffer += view[position:]
        if self.out:
            self.flush()

    def flush(self) -> None:
        """Write the frames produced since the last write."""
        if self.out and self._write is not None and not self.closed:
            data = bytes(self.out)
            self.out.clear()
            self._write(data)

    # -- frames in -------------------------------------------------------------------------
    def _frame(self, kind: int, flags: int, stream_id: int, payload: memoryview) -> None:
        if self.partial is not None and kind != _CONT:
            raise _ConnectionError("protocol_error", "a frame between HEADERS and CONTINUATION")
        if kind == _DATA:
            self._data(flags, stream_id, payload)
        elif kind == _HEADERS:
            self._headers(flags, stream_id, payload)
        elif kind == _CONT:
            self._continuation(flags, stream_id, payload)
        elif kind == _SETTINGS:
            self._settings(flags, stream_id, payload)
        elif kind == _WINDOW:
            self._window_update(stream_id, payload)
        elif kind == _RST:
            if stream_id == 0 or len(payload) != 4:
                raise _ConnectionError("protocol_error" if stream_id == 0 else "frame_size_error",
                                       "a malformed RST_STREAM")  # fmt: skip
            self._stream_reset(stream_id, _u32.unpack(payload)[0])
        elif kind == _PING:
            if stream_id != 0 or len(payload) != 8:
                raise _ConnectionError("protocol_error", "a malformed PING")
            if not flags & _ACK:
                self.out += _frame(_PING, _ACK, 0, bytes(payload))
        elif kind == _GOAWAY:
            if stream_id != 0 or len(payload) < 8:
                raise _ConnectionError("protocol_error", "a malformed GOAWAY")
            last, code = struct.unpack_from(">II", payload)
            self._goaway(last & _MAX_STREAM_ID, code)
        elif kind == _PUSH:
            raise _ConnectionError("protocol_error", "PUSH_PROMISE with push disabled")
        elif kind == _PRIORITY:
            if stream_id == 0 or len(payload) != 5:
                raise _ConnectionError("protocol_error", "a malformed PRIORITY")
        elif not self.ready.done():
            raise _ConnectionError("protocol_error", "the server's first frame is not SETTINGS")
        # other types are extensions: ignored, as RFC 9113 section 5.5 asks

    def _stream(self, stream_id: int, what: str) -> H2Stream | None:
        if stream_id == 0:
            raise _ConnectionError("protocol_error", f"{what} on stream 0")
        if not self.ready.done():
            raise _ConnectionError("protocol_error", "the server's first frame is not SETTINGS")
        found = self.streams.get(stream_id)
        if found is None and (stream_id >= self.next_id or not stream_id & 1):
            raise _ConnectionError("protocol_error", f"{what} on idle stream {stream_id}")
        return found  # None: a stream redline reset or finished (its late frames are dropped)

    @staticmethod
    def _unpad(flags: int, payload: memoryview) -> memoryview:
        if not flags & _PADDED:
            return payload
        if not payload:
            raise _ConnectionError("frame_size_error", "a padded frame with no pad length")
        pad = payload[0]
        if pad >= len(payload):
            raise _ConnectionError("protocol_error", "padding longer than the frame")
        return payload[1 : len(payload) - pad]

    def _data(self, flags: int, stream_id: int, payload: memoryview) -> None:
        slot = self._stream(stream_id, "DATA")
        size = len(payload)
        consumed = self.recv_consumed + size
        if consumed >= CONNECTION_WINDOW // 2:
            self.out += _frame(_WINDOW, 0, 0, _u32.pack(consumed))
            consumed = 0
        self.recv_consumed = consumed
        if slot is None:
            return
        if not slot.status:
            self.drop(slot, "h2_protocol_error", reset=True, code=0x1)
            return
        body = self._unpad(flags, payload)
        slot.bytes_in += size + 9
        if slot.chunks is not None:
            slot.chunks.append(bytes(body))
        if slot.bytes_in > self.pool.max_response_size:
            self.drop(slot, "too_large", reset=True)
            return
        if flags & _END_STREAM:
            self._complete(slot)
            return
        used = slot.recv_consumed + size
        if used >= STREAM_WINDOW // 2:
            self.out += _frame(_WINDOW, 0, stream_id, _u32.pack(used))
            used = 0
        slot.recv_consumed = used

    def _headers(self, flags: int, stream_id: int, payload: memoryview) -> None:
        self._stream(stream_id, "HEADERS")
        block = self._unpad(flags, payload)
        if flags & _PRIORITY_FLAG:
            if len(block) < 5:
                raise _ConnectionError("frame_size_error", "HEADERS too short for its priority")
            block = block[5:]
        if flags & _END_HEADERS:
            self._header_block(stream_id, flags, bytes(block), len(payload))
        else:
            self.partial = (stream_id, flags, bytearray(block))

    def _continuation(self, flags: int, stream_id: int, payload: memoryview) -> None:
        if self.partial is None or self.partial[0] != stream_id:
            raise _ConnectionError("protocol_error", "CONTINUATION without its HEADERS")
        self.partial[2].extend(payload)
        if len(self.partial[2]) > self.pool.max_header_list_size * 2:
            raise _ConnectionError("enhance_your_calm", "a header block without end")
        if flags & _END_HEADERS:
            started, first_flags, block = self.partial
            self.partial = None
            self._header_block(started, first_flags, bytes(block), len(block))

    def _header_block(self, stream_id: int, flags: int, block: bytes, size: int) -> None:
        try:
            fields, status = self.blocks.decode(block)  # always: the table is the connection's
        except ProtocolError:
            raise _ConnectionError(
                "compression_error", "a header block that does not decode"
            ) from None
        slot = self.streams.get(stream_id)
        if slot is None:
            return
        if not slot.first_ns:
            slot.first_ns = _monotonic_ns()
        slot.bytes_in += size + 9
        if slot.status:  # trailers
            if not flags & _END_STREAM:
                self.drop(slot, "h2_protocol_error", reset=True, code=0x1)
                return
            slot.trailers = fields
            self._complete(slot)
            return
        if not 200 <= status <= 599:
            if 100 <= status < 200 and status != 101 and not flags & _END_STREAM:
                return  # informational: the final head follows
            self.drop(slot, "h2_protocol_error", reset=True, code=0x1)
            return
        slot.status = status
        slot.headers = fields
        if flags & _END_STREAM:
            self._complete(slot)

    def _settings(self, flags: int, stream_id: int, payload: memoryview) -> None:
        if stream_id != 0:
            raise _ConnectionError("protocol_error", "SETTINGS on a stream")
        if flags & _ACK:
            if payload:
                raise _ConnectionError("frame_size_error", "a SETTINGS ack with a payload")
            return
        if len(payload) % 6:
            raise _ConnectionError("frame_size_error", "SETTINGS not a multiple of 6 bytes")
        for offset in range(0, len(payload), 6):
            key, value = struct.unpack_from(">HI", payload, offset)
            if key == 0x3:
                self.peer_max_streams = value
                self.capacity = min(self.pool.max_streams, value)
            elif key == 0x4:
                if value > _MAX_WINDOW:
                    raise _ConnectionError("flow_control_error", "an initial window over 2^31-1")
                delta, self.peer_window = value - self.peer_window, value
                for slot in self.streams.values():
                    slot.send_window += delta
            elif key == 0x5:
                if not 16_384 <= value <= 16_777_215:
                    raise _ConnectionError("protocol_error", f"SETTINGS_MAX_FRAME_SIZE {value}")
                self.peer_max_frame = value
            elif key == 0x2 and value > 1:
                raise _ConnectionError("protocol_error", f"SETTINGS_ENABLE_PUSH {value}")
        self.out += _frame(_SETTINGS, _ACK, 0)
        if not self.ready.done():
            self.ready.set_result(None)
        if self.blocked:
            self._unblock()

    def _window_update(self, stream_id: int, payload: memoryview) -> None:
        if len(payload) != 4:
            raise _ConnectionError("frame_size_error", "a WINDOW_UPDATE not 4 bytes")
        increment = _u32.unpack(payload)[0] & _MAX_WINDOW
        if stream_id == 0:
            if not increment:
                raise _ConnectionError("protocol_error", "a WINDOW_UPDATE of 0")
            self.send_window += increment
            if self.send_window > _MAX_WINDOW:
                raise _ConnectionError("flow_control_error", "a window over 2^31-1")
        else:
            slot = self._stream(stream_id, "WINDOW_UPDATE")
            if slot is None:
                return
            if not increment or slot.send_window + increment > _MAX_WINDOW:
                self.drop(slot, "h2_flow_control_error", reset=True, code=0x3)
                return
            slot.send_window += increment
        if self.blocked:
            self._unblock()

    def _stream_reset(self, stream_id: int, code: int) -> None:
        slot = self._stream(stream_id, "RST_STREAM")
        if slot is None:
            return
        if code == 0x7 and slot.attempts < _ATTEMPTS:  # REFUSED_STREAM: never processed
            self._detach(slot)
            self.pool.resend(slot, "h2_rst_refused_stream")
        else:
            self.drop(slot, "h2_rst_" + _name(code), reset=False)

    def _goaway(self, last: int, code: int) -> None:
        self.usable = False
        for stream_id, slot in sorted(self.streams.items()):
            if stream_id > last:  # never processed: sent again on another connection
                self._detach(slot)
                self.pool.resend(slot, "h2_goaway")
        for slot in list(self.pool.idle):
            if slot.link is self:
                slot.fail("retired")
        if code:
            self._fail_all("h2_goaway_" + _name(code), goaway=None)
        elif not self.streams:
            self.close()

    # -- frames out ------------------------------------------------------------------------
    def start(self, slot: H2Stream, data: bytes) -> None:
        """Open a stream for ``slot`` and send ``data`` (an HTTP/1.1 request) on it."""
        stream_id = self.next_id
        slot.data = data
        slot.wire_out = len(data)  # until it is framed
        if not self.usable or stream_id > _MAX_STREAM_ID:  # a GOAWAY came, or ids ran out
            self.usable = False
            self._detach(slot)
            asyncio.get_running_loop().call_soon(self.pool.resend, slot, "h2_goaway")
            return
        try:
            block, body, slot.grpc = request_block(data, self.scheme)
        except ProtocolError:
            asyncio.get_running_loop().call_soon(self.drop, slot, "protocol", False)
            return
        self.next_id = stream_id + 2
        slot.stream_id = stream_id
        slot.status = 0
        slot.headers = slot.trailers = []
        slot.recv_consumed = 0
        slot.send_window = self.peer_window
        slot.chunks = [] if self.pool.capture else None
        self.streams[stream_id] = slot
        out = self.out
        limit = self.peer_max_frame
        flags = _END_HEADERS if body else _END_HEADERS | _END_STREAM
        if len(block) <= limit:
            out += _frame_head.pack(len(block) << 8 | _HEADERS, flags, stream_id)
            out += block
        else:
            out += _frame(_HEADERS, flags & _END_STREAM, stream_id, block[:limit])
            for offset in range(limit, len(block), limit):
                piece = block[offset : offset + limit]
                last = offset + limit >= len(block)
                out += _frame(_CONT, _END_HEADERS if last else 0, stream_id, piece)
        heads = 1 + max(0, -(-(len(block) - limit) // limit))
        frames = -(-len(body) // self.peer_max_frame)
        slot.wire_out = 9 * (heads + frames) + len(block) + len(body)
        if body:
            slot.pending = memoryview(body)
            self._send_body(slot)
        if not self.reading:
            self.flush()

    def _send_body(self, slot: H2Stream) -> bool:
        """Send what flow control lets out of ``slot``'s body; True when all of it is."""
        pending = slot.pending
        assert pending is not None
        while pending:
            room = min(self.send_window, slot.send_window, self.peer_max_frame)
            if room <= 0:
                if slot not in self.blocked:
                    self.blocked.append(slot)
                slot.pending = pending
                return False
            piece = pending[:room]
            pending = pending[room:]
            self.send_window -= len(piece)
            slot.send_window -= len(piece)
            self.out += _frame(_DATA, 0 if pending else _END_STREAM, slot.stream_id, bytes(piece))
        slot.pending = None
        return True

    def _unblock(self) -> None:
        blocked, self.blocked = self.blocked, []
        for slot in blocked:
            if slot.pending is not None and self.streams.get(slot.stream_id) is slot:
                self._send_body(slot)
        if not self.reading:
            self.flush()

    # -- endings ---------------------------------------------------------------------------
    def _complete(self, slot: H2Stream) -> None:
        del self.streams[slot.stream_id]
        slot.busy = False
        if slot.pending is not None:  # the server answered before reading all of the body
            slot.pending = None
            if slot in self.blocked:
                self.blocked.remove(slot)
            self.out += _frame(_RST, 0, slot.stream_id, _u32.pack(0))  # NO_ERROR, RFC 9113 8.1
        if slot.chunks is not None:
            slot.head = _head(slot.status, slot.headers, slot.trailers)
            slot.body = b"".join(slot.chunks)
            meter = self.pool.meter
            if meter is not None:
                error = meter.response(content_encoding(slot.headers), slot.body)
                if error is not None:
                    self._retire(slot)
                    self.pool.listener.request_failed(slot, error)  # type: ignore[arg-type]
                    return
        if slot.grpc and slot.status == 200:
            failure = _grpc_failure(slot.trailers or slot.headers)
            if failure:
                self._retire(slot)
                self.pool.listener.request_failed(slot, failure)  # type: ignore[arg-type]
                if not self.usable and not self.streams:
                    self.close()
                return
        if not self.usable or self.slots > self.capacity:
            self._retire(slot)
        self.pool.listener.response_complete(slot, slot.status, slot.bytes_in)  # type: ignore[arg-type]
        if not self.usable and not self.streams:
            self.close()

    def _detach(self, slot: H2Stream) -> None:
        """Take ``slot`` (its request unanswered, never processed) off this connection."""
        if self.streams.get(slot.stream_id) is slot:
            del self.streams[slot.stream_id]
        if slot in self.blocked:
            self.blocked.remove(slot)
        slot.pending = None
        slot.link = None
        self.slots -= 1
        if not self.usable and not self.streams:
            asyncio.get_running_loop().call_soon(self.close)

    def _retire(self, slot: H2Stream) -> None:
        if slot.alive:
            slot.alive = False
            slot.reusable = False
            self.slots -= 1
            self.pool.forget(slot)

    def drop(self, slot: H2Stream, error_class: str, reset: bool, code: int = 0x8) -> None:
        """End ``slot``'s stream (resetting it with ``code``) and retire the slot."""
        if self.streams.get(slot.stream_id) is slot:
            del self.streams[slot.stream_id]
            if reset and not self.closed:
                self.out += _frame(_RST, 0, slot.stream_id, _u32.pack(code))
                if not self.reading:
                    self.flush()
        if slot in self.blocked:
            self.blocked.remove(slot)
        slot.pending = None
        was_busy, slot.busy = slot.busy, False
        self._retire(slot)
        if was_busy:
            self.pool.listener.request_failed(slot, error_class)  # type: ignore[arg-type]
        if not self.usable and not self.streams:
            self.close()

    def _fail_all(self, error_class: str, goaway: str | None) -> None:
        """The connection is over: every stream fails with ``error_class``."""
        if self.closed:
            return
        if goaway is not None and self._write is not None:
            self.out += _frame(_GOAWAY, 0, 0, struct.pack(">II", 0, _CODES.get(goaway, 1)))
            self.flush()
        self.closed = True
        self.usable = False
        self.pool.links.discard(self)
        if self.transport is not None:
            self.transport.abort()
        busy = [s for s in self.streams.values()]
        self.streams.clear()
        self.blocked.clear()
        for slot in list(self.pool.idle):
            if slot.link is self:
                self._retire(slot)
        for slot in busy:
            slot.busy = False
            self._retire(slot)
            self.pool.listener.request_failed(slot, error_class)  # type: ignore[arg-type]
        for slot in [s for s in self.pool.connections if s.link is self]:
            self._retire(slot)  # lent out and idle in a driver's hands

    def close(self) -> None:
        """Close gracefully: GOAWAY, then the transport."""
        if self.closed:
            return
        self.out += _frame(_GOAWAY, 0, 0, struct.pack(">II", 0, 0))
        self.flush()
        self.closed = True
        self.usable = False
        self.pool.links.discard(self)
        for slot in [s for s in self.pool.connections if s.link is self]:
            self._retire(slot)
        if self.transport is not None:
            self.transport.close()

    def room(self) -> int:
        """How many more slots this connection can lend."""
        if not self.usable or self.closed:
            return 0
        return self.capacity - self.slots


GRPC_STATUS = (
    "ok", "cancelled", "unknown", "invalid_argument", "deadline_exceeded", "not_found",
    "already_exists", "permission_denied", "resource_exhausted", "failed_precondition",
    "aborted", "out_of_range", "unimplemented", "internal", "unavailable", "data_loss",
    "unauthenticated",
)  # fmt: skip
"""gRPC status names by code, lower-case (the error classes are ``grpc_`` + these)."""


def _grpc_failure(fields: list[tuple[bytes, bytes]]) -> str:
    """The error class of a gRPC call's status (``""``: OK)."""
    for name, value in fields:
        if name == b"grpc-status":
            if value == b"0":
                return ""
            code = int(value) if value.isdigit() else -1
            return "grpc_" + (GRPC_STATUS[code] if 0 <= code < len(GRPC_STATUS) else "unknown")
    return "grpc_missing_status"


class _ConnectionError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _head(
    status: int, headers: list[tuple[bytes, bytes]], trailers: list[tuple[bytes, bytes]]
) -> bytes:
    lines = [b"HTTP/2 %d" % status]
    lines += [name + b": " + value for name, value in headers + trailers if name[:1] != b":"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class H2Pool:
    """The :class:`~redline.http.ConnectionPool` of HTTP/2: stream slots over connections.

    ``grow`` lends one more slot: on an open connection with room (at most
    ``max_streams`` and the server's SETTINGS_MAX_CONCURRENT_STREAMS each), else on one
    being opened, else on a new connection, up to ``max_connections`` connections. The
    listener sees slots (:class:`H2Stream`) as if they were connections. With ``tls``,
    ALPN offers ``h2`` only (a server that does not pick it fails the connection with
    ``h2_alpn``); without, the connection starts with HTTP/2 at once (h2c, prior
    knowledge).
    """

    def __init__(
        self,
        listener: PoolListener,
        *,
        host: str,
        port: int,
        tls: ssl.SSLContext | None = None,
        max_connections: int = 1024,
        max_streams: int = 100,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_response_size: int = 64 * 1024 * 1024,
        max_connecting: int = 32,
        capture: bool = False,
        policy: AddressPolicy | None = None,
        max_header_list_size: int = 256 * 1024,
        decode: bool = False,
    ) -> None:
        """An empty pool; see the class for the arguments."""
        self.listener = listener
        self.bytes_out: list[int] | None = getattr(listener, "bytes_out", None)
        """The driver's bytes-out counters by endpoint, corrected to the frames sent."""
        self.host = host
        self.port = port
        if tls is not None:
            tls.set_alpn_protocols(["h2"])
        self.tls = tls
        self.max_connections = max_connections
        self.max_streams = max_streams
        self.max_slots = max_connections * max_streams
        self.connect_timeout = connect_timeout
        self.read_timeout_ns = int(read_timeout * 1e9)
        self.max_response_size = max_response_size
        self.max_connecting = max_connecting
        self.capture = capture or decode
        self.meter = CompressionMeter() if decode else None
        self.max_header_list_size = max_header_list_size
        self.policy = policy if policy is not None and policy.active else None
        self.idle: list[H2Stream] = []
        self.connections: set[H2Stream] = set()
        """The slots lent out (busy or not)."""
        self.links: set[H2Connection] = set()
        self.connecting = 0
        """Slots promised and not yet handed to the listener."""
        self._opening: list[list[int]] = []  # per connection being opened: [slots promised]
        self.waiting: deque[H2Stream] = deque()
        """Slots whose requests a server refused unprocessed, waiting for a connection."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def size(self) -> int:
        """Slots lent plus those promised."""
        return len(self.connections) + self.connecting

    def grow(self) -> bool:
        """Promise one more slot; the listener's ``connection_ready`` gets it soon."""
        if self._closed or self.size >= self.max_slots:
            return False
        loop = asyncio.get_running_loop()
        for link in self.links:
            if link.room() > 0:
                slot = H2Stream(link)
                link.slots += 1
                self.connecting += 1
                loop.call_soon(self._hand_out, slot)
                return True
        for promised in self._opening:
            if promised[0] < self.max_streams:
                promised[0] += 1
                self.connecting += 1
                return True
        if len(self._opening) >= self.max_connecting or (
            len(self.links) + len(self._opening) >= self.max_connections
        ):
            return False
        promised = [1]
        self._opening.append(promised)
        self.connecting += 1
        task = loop.create_task(self._open(promised))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def resend(self, slot: H2Stream, error_class: str) -> None:
        """Send ``slot``'s request again on another connection (it was never processed).

        After :data:`_ATTEMPTS` sends it fails with ``error_class``. Its latency runs on
        from its intended start, as a client's retry costs a user.
        """
        if not slot.alive:
            return
        slot.attempts += 1
        if slot.attempts >= _ATTEMPTS or self._closed:
            self.abandon(slot, error_class)
            return
        self.waiting.append(slot)
        self._rehome()

    def abandon(self, slot: H2Stream, error_class: str) -> None:
        """Fail a slot that waits for a connection."""
        if slot in self.waiting:
            self.waiting.remove(slot)
        slot.alive = False
        slot.reusable = False
        self.forget(slot)
        if slot.busy:
            slot.busy = False
            self.listener.request_failed(slot, error_class)  # type: ignore[arg-type]

    def _rehome(self) -> None:
        """Put waiting slots on connections with room; open one if none has."""
        waiting = self.waiting
        for link in list(self.links):
            while waiting and link.room() > 0:
                slot = waiting.popleft()
                slot.link = link
                link.slots += 1
                link.start(slot, slot.data)
        if waiting and not self._opening and not self._closed:
            if len(self.links) < self.max_connections:
                promised = [0]
                self._opening.append(promised)
                task = asyncio.get_running_loop().create_task(self._open(promised))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            else:
                while waiting:
                    self.abandon(waiting[0], "h2_goaway")

    def _hand_out(self, slot: H2Stream) -> None:
        self.connecting -= 1
        link = slot.link
        assert link is not None  # a new slot, on the connection that made it
        if self._closed or not link.usable:
            link.slots -= 1
            if not self._closed:
                self.grow()
            return
        self.connections.add(slot)
        self.listener.connection_ready(slot)  # type: ignore[arg-type]

    async def _open(self, promised: list[int]) -> None:
        try:
            link = await asyncio.wait_for(self._connect(), self.connect_timeout)
        except (OSError, TimeoutError, ssl.SSLError, TransportError) as exc:
            self._opening.remove(promised)
            self.connecting -= promised[0]
            if not self._closed:
                for _ in range(promised[0]):
                    self.listener.connect_failed(_classify_os_error(exc))
                while self.waiting:
                    self.abandon(self.waiting[0], _classify_os_error(exc))
            return
        except asyncio.CancelledError:
            self._opening.remove(promised)
            self.connecting -= promised[0]
            raise
        self._opening.remove(promised)
        if self._closed:
            self.connecting -= promised[0]
            link.close()
            return
        self.links.add(link)
        setup = link.setup
        count = promised[0]
        lent = min(count, link.room())
        self.connecting -= count
        for index in range(lent):
            slot = H2Stream(link)
            link.slots += 1
            if index == 0:
                slot.setup = setup
            self.connections.add(slot)
            self.listener.connection_ready(slot)  # type: ignore[arg-type]
        for _ in range(count - lent):  # the server allows fewer streams than were promised
            self.grow()
        if self.waiting:
            self._rehome()

    async def _connect(self) -> H2Connection:
        transport, link, setup = await timed_connection(
            lambda: H2Connection(self), self.host, self.port, self.tls, self.policy
        )
        if self.tls is not None:
            ssl_object = transport.get_extra_info("ssl_object")
            chosen = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
            if chosen != "h2":
                transport.abort()
                raise _AlpnError(f"the server chose {chosen or 'no protocol'} by ALPN, not h2")
        try:
            await link.ready
        except BaseException:
            transport.abort()
            raise
        link.setup = setup  # the wait for the server's SETTINGS is not counted
        return link

    def forget(self, slot: H2Stream) -> None:
        """Drop a slot that was retired."""
        self.connections.discard(slot)
        if slot in self.idle:
            self.idle.remove(slot)

    def sweep_timeouts(self) -> int:
        """Fail every request in flight longer than the read timeout; return how many."""
        deadline = time.monotonic_ns() - self.read_timeout_ns
        expired = [s for s in self.connections if s.busy and s.sent_ns < deadline]
        for slot in expired:
            slot.fail("h2_flow_stall" if slot.pending is not None else "read_timeout")
        return len(expired)

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered."""
        return sum(1 for s in self.connections if s.busy)

    async def aclose(self) -> None:
        """Close every connection and cancel connection attempts."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for link in list(self.links):
            link.closed = True
            if link.transport is not None:
                link.transport.abort()
        self.links.clear()
        self.connections.clear()
        self.idle.clear()
        self.waiting.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


class _AlpnError(TransportError):
    error_class = "h2_alpn"


def connection_pool(listener: PoolListener, *, protocol: str = "http1", **options: Any) -> Any:
    """A pool for ``protocol``.

    ``http1``: a :class:`~redline.http.ConnectionPool`; ``h2``/``h2c``: an
    :class:`H2Pool` (``max_streams`` applies to these only).
    """
    from ._connection import ConnectionPool

    if protocol in ("h2", "h2c"):
        return H2Pool(listener, **options)
    options.pop("max_streams", None)
    return ConnectionPool(listener, **options)
