"""Sans-IO HTTP/1.1: request encoding and incremental response parsing (httptools).

Nothing here touches a socket, so the parser can be fuzzed and tested on bytes alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping

import httptools

from redline import __version__
from redline.core import ProtocolError, ResponseTooLargeError

__all__ = [
    "CapturingResponseParser",
    "ResponseParser",
    "encode_multipart",
    "encode_request",
    "parse_head",
]

USER_AGENT = f"redline/{__version__}"


def encode_request(
    method: str,
    path: str,
    *,
    host: str,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | None = None,
) -> bytes:
    """Encode one HTTP/1.1 request with keep-alive, ready to write to a socket.

    A ``Host`` and ``User-Agent`` are added unless given; a body always gets a
    ``Content-Length``.
    """
    lines = [f"{method} {path} HTTP/1.1"]
    names = set()
    for name, value in headers:
        names.add(name.lower())
        lines.append(f"{name}: {value}")
    if "host" not in names:
        lines.insert(1, f"Host: {host}")
    if "user-agent" not in names:
        lines.append(f"User-Agent: {USER_AGENT}")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


class ResponseParser:
    """Incremental parser of HTTP/1.1 responses on one connection.

    :meth:`feed` returns the ``(status, keep_alive)`` of each response completed by
    the bytes given; or, when ``on_response`` is given, calls it for each instead (the
    connection's hot path, which then allocates nothing per response). Bodies are
    counted, never kept, so a load test's memory does not grow with response size; a
    response larger than ``max_size`` is an error.
    """

    __slots__ = ("_completed", "_max_size", "_on_response", "_parser", "_size")

    def __init__(
        self,
        *,
        max_size: int = 64 * 1024 * 1024,
        on_response: Callable[[int, bool], None] | None = None,
    ) -> None:
        """Create a parser for one connection's responses."""
        self._parser = httptools.HttpResponseParser(self)
        self._completed: list[tuple[int, bool]] = []
        self._on_response = on_response
        self._max_size = max_size
        self._size = 0

    # httptools calls these by name; only the callbacks defined are paid for.
    def on_message_complete(self) -> None:
        """Report the response that just completed (called by httptools)."""
        self._size = 0
        parser = self._parser
        if self._on_response is not None:
            self._on_response(parser.get_status_code(), parser.should_keep_alive())
        else:
            self._completed.append((parser.get_status_code(), parser.should_keep_alive()))

    def _parse(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._max_size:
            raise ResponseTooLargeError(f"response larger than {self._max_size} bytes")
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            raise ProtocolError("unexpected protocol upgrade in response") from exc
        except httptools.HttpParserError as exc:
            raise ProtocolError(f"invalid HTTP/1.1 response: {exc}") from exc

    def feed(self, data: bytes) -> list[tuple[int, bool]]:
        """Parse ``data``; return the responses it completed (always empty with a callback).

        Raises:
            ProtocolError: the bytes are not a valid HTTP/1.1 response stream.
            ResponseTooLargeError: a response exceeded ``max_size`` bytes.
        """
        self._parse(data)
        completed = self._completed
        if completed:
            self._completed = []
        return completed


class CapturingResponseParser(ResponseParser):
    """A :class:`ResponseParser` that keeps each response's head and body (up to ``max_size``).

    ``on_response(status, keep_alive, raw, body)`` receives the response's raw bytes (head
    first, for :func:`parse_head`) and its body, de-chunked. Responses on a connection
    never overlap (no pipelining), so everything fed since the last response belongs to
    the current one.
    """

    __slots__ = ("_body", "_on_captured", "_raw")

    def __init__(
        self,
        *,
        max_size: int = 64 * 1024 * 1024,
        on_response: Callable[[int, bool, bytes, bytes], None],
    ) -> None:
        """Create a capturing parser for one connection's responses."""
        super().__init__(max_size=max_size)
        self._on_captured = on_response
        self._raw: list[bytes] = []
        self._body: list[bytes] = []

    def on_body(self, body: bytes) -> None:
        """Keep a piece of the body (called by httptools)."""
        self._body.append(body)

    def on_message_complete(self) -> None:
        """Report the completed response with its raw bytes and body (called by httptools)."""
        self._size = 0
        raw, body = self._raw, self._body
        data = raw[0] if len(raw) == 1 else b"".join(raw)
        content = (body[0] if len(body) == 1 else b"".join(body)) if body else b""
        self._raw = []
        self._body = []
        parser = self._parser
        self._on_captured(parser.get_status_code(), parser.should_keep_alive(), data, content)

    def feed(self, data: bytes) -> list[tuple[int, bool]]:
        """Parse ``data``, keeping it for the head of the current response."""
        self._raw.append(data)
        self._parse(data)
        return []  # responses go to on_response


def parse_head(raw: bytes) -> list[tuple[str, str]]:
    """The header fields of a raw response (the status line and the body are skipped)."""
    end = raw.find(b"\r\n\r\n")
    head = raw if end < 0 else raw[:end]
    fields = []
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields.append((name.strip(), value.strip()))
    return fields


def encode_multipart(
    parts: Mapping[str, tuple[str, bytes | str, str] | bytes | str],
    *,
    boundary: str | None = None,
) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type (RFC 7578).

    ``parts`` maps a field name to a text value, or to ``(filename, content, content
    type)`` for a file.
    """
    boundary = boundary or "redline-" + uuid.uuid4().hex
    out = bytearray()
    for field, value in parts.items():
        out += f"--{boundary}\r\n".encode()
        quoted = field.replace('"', "%22")
        if isinstance(value, tuple):
            filename, content, kind = value
            name = filename.replace('"', "%22")
            out += (
                f'Content-Disposition: form-data; name="{quoted}"; filename="{name}"\r\n'
                f"Content-Type: {kind}\r\n\r\n"
            ).encode()
            out += content.encode() if isinstance(content, str) else content
        else:
            out += f'Content-Disposition: form-data; name="{quoted}"\r\n\r\n'.encode()
            out += value.encode() if isinstance(value, str) else value
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
