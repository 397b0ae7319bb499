"""A small HTTP/1.1 client for the shop's calls to payments: keep-alive, JSON, nothing else.

The demo must run with redline's own dependencies only, so it does not use httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any
from urllib.parse import urlsplit

__all__ = ["JsonClient", "UpstreamError"]


class UpstreamError(Exception):
    """The upstream answered with an error status, or broke the connection."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class JsonClient:
    """POST JSON to one upstream over a small pool of keep-alive connections."""

    def __init__(self, base_url: str, *, pool: int = 32) -> None:
        """Talk to ``base_url`` (``http://host:port``)."""
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._pool = pool

    async def post(self, path: str, payload: Any, headers: dict[str, str] | None = None) -> Any:
        """POST ``payload`` as JSON; the decoded JSON answer.

        Raises:
            UpstreamError: a status of 400 or more, or a broken connection.
        """
        body = json.dumps(payload).encode()
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                "Content-Type: application/json", f"Content-Length: {len(body)}"]  # fmt: skip
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        reader, writer = (
            self._idle.pop() if self._idle else await asyncio.open_connection(self.host, self.port)
        )
        try:
            writer.write(request)
            status_line = await reader.readline()
            if not status_line:
                raise UpstreamError("the connection was closed")
            try:
                status = int(status_line.split()[1])
            except (IndexError, ValueError):
                raise UpstreamError(f"not an HTTP answer: {status_line[:40]!r}") from None
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            data = await reader.readexactly(length) if length else b""
        except BaseException:
            writer.close()
            raise
        if len(self._idle) < self._pool:
            self._idle.append((reader, writer))
        else:
            writer.close()
        if status >= 400:
            raise UpstreamError(f"HTTP {status} from payments", status)
        return json.loads(data) if data else None

    async def aclose(self) -> None:
        """Close the idle connections."""
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
        for _, writer in idle:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
