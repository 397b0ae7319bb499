"""The fault proxy: a TCP proxy on asyncio whose connections pass through toxics.

Each accepted connection opens one to the upstream and pumps bytes both ways; every chunk
goes through the proxy's current toxics for its direction, so toxics added, changed or
removed take effect on live connections from the next chunk on. Timers (``timeout``,
``reset_peer``) start when a toxic first applies to a connection and stop if it is
removed first. Disabling a proxy stops it listening and drops its connections, as
Toxiproxy does ("down").
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import Any

from redline.http import parse_address

from ._errors import FaultError
from ._http import HTTP_TOXICS, relay_http
from ._toxics import Toxic, ToxicError

__all__ = ["Proxy", "ProxyError"]

_CHUNK = 64 * 1024


class ProxyError(FaultError):
    """A proxy operation that cannot be done; ``status`` is the HTTP status the API sends."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _address(text: str) -> tuple[str, int]:
    """``host:port`` as a pair (host 127.0.0.1 when left out).

    Raises:
        ProxyError: not an address with a port from 0 to 65535.
    """
    try:
        return parse_address(text, default_host="127.0.0.1")
    except ValueError as exc:
        raise ProxyError(str(exc)) from None


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: Proxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.proxy = proxy
        self.client = (reader, writer)
        self.upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.upstreams: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        self.rolls: dict[str, bool] = {}
        self.passed = {"upstream": 0, "downstream": 0}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.closed = asyncio.Event()
        self._next_free = {"upstream": 0.0, "downstream": 0.0}

    def applies(self, toxic: Toxic) -> bool:
        """Whether ``toxic`` applies to this connection (toxicity, rolled once)."""
        key = f"{toxic.name}/{toxic.toxicity}"
        if key not in self.rolls:
            self.rolls[key] = toxic.toxicity >= 1.0 or self.proxy.rng.random() < toxic.toxicity
        return self.rolls[key]

    def active(self, stream: str) -> list[Toxic]:
        return [t for t in self.proxy.toxics_of(stream) if self.applies(t)]

    async def upstream_to(
        self, address: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The connection to ``address``, opened when first asked for (None: refused)."""
        found = self.upstreams.get(address)
        if found is not None:
            return found
        host, port = _address(address)
        try:
            opened = await asyncio.open_connection(host, port)
        except OSError:
            return None
        self.upstreams[address] = opened
        if self.upstream is None:
            self.upstream = opened
            self.toxics_changed()
        return opened

    async def run(self) -> None:
        if self.proxy.http:  # upstreams are opened per request, as the split picks them
            await relay_http(self)
            return
        upstream = await self.upstream_to(self.proxy.pick())
        if upstream is None:
            await self.close_after_eof()  # as Toxiproxy: the client sees the connection closed
            return
        pumps = [
            asyncio.create_task(self._pump(self.client[0], upstream[1], "upstream")),
            asyncio.create_task(self._pump(upstream[0], self.client[1], "downstream")),
        ]
        await self.closed.wait()
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)

    def toxics_changed(self) -> None:
        """Start the timers of newly applied timeout and reset toxics, cancel removed ones."""
        if self.closed.is_set() or self.upstream is None:
            return
        loop = asyncio.get_running_loop()
        wanted: dict[str, Toxic] = {}
        for stream in ("upstream", "downstream"):
            for toxic in self.active(stream):
                if toxic.type == "reset_peer" or (
                    toxic.type == "timeout" and toxic.attribute("timeout") > 0
                ):
                    wanted[toxic.name] = toxic
        for name in [n for n in self.timers if n not in wanted]:
            self.timers.pop(name).cancel()
        for name, toxic in wanted.items():
            if name not in self.timers:
                delay = toxic.attribute("timeout") / 1000
                action = self.reset if toxic.type == "reset_peer" else self.close
                self.timers[name] = loop.call_later(delay, action)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stream: str
    ) -> None:
        loop = asyncio.get_running_loop()
        proxy = self.proxy
        try:
            while True:
                data = await reader.read(_CHUNK)
                if data and not proxy._toxics:  # no toxic: straight through
                    writer.write(data)
                    self.passed[stream] += len(data)
                    proxy.bytes[stream] += len(data)
                    if writer.transport.get_write_buffer_size() > _CHUNK:
                        await writer.drain()
                    continue
                arrived = loop.time()
                toxics = self.active(stream)
                if not data:
                    delay = max((t.attribute("delay") for t in toxics if t.type == "slow_close"),
                                default=0.0)  # fmt: skip
                    if delay:
                        await asyncio.sleep(delay / 1000)
                    self.close()
                    return
                await self.send(data, toxics, writer, stream, arrived)
        except (ConnectionError, OSError):
            self.close()

    async def send(
        self,
        data: bytes,
        toxics: list[Toxic],
        writer: asyncio.StreamWriter,
        stream: str,
        arrived: float,
    ) -> None:
        """Send one chunk (arrived at loop time ``arrived``) through ``toxics``, then out."""
        if any(t.type == "timeout" for t in toxics):
            return  # held back: nothing passes while a timeout toxic is on
        loop = asyncio.get_running_loop()
        pieces = [data]
        gap = 0.0
        limit: float | None = None
        for toxic in toxics:
            kind = toxic.type
            if kind == "latency":
                jitter = toxic.attribute("jitter")
                delay = toxic.attribute("latency") + self.proxy.rng.uniform(-jitter, jitter)
                wait = arrived + max(delay, 0.0) / 1000 - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            elif kind == "slicer":
                pieces = [s for p in pieces for s in self._slices(p, toxic)]
                gap = toxic.attribute("delay") / 1e6
            elif kind == "limit_data":
                limit = toxic.attribute("bytes")
        rate = max((t.attribute("rate") for t in toxics if t.type == "bandwidth"), default=0.0)
        for index, piece in enumerate(pieces):
            if limit is not None:
                room = int(limit) - self.passed[stream]
                piece = piece[: max(room, 0)]
            if index and gap:
                await asyncio.sleep(gap)
            if rate > 0:
                start = max(loop.time(), self._next_free[stream])
                self._next_free[stream] = start + len(piece) / (rate * 1000)
                wait = start - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            if piece:
                writer.write(piece)
                self.passed[stream] += len(piece)
                self.proxy.count(stream, len(piece))
                await writer.drain()
            if limit is not None and self.passed[stream] >= limit:
                self.close()
                return

    def _slices(self, data: bytes, toxic: Toxic) -> Iterable[bytes]:
        average = int(toxic.attribute("average_size"))
        if average <= 0:
            yield data
            return
        variation = int(toxic.attribute("size_variation"))
        at = 0
        while at < len(data):
            size = max(1, average + self.proxy.rng.randint(-variation, variation))
            yield data[at : at + size]
            at += size

    async def close_after_eof(self, wait_s: float = 1.0) -> None:
        """Close the client with a FIN it can read even when it had sent bytes.

        Closing a socket with received bytes unread makes the kernel answer with a reset, so
        the FIN goes first and what the client sent is read and dropped until it closes too
        (or ``wait_s`` passes).
        """
        reader, writer = self.client
        with contextlib.suppress(Exception):
            writer.write_eof()
            async with asyncio.timeout(wait_s):
                while await reader.read(65536):
                    pass
        self.close()

    def close(self) -> None:
        """Close both sides (a FIN each)."""
        if self.closed.is_set():
            return
        self.closed.set()
        for timer in self.timers.values():
            timer.cancel()
        for _, writer in (self.client, *self.upstreams.values()):
            with contextlib.suppress(Exception):
                writer.close()
        self.proxy.forget(self)

    def reset(self) -> None:
        """Reset both sides: a TCP RST instead of a FIN."""
        if self.closed.is_set():
            return
        for _, writer in (self.client, *self.upstreams.values()):
            self._abort(writer)
        self.close()

    @staticmethod
    def _abort(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


class Proxy:
    """One proxy: listens on ``listen``, forwards to ``upstream``, applies its toxics."""

    def __init__(
        self,
        name: str,
        listen: str,
        upstream: str,
        *,
        enabled: bool = True,
        http: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        """Describe a proxy; :meth:`start` (or enabling it) makes it listen.

        ``http``: read whole HTTP/1.1 exchanges, so HTTP toxics can act (adding one
        switches it on for the connections opened from then on).

        Raises:
            ProxyError: a listen or upstream address that is not ``host:port``.
        """
        if not name:
            raise ProxyError("a proxy needs a name")
        _address(listen)
        _address(upstream)
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = enabled
        self.http = http
        self.rng = rng or random.Random()
        self._toxics: dict[str, Toxic] = {}  # replaced, never changed: safe to read anywhere
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self.split: tuple[tuple[str, float], ...] = ()
        """Weighted upstreams (redline's extension); empty: everything to ``upstream``."""
        self.connections_total = 0
        self.bytes = {"upstream": 0, "downstream": 0}

    # -- the weighted split ------------------------------------------------------------
    def set_split(self, split: Sequence[tuple[str, float]]) -> None:
        """Send each request (HTTP mode) or connection (TCP) to an upstream by weight.

        ``[("127.0.0.1:8081", 95), ("127.0.0.1:8082", 5)]``; an empty split sends all to
        ``upstream``. Weights are relative and may be 0 (that upstream gets nothing).

        Raises:
            ProxyError: a bad address, a negative weight, or all weights 0.
        """
        checked = []
        for address, weight in split:
            _address(address)
            if not weight >= 0:
                raise ProxyError(f"proxy {self.name}: a weight must be 0 or more, got {weight}")
            checked.append((address, float(weight)))
        if checked and not sum(w for _, w in checked) > 0:
            raise ProxyError(f"proxy {self.name}: at least one weight must be above 0")
        self.split = tuple(checked)

    def pick(self) -> str:
        """The upstream for the next request (or connection), drawn by weight."""
        split = self.split
        if not split:
            return self.upstream
        total = sum(w for _, w in split)
        draw = self.rng.random() * total
        for address, weight in split:
            draw -= weight
            if draw < 0:
                return address
        return next(a for a, w in reversed(split) if w > 0)

    # -- listening -------------------------------------------------------------------
    async def start(self) -> None:
        """Listen (if enabled); ``listen`` with port 0 becomes the port bound."""
        self._loop = asyncio.get_running_loop()
        if not self.enabled or self._server is not None:
            return
        host, port = _address(self.listen)
        try:
            self._server = await asyncio.start_server(self._accept, host, port)
        except OSError as exc:
            raise ProxyError(f"proxy {self.name}: cannot listen on {self.listen}: {exc}") from exc
        bound = self._server.sockets[0].getsockname()
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.listen = f"{shown}:{bound[1]}"

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for link in list(self._links):
            link.close()

    async def set_enabled(self, enabled: bool) -> None:
        """Enable (listen again) or disable (stop listening, drop connections)."""
        self.enabled = enabled
        if enabled:
            await self.start()
        else:
            await self.stop()

    def disable(self) -> None:
        """Take the proxy down from another thread (in its loop: ``await set_enabled``)."""
        self._in_loop(self.set_enabled(False))

    def enable(self) -> None:
        """Bring the proxy back from another thread."""
        self._in_loop(self.set_enabled(True))

    def _in_loop(self, coroutine: Coroutine[Any, Any, None]) -> None:
        if self._loop is None:
            coroutine.close()
            raise ProxyError(f"proxy {self.name} is not running")
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(self, reader, writer)
        self._links.add(link)
        self.connections_total += 1
        try:
            await link.run()
        finally:
            link.close()

    def forget(self, link: _Link) -> None:
        """A connection ended."""
        self._links.discard(link)

    def count(self, stream: str, size: int) -> None:
        """Bytes passed in one direction."""
        self.bytes[stream] += size

    @property
    def connections(self) -> int:
        """Open connections."""
        return len(self._links)

    # -- toxics ----------------------------------------------------------------------
    def toxics_of(self, stream: str) -> list[Toxic]:
        """The toxics acting on ``stream``, in the order added."""
        return [t for t in self._toxics.values() if t.stream == stream]

    @property
    def toxics(self) -> list[Toxic]:
        """Every toxic, in the order added."""
        return list(self._toxics.values())

    def toxic(self, name: str) -> Toxic:
        """One toxic by name.

        Raises:
            ProxyError: 404 when there is none.
        """
        if name not in self._toxics:
            raise ProxyError("toxic not found", 404)
        return self._toxics[name]

    def add_toxic(self, toxic: Toxic | Mapping[str, Any]) -> Toxic:
        """Add a toxic; it acts on live connections from their next chunk (any thread).

        Raises:
            ProxyError: 409 when one of that name exists, 400 for an invalid toxic.
        """
        try:
            made = toxic if isinstance(toxic, Toxic) else Toxic.from_dict(toxic)
        except ToxicError as exc:
            raise ProxyError(str(exc), 400) from exc
        if made.name in self._toxics:
            raise ProxyError("toxic already exists", 409)
        if made.type in HTTP_TOXICS:
            self.http = True
        self._toxics = {**self._toxics, made.name: made}
        self._changed()
        return made

    def update_toxic(self, name: str, data: Mapping[str, Any]) -> Toxic:
        """Change a toxic's toxicity, stream or attributes in place.

        Raises:
            ProxyError: 404 for no such toxic, 400 for an invalid change.
        """
        try:
            made = self.toxic(name).updated(data)
        except ToxicError as exc:
            raise ProxyError(str(exc), 400) from exc
        self._toxics = {**self._toxics, name: made}
        self._changed()
        return made

    def remove_toxic(self, name: str) -> None:
        """Remove a toxic.

        Raises:
            ProxyError: 404 for no such toxic.
        """
        self.toxic(name)
        self._toxics = {k: v for k, v in self._toxics.items() if k != name}
        self._changed()

    def clear_toxics(self) -> None:
        """Remove every toxic."""
        self._toxics = {}
        self._changed()

    def _changed(self) -> None:
        """Tell live connections (in the proxy's loop, whatever thread changed the toxics)."""

        def notify() -> None:
            for link in list(self._links):
                link.toxics_changed()

        if self._loop is None:
            return
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is self._loop:
            notify()
        else:
            self._loop.call_soon_threadsafe(notify)

    def to_dict(self) -> dict[str, Any]:
        """Toxiproxy's JSON form of a proxy, with its toxics."""
        out: dict[str, Any] = {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_dict() for t in self._toxics.values()],
        }
        if self.http:
            out["http"] = True  # redline's extension; absent for plain TCP proxies
        if self.split:  # redline's extension: the weighted split
            out["split"] = [{"upstream": a, "weight": w} for a, w in self.split]
        return out
