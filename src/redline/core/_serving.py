"""A standard-library HTTP server in a thread of its own: the dashboard, the control API."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ._closing import Closing

__all__ = ["ThreadedHTTP"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        if ":" in address[0]:  # an IPv6 address
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)


class ThreadedHTTP(Closing):
    """Serves ``handler`` at ``host:port`` (0: any free port) from the moment it is made.

    Raises:
        OSError: the address cannot be bound.
    """

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        *,
        host: str,
        port: int,
        name: str,
    ) -> None:
        """Bind (IPv4 or IPv6, as ``host`` is) and serve in a daemon thread ``name``."""
        self.server = _Server((host.strip("[]"), port), handler)
        self._thread = threading.Thread(target=self.server.serve_forever, name=name, daemon=True)
        self._thread.start()
        self.host = host
        self.port = int(self.server.server_address[1])

    @property
    def url(self) -> str:
        """Where it answers (an IPv6 host in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def close(self) -> None:
        """Stop serving and wait for the thread (open connections end)."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
