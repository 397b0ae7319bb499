"""HTTP-level toxics, which Toxiproxy does not have.

A proxy in HTTP mode reads whole HTTP/1.1 exchanges, so it can answer for the upstream,
slow some paths down, rewrite headers or cut bodies short.

A proxy is in HTTP mode when made with ``http=True`` (the API takes ``"http": true``, a
redline extension) or once an HTTP toxic is added (connections opened from then on). In
HTTP mode requests are passed one at a time, in order; the TCP toxics still act on the
bytes. Attributes (``path`` is a prefix; empty matches every request):

- ``http_status``: ``status`` (503), ``rate`` (fraction of matching requests, 1),
  ``path``: answer with that status instead of the upstream (the request never arrives);
- ``http_delay``: ``delay`` (ms), ``path``: hold matching responses that long;
- ``http_header``: ``name``, ``value`` (empty: drop the header), ``path``: on requests
  (stream ``upstream``) or responses (``downstream``, the default);
- ``http_truncate``: ``bytes``, ``path``: send the response head and that many bytes of
  its body, then close the connection.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING

import httptools

from redline.core import ProtocolError
from redline.http import RequestParser

from ._toxics import Toxic

if TYPE_CHECKING:
    from ._proxy import _Link

__all__ = ["HTTP_TOXICS", "relay_http"]

HTTP_TOXICS = ("http_status", "http_delay", "http_header", "http_truncate")
_READ = 64 * 1024


@dataclass
class _Message:
    """One parsed message: its first line, headers in order, and its raw body bytes."""

    first: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    done: bool = False


class _Requests:
    """Whole requests out of the client's stream: redline's one server-side parser."""

    def __init__(self) -> None:
        self.ready: deque[_Message] = deque()
        self.parser = RequestParser()

    def feed(self, data: bytes) -> None:
        for request in self.parser.feed(data):
            message = _Message(request.first_line, list(request.headers), bytearray(request.body))
            message.done = True
            self.ready.append(message)


class _Responses:
    """Whole responses out of the upstream's stream (httptools callbacks)."""

    def __init__(self) -> None:
        self.ready: deque[_Message] = deque()
        self.current = _Message()
        self.parser = httptools.HttpResponseParser(self)

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise ProtocolError(f"malformed response: {exc}") from exc

    def on_status(self, status: bytes) -> None:
        self.current.first = status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        version = self.parser.get_http_version()
        code = self.parser.get_status_code()
        self.current.first = f"HTTP/{version} {code} {self.current.first}"

    def on_body(self, body: bytes) -> None:
        self.current.body += body

    def on_message_complete(self) -> None:
        self.current.done = True
        self.ready.append(self.current)
        self.current = _Message()


def _path(message: _Message) -> str:
    return message.first.split(" ", 2)[1] if message.first.count(" ") >= 2 else "/"


def _matches(toxic: Toxic, path: str) -> bool:
    prefix = str(toxic.attributes.get("path", ""))
    return not prefix or path.startswith(prefix)


def _encode(message: _Message, toxics: list[Toxic], path: str) -> bytes:
    """The message with header toxics applied, re-framed with Content-Length."""
    headers = list(message.headers)
    for toxic in toxics:
        if toxic.type != "http_header" or not _matches(toxic, path):
            continue
        name = str(toxic.attributes["name"]).lower()
        headers = [(k, v) for k, v in headers if k.lower() != name]
        if toxic.attributes.get("value"):
            headers.append((str(toxic.attributes["name"]), str(toxic.attributes["value"])))
    framing = ("content-length", "transfer-encoding")
    headers = [(k, v) for k, v in headers if k.lower() not in framing]
    body = bytes(message.body)
    if body or not message.first.startswith("HTTP/"):
        headers.append(("Content-Length", str(len(body))))
    else:
        headers.append(("Content-Length", "0"))
    head = "\r\n".join([message.first, *(f"{k}: {v}" for k, v in headers)])
    return (head + "\r\n\r\n").encode("latin-1") + body


def _answer(status: int) -> bytes:
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Fault"
    body = f"injected by redline: {status}\n".encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nX-Redline-Fault: http_status\r\n\r\n"
    )
    return head.encode() + body


async def _next(reader: asyncio.StreamReader, parser: _Requests | _Responses) -> _Message | None:
    """The next whole message from ``reader`` (None at the end of the stream)."""
    while not parser.ready:
        data = await reader.read(_READ)
        if not data:
            return None
        try:
            parser.feed(data)
        except ProtocolError:
            return None
    return parser.ready.popleft()


async def relay_http(link: _Link) -> None:
    """Pass whole exchanges between the client and the upstream, through the toxics.

    With a weighted split (:meth:`Proxy.set_split`), each request goes to an upstream
    drawn by weight; a connection to each upstream is opened when first needed and kept.
    """
    client_reader, client_writer = link.client
    requests = _Requests()
    parsers: dict[str, _Responses] = {}
    loop = asyncio.get_running_loop()
    while not link.closed.is_set():
        request = await _next(client_reader, requests)
        if request is None:
            break
        arrived = loop.time()
        path = _path(request)
        toxics = link.active("upstream") + link.active("downstream")
        injected = next(
            (t for t in toxics if t.type == "http_status" and _matches(t, path)
             and link.proxy.rng.random() < t.attribute("rate")),
            None,
        )  # fmt: skip
        if injected is not None:
            answer = _answer(int(injected.attribute("status")))
            await link.send(answer, link.active("downstream"), client_writer, "downstream", arrived)
            continue
        address = link.proxy.pick()
        connection = await link.upstream_to(address)
        if connection is None:
            break  # as Toxiproxy: the client sees the connection closed
        upstream_reader, upstream_writer = connection
        responses = parsers.setdefault(address, _Responses())
        out = _encode(request, [t for t in toxics if t.stream == "upstream"], path)
        await link.send(out, link.active("upstream"), upstream_writer, "upstream", arrived)
        response = await _next(upstream_reader, responses)
        if response is None:
            break
        arrived = loop.time()
        down = link.active("downstream")
        delay = max((t.attribute("delay") for t in down
                     if t.type == "http_delay" and _matches(t, path)), default=0.0)  # fmt: skip
        if delay:
            await asyncio.sleep(delay / 1000)
        encoded = _encode(response, down, path)
        cut = next((t for t in down if t.type == "http_truncate" and _matches(t, path)), None)
        if cut is not None:
            head_end = encoded.index(b"\r\n\r\n") + 4
            encoded = encoded[: head_end + int(cut.attribute("bytes"))]
        await link.send(encoded, down, client_writer, "downstream", arrived)
        if cut is not None:
            break
    link.close()
