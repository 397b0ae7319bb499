"""Run metadata read off the working directory: git commit, dirty flag, host, version."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from redline import __version__
from redline.store import RunMeta, collect_meta


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_git_commit_and_dirty_flag_of_the_working_directory(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "app.py").write_text("x = 1\n")
    git(tmp_path, "add", "app.py")
    git(tmp_path, "commit", "-qm", "first")
    head = git(tmp_path, "rev-parse", "HEAD")
    clean = collect_meta(cwd=tmp_path, labels={"branch": "main"})
    assert (clean.git_commit, clean.git_dirty) == (head, False)
    # The store's own directory is untracked and must not make the tree dirty.
    (tmp_path / ".redline").mkdir()
    (tmp_path / ".redline" / "runs.db").write_bytes(b"")
    assert collect_meta(cwd=tmp_path).git_dirty is False
    (tmp_path / "app.py").write_text("x = 2\n")
    assert collect_meta(cwd=tmp_path).git_dirty is True
    assert clean.labels == {"branch": "main"}
    assert clean.version == __version__
    assert clean.pid == os.getpid()
    assert clean.host


def test_outside_a_repository_there_is_no_commit(tmp_path: Path) -> None:
    meta = collect_meta(cwd=tmp_path)
    assert (meta.git_commit, meta.git_dirty) == (None, None)


def test_meta_round_trips_through_its_json_form() -> None:
    meta = RunMeta(
        labels={"a": "1"}, git_commit="abc", git_dirty=True, host="h", version="v", pid=7
    )
    assert RunMeta.from_dict(meta.to_dict()) == meta
