"""Sans-IO HTTP/1.1 for servers: whole requests out of a byte stream (httptools).

The one request parser of redline's servers: the test server, the fault proxy's API and
its HTTP-level toxics. ``parser.feed(data)`` returns the requests that data completed;
nothing here touches a socket.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import httptools

from redline.core import ProtocolError

__all__ = ["Request", "RequestParser", "parse_address"]


@dataclass(frozen=True, slots=True)
class Request:
    """One whole request.

    Attributes:
        method: ``GET``, ``POST``...
        target: the request target as sent (path and query).
        path: the target's path alone (``/`` when it is empty).
        version: ``1.1`` or ``1.0``.
        headers: every header in order, names as sent.
        body: the body, de-chunked.
        keep_alive: whether the connection stays open after the answer.
    """

    method: str
    target: str
    path: str
    version: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    keep_alive: bool

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)

    @property
    def first_line(self) -> str:
        """The request line, as it would be sent: ``GET /path HTTP/1.1``."""
        return f"{self.method} {self.target} HTTP/{self.version}"


class RequestParser:
    """Feeds bytes, returns the requests they complete (pipelined ones in order)."""

    __slots__ = ("_body", "_done", "_headers", "_parser", "_url")

    def __init__(self) -> None:
        """A parser at the start of a connection's stream."""
        self._parser = httptools.HttpRequestParser(self)
        self._done: list[Request] = []
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._body = bytearray()

    def feed(self, data: bytes) -> list[Request]:
        """Parse ``data``; return the requests it completed (often none or one).

        Raises:
            ProtocolError: the stream is not HTTP/1.1 requests (answer 400 and close).
        """
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise ProtocolError(f"malformed request: {exc}") from exc
        done, self._done = self._done, []
        return done

    # -- httptools callbacks -----------------------------------------------------------
    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        parser = self._parser
        url = self._url
        path = httptools.parse_url(url).path.decode("latin-1") if url else "/"
        self._done.append(
            Request(
                method=parser.get_method().decode("latin-1"),
                target=url.decode("latin-1"),
                path=path or "/",
                version=parser.get_http_version(),
                headers=tuple(self._headers),
                body=bytes(self._body),
                keep_alive=parser.should_keep_alive(),
            )
        )
        self._url = b""
        self._headers = []
        self._body = bytearray()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address, ``localhost``, an IPv6 address in brackets) is loopback."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def parse_address(text: str, *, default_host: str | None = None) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) as ``(host, port)``.

    Args:
        text: the address.
        default_host: the host of a bare ``port`` (and of ``:port``); without one, a
            host is required.

    Raises:
        ValueError: not an address with a port from 0 to 65535 (the message shows what
            was expected).
    """
    host, sep, port = str(text).strip().rpartition(":")
    host = host.strip("[]")
    expected = "[HOST:]PORT" if default_host is not None else "HOST:PORT"
    example = "127.0.0.1:9464"
    if not port.isdigit() or int(port) > 65535 or (not sep and default_host is None):
        raise ValueError(f'expected {expected} like "{example}", got {text!r}')
    if not host:
        if default_host is None:
            raise ValueError(f'expected {expected} like "{example}", got {text!r}')
        host = default_host
    return host, int(port)
