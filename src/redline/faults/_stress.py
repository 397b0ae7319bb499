"""redline's own small stressors, the noisy neighbour's work (stress-ng is used when present).

    python -m redline.faults._stress --cpu 2 --memory 268435456 --io /data --io-rate 1048576

``--cpu N`` keeps N processes busy; ``--memory B`` holds B bytes, every page touched;
``--io DIR`` writes (and fsyncs) 1 MiB chunks to a file there, at ``--io-rate`` bytes a
second or as fast as it can, keeping the file under 64 MiB. It runs until killed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

__all__ = ["stressor_argv"]

_CHUNK = 1 << 20
_MAX_FILE = 64 << 20


def stressor_argv(
    python: str, *, cpu: int = 0, memory: int = 0, io: str | None = None, io_rate: int = 0
) -> tuple[list[str], str]:
    """The command of a stressor, and which one (``stress-ng`` or ``redline``)."""
    stress_ng = shutil.which("stress-ng")
    if stress_ng is not None and not io_rate:
        argv = [stress_ng, "--quiet"]
        if cpu:
            argv += ["--cpu", str(cpu)]
        if memory:
            argv += ["--vm", "1", "--vm-bytes", str(memory), "--vm-keep"]
        if io:
            argv += ["--hdd", "1", "--temp-path", io]
        return argv, "stress-ng"
    argv = [python, "-m", "redline.faults._stress", "--cpu", str(cpu), "--memory", str(memory)]
    if io:
        argv += ["--io", io, "--io-rate", str(io_rate)]
    return argv, "redline"


def _burn() -> None:  # pragma: no cover - a child process, killed at the end
    while True:
        pass


def _hold(size: int) -> bytearray:
    block = bytearray(size)
    for offset in range(0, size, 4096):  # touch every page: resident, not just reserved
        block[offset] = 1
    return block


def _write(folder: str, rate: int) -> None:  # pragma: no cover - killed at the end
    path = Path(folder) / f".redline-neighbour-{os.getpid()}"
    chunk = os.urandom(_CHUNK)
    with open(path, "wb") as handle:
        try:
            while True:
                started = time.monotonic()
                handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
                if handle.tell() >= _MAX_FILE:
                    handle.seek(0)
                if rate:
                    time.sleep(max(0.0, _CHUNK / rate - (time.monotonic() - started)))
        finally:
            path.unlink(missing_ok=True)


def main() -> None:  # pragma: no cover - run as its own process
    """Stress until killed."""
    parser = argparse.ArgumentParser(prog="python -m redline.faults._stress")
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--memory", type=int, default=0)
    parser.add_argument("--io")
    parser.add_argument("--io-rate", type=int, default=0)
    args = parser.parse_args()
    for _ in range(args.cpu):
        if os.fork() == 0:
            _burn()
    held = _hold(args.memory) if args.memory else None
    if args.io:
        _write(args.io, args.io_rate)
    while True:
        time.sleep(3600)
        assert held is None or held[0] == 1


if __name__ == "__main__":  # pragma: no cover
    main()
