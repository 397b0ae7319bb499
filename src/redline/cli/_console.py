"""Where the command line writes: rich for results, plain text for errors."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from redline.report import write_text

from . import _exit

__all__ = ["emit", "error", "runner_messages", "stdout_console"]

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


class _ToConsole(logging.Handler):
    """The runner's messages on the command line: news on the console, problems on stderr."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.INFO)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            error(message)
        else:
            self.console.print(message, highlight=False)


@contextlib.contextmanager
def runner_messages(console: Console) -> Iterator[None]:
    """Show what the runner logs (``logging.getLogger("redline")``) while the block runs."""
    logger = logging.getLogger("redline")
    handler = _ToConsole(console)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
