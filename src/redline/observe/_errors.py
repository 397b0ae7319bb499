"""What goes wrong when watching a target."""

from __future__ import annotations

from redline.core import RunError

__all__ = ["WatchError"]


class WatchError(RunError):
    """The target cannot be watched or served as asked; the message says why.

    No such PID, not a cgroup, a served command that exits at once or never answers.
    """
