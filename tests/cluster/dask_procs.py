"""Real Dask clusters for the tests: ``dask scheduler`` and ``dask worker`` processes.

Each worker is a separate process started from the command line, as a team would start
it on its hosts (``--no-nanny``: killing the process kills the worker, nothing restarts
it). Everything started here is stopped at the end, also after a failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

DASK = str(Path(sys.executable).with_name("dask"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:g}s")


class DaskProcesses:
    """A scheduler and workers as processes; :meth:`close` ends every one."""

    def __init__(self, *, prefix: Sequence[str] = (), host: str = "127.0.0.1") -> None:
        self.prefix = list(prefix)
        self.host = host
        self.port = free_port()
        self.address = f"tcp://{host}:{self.port}"
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.others: list[subprocess.Popen[bytes]] = []
        self.scheduler = self._spawn(
            [DASK, "scheduler", "--host", host, "--port", str(self.port), "--no-dashboard"]
        )
        wait_port(host, self.port)

    def _spawn(
        self, argv: list[str], *, env: dict[str, str] | None = None, prefix: Sequence[str] = ()
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*(prefix or self.prefix), *argv],
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own group: a kill reaches its generator too
        )

    def worker(
        self,
        name: str,
        *,
        env: dict[str, str] | None = None,
        resources: str | None = None,
        prefix: Sequence[str] = (),
        wait: bool = True,
    ) -> subprocess.Popen[bytes]:
        argv = [DASK, "worker", self.address, "--name", name, "--nthreads", "1"]
        argv += ["--no-nanny", "--no-dashboard", "--death-timeout", "60"]
        if resources:
            argv += ["--resources", resources]
        process = self._spawn(argv, env=env, prefix=prefix)
        self.workers[name] = process
        if wait:
            self.wait_for(len(self.workers))
        return process

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        from distributed import Client

        with Client(self.address, timeout="30s", set_as_default=False) as client:
            client.wait_for_workers(count, timeout=timeout)

    def kill(self, name: str) -> None:
        """SIGKILL a worker and what it started (its generator process)."""
        process = self.workers[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def close(self) -> None:
        for process in [*self.workers.values(), *self.others, self.scheduler]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in [*self.workers.values(), *self.others, self.scheduler]:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextlib.contextmanager
def dask_processes(workers: int = 0, **options: object) -> Iterator[DaskProcesses]:
    cluster = DaskProcesses(**options)  # type: ignore[arg-type]
    try:
        for index in range(workers):
            cluster.worker(f"w{index}", wait=False)
        if workers:
            cluster.wait_for(workers)
        yield cluster
    finally:
        cluster.close()
