"""Where the command line writes: rich for results, plain text for errors."""

from __future__ import annotations

import sys

from rich.console import Console

__all__ = ["error", "stdout_console"]

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
