"""The JSON result file (the public contract in docs/result-json.md), and atomic writes."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from redline.core import RunResult

__all__ = ["write_json", "write_text"]


def write_text(text: str, path: str | Path) -> None:
    """Write ``text`` to ``path`` atomically (a reader never sees half a file).

    Raises:
        OSError: the file cannot be written.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(result: RunResult, path: str | Path) -> None:
    """Write ``result`` as JSON to ``path`` atomically."""
    write_text(result.to_json(indent=1), path)
