"""What a stored run says about where it came from: labels, git, host, redline version."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redline import __version__

__all__ = ["RunMeta", "collect_meta", "parse_labels"]

_GIT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class RunMeta:
    """Where and how a run was made.

    Attributes:
        labels: free ``key=value`` labels (``--label branch=main``).
        git_commit: the commit checked out in the working directory, if it is a git one.
        git_dirty: whether tracked files differed from that commit.
        host: the host name of the machine that generated the load.
        version: the redline version that made the run.
        pid: the process that recorded the run (tells a killed run from a running one).
    """

    labels: Mapping[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    git_dirty: bool | None = None
    host: str = ""
    version: str = ""
    pid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the ``meta`` of an exported run)."""
        return {
            "labels": dict(self.labels),
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "host": self.host,
            "version": self.version,
            "pid": self.pid,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunMeta:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            labels={str(k): str(v) for k, v in data.get("labels", {}).items()},
            git_commit=data.get("git_commit"),
            git_dirty=data.get("git_dirty"),
            host=data.get("host", ""),
            version=data.get("version", ""),
            pid=data.get("pid"),
        )


def parse_labels(items: Sequence[str]) -> dict[str, str]:
    """``["k=v", ...]`` as a mapping.

    Raises:
        ValueError: an item is not ``key=value`` with a non-empty key.
    """
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f'expected a label like "branch=main", got {item!r}')
        labels[key.strip()] = value.strip()
    return labels


def collect_meta(
    *, labels: Mapping[str, str] | None = None, cwd: str | Path | None = None
) -> RunMeta:
    """Describe a run about to be made from ``cwd`` (default: the working directory)."""
    commit, dirty = _git_state(Path(cwd) if cwd is not None else Path.cwd())
    return RunMeta(
        labels=dict(labels or {}),
        git_commit=commit,
        git_dirty=dirty,
        host=socket.gethostname(),
        version=__version__,
        pid=os.getpid(),
    )


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # no git, or a repository too slow to ask: the run has no commit
    return done.stdout.strip() if done.returncode == 0 else None


def _git_state(cwd: Path) -> tuple[str | None, bool | None]:
    commit = _git(cwd, "rev-parse", "--verify", "HEAD")
    if not commit:
        return None, None
    # Untracked files do not count: the store itself (.redline/) is one of them.
    status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    return commit, bool(status) if status is not None else None
