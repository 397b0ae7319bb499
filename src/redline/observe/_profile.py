"""Stack profiles of the watched Python processes under load, through py-spy.

py-spy (the ``profile`` extra) reads a Python process's stacks from outside, without
stopping it (``--nonblocking``), so the cost to the target is the memory reads only. Two
samplers run side by side over the same window: one counts the threads that are running
(on-CPU, or with ``gil`` only the thread holding the GIL), the other every thread
(``--idle``); what the second saw and the first did not is the waiting profile. A thread
waiting on a lock, a pool, a socket or a sleep shows there, not as CPU.

Waiting stacks that pass through application code (not the standard library or
site-packages) are sorted by what they wait on, read off the frames below the
application's deepest one, or its own source line when nothing is below it:

========  ================================================================================
``pool``  ``queue.Queue.get``, a ``Semaphore`` or ``Condition``, a pool library's checkout
``lock``  a line that takes a lock (``with lock:``, ``.acquire()``)
``io``    sockets, ``selectors``, ``ssl``, ``http.client``, database and Redis clients
``sleep`` a line that sleeps
``other`` anything else
========  ================================================================================
"""

from __future__ import annotations

import contextlib
import linecache
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from redline.core import ProfileFunction, TargetProfile

__all__ = ["Profiler", "classify_wait", "find_py_spy", "parse_folded", "top_functions"]

_FRAME = re.compile(r"^(?P<function>.+) \((?P<file>[^():]+):(?P<line>\d+)\)$")
_POOL_FILES = ("/queue.py", "/concurrent/futures/", "/asyncio/queues.py", "pool")
_POOL_CALLS = {("threading.py", "acquire"), ("threading.py", "wait"), ("threading.py", "get")}
_IO_FILES = (
    "/socket.py",
    "/selectors.py",
    "/ssl.py",
    "/http/client.py",
    "psycopg",
    "redis/",
    "urllib3",
    "httpx",
    "httpcore",
)
_LOCK_LINE = re.compile(r"\block\b|_lock\b|lock\)|\.acquire\(|mutex", re.IGNORECASE)


def find_py_spy() -> str | None:
    """The py-spy executable: beside this Python's (a venv's bin), else on the PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


def _frames(stack: str) -> list[tuple[str, str, int]]:
    out = []
    for frame in stack.split(";"):
        match = _FRAME.match(frame.strip())
        if match:  # leaves out py-spy's process and thread frames
            out.append((match["function"], match["file"], int(match["line"])))
    return out


def parse_folded(text: str) -> dict[str, int]:
    """py-spy's raw output (``frame;frame;... count``, root first) as stacks to counts.

    Process and thread frames are left out, and line numbers kept, so the same stack in two
    processes counts once.
    """
    out: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = _frames(stack)
        if frames:
            out[";".join(f"{f} ({file}:{n})" for f, file, n in frames)] += int(count)
    return dict(out)


# site-packages that serve requests rather than handle them: frames in them are the server's
_SERVERS = (
    "uvicorn",
    "starlette",
    "anyio",
    "gunicorn",
    "h11",
    "httptools",
    "uvloop",
    "werkzeug",
    "waitress",
    "hypercorn",
)


def _is_library(file: str) -> bool:
    """Whether a frame is the standard library's or a server's, not the application's."""
    if file.startswith("<"):
        return True
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in file:
            package = file.split(marker, 1)[1].split("/", 1)[0]
            return package in _SERVERS
    return "/lib/python3" in file


def classify_wait(stack: str) -> str | None:
    """What a waiting stack waits on: ``pool``, ``lock``, ``io``, ``sleep`` or ``other``.

    ``None`` when it does not pass through application code (an idle worker, a loop).
    """
    found = _wait_of(stack)
    return found[0] if found is not None else None


def _wait_of(stack: str) -> tuple[str, str] | None:
    """The kind of wait and the application frame that waits (``function (file:line)``)."""
    frames = _frames(stack)
    deepest = max(
        (
            i
            for i, (function, file, _) in enumerate(frames)
            if not _is_library(file) and function != "<module>"  # a script's serve_forever
        ),
        default=None,
    )
    if deepest is None:
        return None
    site = "{} ({}:{})".format(*frames[deepest])
    below = frames[deepest + 1 :]
    for function, file, _ in below:
        if any(p in file for p in _POOL_FILES) or (Path(file).name, function) in _POOL_CALLS:
            return "pool", site
    for _, file, _ in below:
        if any(p in file for p in _IO_FILES):
            return "io", site
    function, file, line = frames[-1]
    source = linecache.getline(file, line) if not below else ""
    if (below and function == "acquire") or _LOCK_LINE.search(source):
        return "lock", site
    if "sleep" in source or function == "sleep":
        return "sleep", site
    return "other", site


