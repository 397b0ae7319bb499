"""A target redline starts itself (``--serve``): started, awaited, watched, always stopped.

The command runs without a shell in a session of its own (so stopping it stops its
children too), optionally pinned to CPUs and inside a cgroup with a CPU quota and a memory
limit. It is ready when the plan's target answers an HTTP request (any status). At the
end it gets SIGTERM, then SIGKILL after a grace period; the last lines it wrote are kept.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import os
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO, Any
from urllib.parse import urlsplit

from redline.core import ServedProcess

from ._cgroup import CgroupSandbox
from ._errors import WatchError

__all__ = ["ServedTarget"]

TAIL_LINES = 50


class ServedTarget:
    """One served command, from start to stop."""

    def __init__(
        self,
        argv: list[str],
        *,
        command: str | None = None,
        cpus: tuple[int, ...] = (),
        cpu_limit: float | None = None,
        memory_limit: int | None = None,
        grace_s: float = 5.0,
    ) -> None:
        """Describe the target; :meth:`start` starts it."""
        self.argv = argv
        self.command = command or " ".join(argv)
        self.cpus = cpus
        self.cpu_limit = cpu_limit
        self.memory_limit = memory_limit
        self.grace_s = grace_s
        self.sandbox: CgroupSandbox | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.stdout: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.stderr: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._readers: list[threading.Thread] = []
        self.exited_at: float | None = None  # monotonic, when it was seen to have exited
        self.stopped_by_us = False
        self.dns: Any = None  # the run's DNS server it resolves through (faults.dns), if any

    @property
    def pid(self) -> int:
        """Its process id (once started)."""
        assert self.process is not None
        return self.process.pid

    @property
    def cgroup(self) -> str | None:
        """Its own cgroup (``--serve-limit``), if it has one."""
        return str(self.sandbox.path) if self.sandbox is not None else None

    def restart(self) -> None:
        """Start it again after it exited (a fault killed it); the old one is reaped.

        Raises:
            WatchError: it cannot be started.
        """
        old = self.process
        if old is not None:
            if old.poll() is None:
                return  # still running: nothing to restart
            for reader in self._readers:
                reader.join(timeout=1)
            for stream in (old.stdout, old.stderr):
                if stream is not None:
                    stream.close()
        self._readers = []
        self._remove_sandbox()
        self.sandbox = None
        self.exited_at = None
        self.stopped_by_us = False
        self.start()

    def start(self) -> None:
        """Start the command (in its cgroup and on its CPUs, if asked).

        Raises:
            WatchError: it cannot be started (no such program, no cgroups here).
        """
        if self.cpu_limit is not None or self.memory_limit is not None:
            self.sandbox = CgroupSandbox(cpu=self.cpu_limit, memory=self.memory_limit)
        sandbox, cpus = self.sandbox, self.cpus

        def in_child() -> None:  # between fork and exec: the target starts in place
            if sandbox is not None:
                sandbox.join(os.getpid())
            if cpus:
                os.sched_setaffinity(0, cpus)

        try:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=in_child if (sandbox is not None or cpus) else None,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            self._remove_sandbox()
            raise WatchError(f"--serve {self.command!r}: cannot start it: {exc}") from exc
        for stream, tail in (
            (self.process.stdout, self.stdout),
            (self.process.stderr, self.stderr),
        ):
            reader = threading.Thread(
                target=_keep_tail, args=(stream, tail), name="redline-serve-output", daemon=True
            )
            reader.start()
            self._readers.append(reader)

    def wait_ready(self, url: str, *, timeout_s: float, stop: Callable[[], bool] = bool) -> None:
        """Wait until ``url`` answers an HTTP request (any status).

        Raises:
            WatchError: the command exited first, or nothing answered within ``timeout_s``
                (it is stopped then); the message holds the end of its output.
        """
        parts = urlsplit(url)
        host, port = (
            parts.hostname or "127.0.0.1",
            parts.port or (443 if parts.scheme == "https" else 80),
        )
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.poll()
            if status is not None:
                for reader in self._readers:  # its last words may still be in the pipe
                    reader.join(timeout=2)
                raise WatchError(
                    f"--serve {self.command!r} exited with status {status} before {url} "
                    f"answered{self._tail_text()}"
                )
            if _answers(parts.scheme, host, port):
                return
            if time.monotonic() > deadline or stop():
                self.stop()
                raise WatchError(
                    f"--serve {self.command!r}: {url} did not answer within "
                    f"{timeout_s:g}s{self._tail_text()}"
                )
            time.sleep(0.05)

    def poll(self) -> int | None:
        """Its exit status, if it has exited (and when, the first time it is seen)."""
        if self.process is None:
            return None
        status = self.process.poll()
        if status is not None and self.exited_at is None:
            self.exited_at = time.monotonic()
        return status

    def stop(self) -> None:
        """SIGTERM to its session, SIGKILL after the grace period; remove its cgroup.

        Safe to call more than once and never raises.
        """
        process = self.process
        if process is not None and process.poll() is None:
            self.stopped_by_us = True
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=self.grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
        if process is not None:
            _signal_group(process.pid, signal.SIGKILL)  # children that ignored SIGTERM
        for reader in self._readers:
            reader.join(timeout=1)
        if process is not None:
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        self._remove_sandbox()

    def _remove_sandbox(self) -> None:
        if self.sandbox is not None:
            self.sandbox.remove()

    def _tail_text(self) -> str:
        lines = list(self.stderr)[-10:] or list(self.stdout)[-10:]
        return (":\n    " + "\n    ".join(lines)) if lines else " (it wrote nothing)"

    def record(self, *, t0: float | None) -> ServedProcess:
        """What the result keeps of it; ``t0`` is the start of the load (monotonic s)."""
        status = self.poll()
        exited_on_its_own = status is not None and not self.stopped_by_us
        return ServedProcess(
            command=self.command,
            pid=self.process.pid if self.process is not None else 0,
            exit_status=status if exited_on_its_own else None,
            exited_at_s=(
                round(self.exited_at - t0, 3)
                if exited_on_its_own and self.exited_at is not None and t0 is not None
                else None
            ),
            stdout_tail=tuple(self.stdout),
            stderr_tail=tuple(self.stderr),
            cgroup=str(self.sandbox.path) if self.sandbox is not None else None,
            cpus=",".join(map(str, self.cpus)) if self.cpus else None,
        )


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _keep_tail(stream: IO[bytes] | None, tail: collections.deque[str]) -> None:
    if stream is None:
        return
    with contextlib.suppress(ValueError, OSError):
        for raw in iter(stream.readline, b""):
            tail.append(raw.decode("utf-8", "replace").rstrip("\n"))


def _answers(scheme: str, host: str, port: int) -> bool:
    connection: http.client.HTTPConnection
    if scheme == "https":
        # whether it answers, not whom it claims to be: a test certificate will do
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, port, timeout=1.0, context=unverified)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
