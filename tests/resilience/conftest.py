"""A real HTTP server for the middleware and transport tests: uvicorn on loopback."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

Serve = Callable[..., str]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """``serve(app, lifespan="off")``: uvicorn serving ``app`` on a free loopback port (its URL)."""
    with contextlib.ExitStack() as stack:

        def start(app: Any, lifespan: str = "off") -> str:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            config = uvicorn.Config(
                app, host="127.0.0.1", port=port, lifespan=lifespan, log_level="warning",
                access_log=False,
            )  # fmt: skip
            server = uvicorn.Server(config)
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            stack.callback(thread.join, 10)
            stack.callback(setattr, server, "should_exit", True)
            deadline = time.monotonic() + 10
            while not server.started:
                if time.monotonic() > deadline or not thread.is_alive():
                    raise RuntimeError("uvicorn did not start")
                time.sleep(0.01)
            return f"http://127.0.0.1:{port}"

        yield start
