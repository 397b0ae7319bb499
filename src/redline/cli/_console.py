"""Where the command line writes: rich for results, plain text for errors."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from redline.report import write_text

from . import _exit

__all__ = ["emit", "error", "stdout_console"]

_LOG_WIDTH = 120


def stdout_console() -> Console:
    """A console for results; off a terminal (CI logs, pipes) it is wide enough not to fold."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=_LOG_WIDTH)
    return console


def error(message: str) -> None:
    """Print ``redline: message`` to stderr, unwrapped, so it can be read and grepped whole."""
    print(f"redline: {message}", file=sys.stderr, flush=True)


def emit(text: str, out: Path | None) -> int:
    """Write ``text`` to ``out`` (atomically) or, without ``out``, to stdout.

    Returns:
        the exit code: OK, or USAGE when ``out`` cannot be written (said on stderr).
    """
    if out is None:
        sys.stdout.write(text)
        return _exit.OK
    try:
        write_text(text, out)
    except OSError as exc:
        error(f"--out: cannot write {str(out)!r}: {exc.strerror}")
        return _exit.USAGE
    return _exit.OK
