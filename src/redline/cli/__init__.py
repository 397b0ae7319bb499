"""The ``redline`` command line (thin: parse, call public APIs, map to exit codes)."""

import sys

from ._main import main as _main

__all__ = ["main"]


def main() -> None:
    """Console-script entry point."""
    sys.exit(_main())
