"""A target with planted causes, for the tests of watching: each path has one bottleneck.

    python planted.py PORT

/scan    an O(n) scan in a function with a distinctive name: CPU
/locked  every request waits for one lock held 20 ms: a lock
/pooled  every request takes one of 2 connections for 20 ms: a pool
/leak    every request keeps 64 KiB for ever: memory growth
/flat    every request allocates and frees: no growth
/tick    nothing; the first request starts a clock: CPU is burnt from 5 s to 10 s after it

One thread per connection (the standard library's ThreadingHTTPServer), so waiting
threads show in a profile.
"""

from __future__ import annotations

import queue
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CATALOGUE = [f"sku-{i:07d}" for i in range(600_000)]
LOCK = threading.Lock()
POOL: queue.Queue[int] = queue.Queue()
for connection in range(2):
    POOL.put(connection)
KEPT: list[bytes] = []
FIRST_TICK: list[float] = []


def scan_catalogue_linearly_for_sku(wanted: str) -> int:
    for index, sku in enumerate(CATALOGUE):
        if sku == wanted:
            return index
    return -1


def hold_the_lock() -> None:
    with LOCK:
        time.sleep(0.02)


def borrow_a_connection() -> None:
    connection = POOL.get()
    try:
        time.sleep(0.02)
    finally:
        POOL.put(connection)


def burn_between_5_and_10_seconds() -> None:
    start = FIRST_TICK[0]
    while time.monotonic() < start + 5:
        time.sleep(0.01)
    x = 0
    while time.monotonic() < start + 10:
        x += 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle's algorithm and the
        # client's delayed ACK stall every response 40 ms, and the target idles
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        if self.path == "/scan":
            scan_catalogue_linearly_for_sku("sku-missing")
        elif self.path == "/locked":
            hold_the_lock()
        elif self.path == "/pooled":
            borrow_a_connection()
        elif self.path == "/leak":
            KEPT.append(bytes(64 * 1024))
        elif self.path == "/flat":
            _ = bytes(64 * 1024)
        elif self.path == "/tick" and not FIRST_TICK:
            FIRST_TICK.append(time.monotonic())
            threading.Thread(target=burn_between_5_and_10_seconds, daemon=True).start()
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    print(f"serving on {server.server_address[1]}", flush=True)
    server.serve_forever()
