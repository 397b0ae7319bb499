"""The watchdog: undoes host faults past their deadline or left by a process that died.

One runs per ledger folder (a lock file says so), started by the first fault applied and
detached from it (a session of its own), so that SIGKILL of redline does not take it down.
It leaves once the folder has been empty for a while.

    python -m redline.faults._watchdog FOLDER
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

from ._ledger import Ledger

__all__ = ["ensure_watchdog", "watch"]

WATCHDOG_ENV = "REDLINE_FAULTS_WATCHDOG"
"""Set to ``0`` to start no watchdog (tests of ``redline faults clean`` do)."""

_PERIOD_S = 0.2
_IDLE_S = 10.0


def _lock(folder: Path) -> IO[str] | None:
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / ".watchdog.lock", "a")  # noqa: SIM115 - held for the process' life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def ensure_watchdog(folder: Path) -> None:
    """Start a watchdog for ``folder`` unless one runs (or ``REDLINE_FAULTS_WATCHDOG=0``)."""
    if os.environ.get(WATCHDOG_ENV) == "0":
        return
    probe = _lock(folder)
    if probe is None:
        return  # one holds the lock
    probe.close()
    # the child forks the watchdog and leaves at once; a thread reaps it, so that applying
    # a fault does not wait for a Python to start
    child = subprocess.Popen(
        [sys.executable, "-m", "redline.faults._watchdog", str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    _STARTING.append(child)
    threading.Thread(target=child.wait, name="redline-watchdog-reaper", daemon=True).start()


_STARTING: list[subprocess.Popen[bytes]] = []


@atexit.register
def _reap() -> None:
    """Wait for the short-lived starters still on their way out (never the watchdogs)."""
    for child in _STARTING:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)


def watch(folder: Path) -> None:
    """Undo what is due until the folder stays empty; return at once if another watches."""
    ledger = Ledger(folder)
    handle = _lock(folder)
    if handle is None:
        return
    idle_since = time.monotonic()
    while True:
        entries = list(ledger.entries())
        for entry in entries:
            if entry.expired or entry.orphaned:
                ledger.undo(entry)
        if entries:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > _IDLE_S:
            handle.close()  # let go, then look once more: a fault may have come meanwhile
            if any(True for _ in ledger.entries()):
                handle = _lock(folder)
                if handle is None:
                    return  # a new watchdog took over
                idle_since = time.monotonic()
                continue
            return
        time.sleep(_PERIOD_S)


if __name__ == "__main__":  # pragma: no cover - run as its own process
    if os.fork() == 0:  # the watchdog proper, adopted by init once its parent leaves
        with contextlib.suppress(KeyboardInterrupt):
            watch(Path(sys.argv[1]))
    os._exit(0)
