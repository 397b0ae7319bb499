"""Services a command starts on loopback for itself (the demo's, ``contend --measure``'s)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time

__all__ = ["free_port", "pinned", "wait_for"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned() -> list[str]:
    """The prefix that runs a service on core 0; the load generator keeps the other.

    Empty with one core, or without taskset.
    """
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", "0"]
    return []


def wait_for(port: int, process: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    """Return once ``process`` listens on 127.0.0.1:``port``.

    Raises:
        RuntimeError: it exited, or did not listen within ``seconds``.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"a service it started exited ({process.returncode})")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"a service it started did not listen on 127.0.0.1:{port}")