def top_functions(folded: Mapping[str, int], *, limit: int = 20) -> tuple[ProfileFunction, ...]:
    """Functions by self time (then total), with their share of all samples (0-100)."""
    total = sum(folded.values())
    if not total:
        return ()
    self_counts: Counter[tuple[str, str]] = Counter()
    total_counts: Counter[tuple[str, str]] = Counter()
    first_line: dict[tuple[str, str], int] = {}
    for stack, count in folded.items():
        frames = _frames(stack)
        if not frames:
            continue
        seen = set()
        for function, file, line in frames:
            key = (function, file)
            first_line[key] = min(first_line.get(key, line), line)
            if key not in seen:
                total_counts[key] += count
                seen.add(key)
        leaf = frames[-1]
        self_counts[(leaf[0], leaf[1])] += count
    ranked = sorted(total_counts, key=lambda k: (-self_counts[k], -total_counts[k], k))
    return tuple(
        ProfileFunction(
            function=function,
            file=file,
            line=first_line[(function, file)],
            self_pct=round(self_counts[(function, file)] / total * 100, 2),
            total_pct=round(total_counts[(function, file)] / total * 100, 2),
        )
        for function, file in ranked[:limit]
    )


def _waiting(everything: Mapping[str, int], running: Mapping[str, int]) -> dict[str, int]:
    out = {}
    for stack, count in everything.items():
        left = count - running.get(stack, 0)
        if left > 0:
            out[stack] = left
    return out


class Profiler:
    """py-spy on one process tree over a window: :meth:`start`, then :meth:`stop`."""

    def __init__(self, pid: int, *, rate_hz: float, idle: bool, gil: bool, cap_s: float) -> None:
        """Sample ``pid`` and its subprocesses at ``rate_hz`` for at most ``cap_s`` seconds."""
        self.pid = pid
        self.rate_hz = rate_hz
        self.idle = idle
        self.gil = gil
        self.cap_s = cap_s
        self.note: str | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="redline-profile-")
        self._samplers: dict[str, subprocess.Popen[bytes]] = {}

    def _argv(self, py_spy: str, kind: str) -> list[str]:
        argv = [
            py_spy,
            "record",
            "--pid",
            str(self.pid),
            "--rate",
            str(round(self.rate_hz)),
            "--format",
            "raw",
            "--output",
            str(Path(self._dir.name) / f"{kind}.txt"),
            "--nonblocking",
            "--subprocesses",
            "--full-filenames",
            "--duration",
            str(max(1, round(self.cap_s))),
        ]
        if kind == "all":
            argv.append("--idle")
        elif self.gil:
            argv.append("--gil")
        return argv

    def start(self) -> bool:
        """Start sampling; ``False`` (and a note) when py-spy is not installed."""
        py_spy = find_py_spy()
        if py_spy is None:
            self.note = "no profile: py-spy is not installed (pip install 'redline[profile]')"
            return False
        for kind in ("running", "all") if self.idle else ("running",):
            self._samplers[kind] = subprocess.Popen(
                self._argv(py_spy, kind),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        return True

    def stop(self, *, window_s: tuple[float, float]) -> TargetProfile:
        """Stop sampling and read what was sampled over ``window_s`` (seconds of the run)."""
        counts: dict[str, dict[str, int]] = {}
        problems: list[str] = []
        for kind, sampler in self._samplers.items():
            if sampler.poll() is None:
                sampler.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
            try:
                _, err = sampler.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                sampler.kill()
                _, err = sampler.communicate()
            path = Path(self._dir.name) / f"{kind}.txt"
            if path.exists():
                counts[kind] = parse_folded(path.read_text())
            else:
                message = (err or b"").decode("utf-8", "replace").strip().splitlines()
                problems.append(
                    message[-1] if message else f"py-spy exited with {sampler.returncode}"
                )
        self._dir.cleanup()
        note = self.note
        if problems and not counts:
            note = f"no profile: py-spy could not sample pid {self.pid}: {problems[0]}"
        running = counts.get("running", {})
        waiting = _waiting(counts.get("all", {}), running)
        waits: Counter[str] = Counter()
        sites: dict[str, Counter[str]] = {}
        for stack, count in waiting.items():
            found = _wait_of(stack)
            if found is not None:
                waits[found[0]] += count
                sites.setdefault(found[0], Counter())[found[1]] += count
        return TargetProfile(
            rate_hz=self.rate_hz,
            window_s=window_s,
            samples=sum(running.values()),
            waiting_samples=sum(waiting.values()),
            top=top_functions(running),
            waiting_top=top_functions(waiting),
            folded=running,
            waiting_folded=waiting,
            waits=dict(waits),
            wait_sites={kind: c.most_common(1)[0][0] for kind, c in sites.items()},
            note=note,
        )

    def abandon(self) -> None:
        """Stop the samplers without reading them (the run ended without a result)."""
        for sampler in self._samplers.values():
            with contextlib.suppress(ProcessLookupError):
                sampler.kill()
            sampler.wait()
        self._dir.cleanup()
