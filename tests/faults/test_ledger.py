"""The ledger: write-ahead records, one undo per entry however many undoers reach for it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from redline.faults import Ledger


def counting_entry(ledger: Ledger, out: Path) -> None:
    entry = ledger.open("count", "test", max_s=60)
    ledger.add(entry, {"op": "run", "argv": ["sh", "-c", f"echo undone >> {out}"]})


def test_an_entry_is_undone_once_whoever_reaches_for_it(tmp_path: Path) -> None:
    ledger, out = Ledger(tmp_path / "ledger"), tmp_path / "out"
    counting_entry(ledger, out)
    (seen_by_watchdog,) = ledger.entries()
    (seen_by_clean,) = ledger.entries()  # both read it before either undid it
    assert ledger.undo(seen_by_watchdog) == []
    assert ledger.undo(seen_by_clean) == []
    assert out.read_text() == "undone\n"
    assert list(ledger.entries()) == []


def test_steps_are_undone_last_first_and_recorded_before_the_change(tmp_path: Path) -> None:
    ledger, out = Ledger(tmp_path / "ledger"), tmp_path / "out"
    entry = ledger.open("order", "test", max_s=60)
    for word in ("first", "second"):
        ledger.add(entry, {"op": "run", "argv": ["sh", "-c", f"echo {word} >> {out}"]})
        (on_file,) = ledger.entries()  # on disk before the change would be made
        assert on_file.steps[-1]["argv"][-1].startswith(f"echo {word}")
    ledger.undo(entry)
    assert out.read_text().split() == ["second", "first"]


def test_a_claim_left_by_an_undoer_that_died_is_taken_up_again(tmp_path: Path) -> None:
    ledger, out = Ledger(tmp_path / "ledger"), tmp_path / "out"
    counting_entry(ledger, out)
    (entry,) = ledger.entries()
    assert ledger.claim(entry)  # ...and then the undoer died before its steps
    assert list(ledger.entries()) == []  # a fresh claim is someone's work in progress
    old = time.time() - 120
    assert entry.path is not None
    os.utime(entry.path, (old, old))
    done, problems = ledger.clean()
    assert problems == []
    assert [e.name for e in done] == ["count"]
    assert out.read_text() == "undone\n"


def test_an_entry_knows_when_its_owner_is_gone(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger")
    entry = ledger.open("mine", "test", max_s=60)
    assert not entry.orphaned
    assert not entry.expired
    entry.owner = 2**22 + 12345  # no such process
    assert entry.orphaned
    entry.deadline = time.time() - 1
    assert entry.expired
