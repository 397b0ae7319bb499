"""A custom observer: stream each interval of a run to a CSV file as it completes.

    python examples/api/csv_observer.py http://127.0.0.1:8080/ intervals.csv

Any object with some of ``on_start``, ``on_interval``, ``on_finish`` and ``on_abandon``
is an observer (docs/api.md).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import IO

import redline
from redline.core import IntervalSnapshot, RunOutcome, RunResult
from redline.plan import quick_plan


class CsvIntervals:
    """Writes one row per interval: time, requests, errors, p50 and p99 in ms."""

    def __init__(self, path: Path) -> None:
        """Write to ``path`` (replaced)."""
        self.path = path
        self._file: IO[str] | None = None
        self.rows = 0

    def on_start(self, run: RunResult) -> None:
        """Open the file and write the header."""
        self._file = self.path.open("w", newline="", encoding="utf-8")
        csv.writer(self._file).writerow(["run", "t_s", "requests", "errors", "p50_ms", "p99_ms"])
        self._run = run.id

    def on_interval(self, interval: IntervalSnapshot) -> None:
        """Write one row, and flush it."""
        assert self._file is not None
        total = interval.total()
        p50, p99 = total.latency.values_at_percentiles([50, 99])
        csv.writer(self._file).writerow(
            [self._run, interval.start_s, total.requests, total.errors, p50 / 1000, p99 / 1000]
        )
        self._file.flush()  # a crash keeps every row written so far
        self.rows += 1

    def on_finish(self, outcome: RunOutcome) -> None:
        """Close the file."""
        self._close()

    def on_abandon(self, reason: str) -> None:
        """Close the file (the rows written so far stay)."""
        self._close()

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def main(url: str, out: str) -> int:
    """Run 3 s at 50 req/s against ``url`` with intervals streamed to ``out``."""
    plan = quick_plan(url, rate="50/s", duration="3s")
    observer = CsvIntervals(Path(out))
    outcome = redline.run(plan, observers=[observer])
    print(f"{observer.rows} intervals written to {out}; passed: {outcome.passed}")
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
