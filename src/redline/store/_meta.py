"""Collecting what a run says about where it came from: labels, git, host, version."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from redline import __version__
from redline.core import RunMeta

__all__ = ["collect_meta", "parse_labels"]

_GIT_TIMEOUT = 5.0


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
