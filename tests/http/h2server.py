"""HTTP/2 servers for the tests: a well-behaved one on h2 (another implementation than
redline's), and a scripted one that answers with whatever frames a test hands it.

Each runs its own event loop in a thread, on 127.0.0.1 and a free port.

Routes of :class:`H2Server`: ``/`` (200, ``hello``), ``/status/N``, ``/delay/MS``,
``/stall`` (never answers), ``/echo`` (the
request body back), ``/bytes/N``, ``/refuse`` (RST_STREAM REFUSED_STREAM), ``/goaway``
(GOAWAY after this stream: it is answered, later ones are not), ``/trailers`` (with a
trailer ``x-end: yes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings


class _Protocol(asyncio.Protocol):
    def __init__(self, server: H2Server) -> None:
        self.server = server
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.transport: asyncio.Transport | None = None
        self.bodies: dict[int, bytearray] = {}
        self.heads: dict[int, dict[str, str]] = {}
        self.outgoing: dict[int, memoryview] = {}
        self.gone = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections += 1
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.server.max_streams,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self.server.window,
            },
        )
        self.conn.initiate_connection()
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone = True

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except Exception:  # noqa: BLE001 - a test server: drop the connection
            assert self.transport is not None
            self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self.heads[event.stream_id] = dict(event.headers)  # type: ignore[arg-type]
                self.bodies[event.stream_id] = bytearray()
                self.server.requests += 1
                if event.stream_ended is not None:
                    self._route(event.stream_id)
            elif isinstance(event, h2.events.DataReceived):
                self.bodies.setdefault(event.stream_id, bytearray()).extend(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if event.stream_ended is not None:
                    self._route(event.stream_id)
            elif isinstance(event, h2.events.WindowUpdated):
                self._send_pending()
            elif isinstance(event, h2.events.StreamReset):
                self.server.resets += 1
        self._flush()

    def _respond(self, stream_id: int, status: int, body: bytes, **extra: str) -> None:
        if self.gone:
            return
        headers = [(":status", str(status)), ("content-length", str(len(body))), *extra.items()]
        try:
            self.conn.send_headers(stream_id, headers, end_stream=not body)
        except Exception:  # noqa: BLE001 - the stream was reset meanwhile
            return
        if body:
            self.outgoing[stream_id] = memoryview(body)
            self._send_pending()
        self._flush()

    def _send_pending(self) -> None:
        """Send what the client's flow-control windows let out, frame by frame."""
        for stream_id, rest in list(self.outgoing.items()):
            try:
                while rest:
                    room = min(
                        self.conn.local_flow_control_window(stream_id),
                        self.conn.max_outbound_frame_size,
                    )
                    if room <= 0:
                        break
                    piece, rest = rest[:room], rest[room:]
                    self.conn.send_data(stream_id, bytes(piece), end_stream=not rest)
            except Exception:  # noqa: BLE001 - reset meanwhile: forget it
                rest = memoryview(b"")
            if rest:
                self.outgoing[stream_id] = rest
            else:
                del self.outgoing[stream_id]

    def _route(self, stream_id: int) -> None:
        path = self.heads[stream_id].get(":path", "/")
        body = bytes(self.bodies.pop(stream_id, b""))
        loop = asyncio.get_running_loop()
        handler = self.server.handler
        if handler is not None and handler(self, stream_id, path, body):
            return
        if path == "/":
            self._respond(stream_id, 200, b"hello")
        elif path.startswith("/status/"):
            self._respond(stream_id, int(path.rsplit("/", 1)[1]), b"status")
        elif path.startswith("/delay/"):
            delay = int(path.rsplit("/", 1)[1]) / 1000
            loop.call_later(delay, self._respond, stream_id, 200, b"late")
        elif path == "/stall":
            self.server.stalled.append((self, stream_id))
        elif path == "/echo":
            self._respond(stream_id, 200, body)
        elif path.startswith("/bytes/"):
            self._respond(stream_id, 200, b"x" * int(path.rsplit("/", 1)[1]))
        elif path == "/refuse":
            self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            self._flush()
        elif path == "/goaway":
            self._respond(stream_id, 200, b"bye")
            self.conn.close_connection(last_stream_id=stream_id)
            self._flush()
        elif path == "/trailers":
            self.conn.send_headers(stream_id, [(":status", "200")])
            self.conn.send_data(stream_id, b"body")
            self.conn.send_headers(stream_id, [("x-end", "yes")], end_stream=True)
            self._flush()
        else:
            self._respond(stream_id, 404, b"not found")


class _Threaded:
    """A server on its own event loop in a thread, on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    async def _listen(self) -> asyncio.base_events.Server:
        raise NotImplementedError

    def _start(self) -> None:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    def _closing(self) -> None:
        """On the server's loop, as it closes: drop what is still open (subclasses)."""

    def __exit__(self, *exc: object) -> None:
        async def _close() -> None:
            assert self._server is not None
            self._server.close()
            self._closing()

        asyncio.run_coroutine_threadsafe(_close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class H2Server(_Threaded):
    """A threaded HTTP/2 server on h2 (h2c, or h2 over TLS with ``tls``)."""

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        max_streams: int = 100,
        window: int = 65_535,
        handler: Callable[[_Protocol, int, str, bytes], bool] | None = None,
    ) -> None:
        super().__init__()
        self.tls = tls
        self.max_streams = max_streams
        self.window = window
        self.handler = handler
        self.requests = 0
        self.resets = 0
        self.connections = 0
        self.stalled: list[tuple[_Protocol, int]] = []

    async def _listen(self) -> asyncio.base_events.Server:
        return await self.loop.create_server(lambda: _Protocol(self), "127.0.0.1", 0, ssl=self.tls)

    def __enter__(self) -> H2Server:
        self._start()
        return self


class ScriptedServer(_Threaded):
    """Reads the client's preface, then writes ``script(request_bytes)``'s bytes back.

    ``script`` is called with all bytes read so far each time more arrive; what it
    returns is written (b"" writes nothing). Used to hand the client any frames at all.
    """

    def __init__(self, script: Callable[[bytes], bytes]) -> None:
        super().__init__()
        self.script = script
        self.writers: list[asyncio.StreamWriter] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        seen = b""
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                seen += chunk
                out = self.script(seen)
                if out:
                    writer.write(out)
                    await writer.drain()
        writer.close()

    async def _listen(self) -> asyncio.base_events.Server:
        return await asyncio.start_server(self._handle, "127.0.0.1", 0)

    def _closing(self) -> None:
        for writer in self.writers:
            writer.transport.abort()

    def __enter__(self) -> ScriptedServer:
        self._start()
        return self
