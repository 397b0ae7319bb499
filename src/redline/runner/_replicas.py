"""Following the target's replica count during a run (``--replicas-from``).

A source is ``command:CMD`` (run without a shell; its output is the count) or
``prometheus:URL`` with a query (an instant query; its first value is the count, e.g.
``kube_deployment_status_ready_replicas{deployment="shop"}``). It is read every
``period_s`` in a thread of its own from the start of the load to its end; a read that
fails is counted and skipped, never fatal to the run.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
import time
import urllib.parse
import urllib.request

from redline.core import RunOutcome, RunResult

__all__ = ["ReplicaFollower", "read_replicas"]


def read_replicas(source: str, query: str | None = None, *, timeout: float = 5.0) -> int:
    """One reading of ``source``.

    Raises:
        ValueError: the source is not ``command:`` or ``prometheus:``, or its answer is
            not a count.
        OSError: the command or Prometheus could not be reached.
    """
    kind, _, rest = source.partition(":")
    if kind == "command" and rest.strip():
        done = subprocess.run(
            shlex.split(rest), capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise OSError(f"the command exited {done.returncode}: {done.stderr.strip()[:200]}")
        text = done.stdout.strip()
        try:
            return int(float(text))
        except ValueError:
            raise ValueError(f"the command printed {text[:60]!r}, not a replica count") from None
    if kind == "prometheus" and rest.strip():
        if not query:
            raise ValueError("a prometheus: source needs a query (--replicas-query)")
        url = f"{rest.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # the user's Prometheus
            body = json.loads(answer.read())
        result = body.get("data", {}).get("result", [])
        if body.get("status") != "success" or not result:
            raise ValueError(f"the query {query!r} returned no series")
        return int(float(result[0]["value"][1]))
    raise ValueError(
        f"expected command:CMD or prometheus:URL, got {source!r} (e.g. "
        '"command:kubectl get deploy shop -o jsonpath={.status.readyReplicas}")'
    )


class ReplicaFollower:
    """An observer that reads the replica count through a run, on the run's clock."""

    def __init__(self, source: str, query: str | None = None, *, period_s: float = 1.0) -> None:
        """Follow ``source`` every ``period_s`` once the run starts."""
        read_replicas(source, query)  # a bad source is a usage error before the load
        self.source = source
        self.query = query
        self.period_s = period_s
        self.readings: list[tuple[float, int]] = []
        """``(seconds from the load's start, replicas)``, in order."""
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def on_start(self, run: RunResult) -> None:
        """Start reading."""
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._follow, name="replicas", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                count = read_replicas(self.source, self.query)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self.failures += 1
            else:
                self.readings.append((time.monotonic() - self._t0, count))
            self._stop.wait(self.period_s)

    def on_finish(self, outcome: RunOutcome) -> None:
        """Stop reading."""
        self.close()

    def on_abandon(self, *args: object) -> None:
        """Stop reading (the run ended without a result)."""
        self.close()

    def close(self) -> None:
        """Stop the reading thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
