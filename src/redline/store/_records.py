"""What reading the store gives back: a run's line in the list, a run read back whole."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redline.core import RunOutcome, parse_duration

__all__ = ["Decision", "RunInfo", "StoredRun", "parse_time"]


def parse_time(text: str, *, now: datetime | None = None) -> str:
    """A ``--since``/``--until`` value in the store's time form.

    Accepts an ISO 8601 date or time (UTC unless it says otherwise) or an age such as
    ``"90m"``, ``"12h"`` or ``"7d"`` (that long before ``now``).

    Raises:
        ValueError: ``text`` is neither.
    """
    text = text.strip()
    now = now or datetime.now(UTC)
    try:
        if text.endswith("d") and text[:-1].replace(".", "", 1).isdigit():
            moment = now - timedelta(days=float(text[:-1]))
        else:
            moment = now - timedelta(seconds=parse_duration(text))
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f'expected a date like "2026-11-28", a time like "2026-11-28T09:30" '
                f'or an age like "12h" or "7d", got {text!r}'
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    stamp = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Decision:
    """A decision record: what changed, the expected and measured effect, who decided.

    ``kind`` says what made it (``rollout``), ``subject`` what it was about (the canary),
    ``decision`` what was decided (``promote``, ``rollback``), ``record`` the rest.
    """

    id: str
    at: str
    kind: str
    subject: str
    decision: str
    record: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "id": self.id,
            "at": self.at,
            "kind": self.kind,
            "subject": self.subject,
            "decision": self.decision,
            "record": dict(self.record),
        }


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One line of the run list: what a run was and how it went, without its intervals."""

    id: str
    plan: str
    target: str
    started_at: str
    stop_reason: str
    complete: bool
    labels: Mapping[str, str]
    requests: int
    errors: int
    measured_s: float
    p99_ms: float | None
    verdicts: Mapping[str, int]
    git_commit: str | None
    git_dirty: bool | None
    summary: Mapping[str, Any] | None = None
    """The stored summary (``duration_s``, ``generator``, ``summary`` of the result's
    JSON) of a finished run; None for one that never finished."""

    @property
    def rps(self) -> float:
        """Requests per measured second."""
        return self.requests / self.measured_s if self.measured_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        """Errors as a fraction of requests."""
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``redline runs --json``)."""
        return {
            "id": self.id,
            "plan": self.plan,
            "target": self.target,
            "started_at": self.started_at,
            "stop_reason": self.stop_reason,
            "complete": self.complete,
            "labels": dict(self.labels),
            "requests": self.requests,
            "errors": self.errors,
            "measured_s": self.measured_s,
            "rps": self.rps,
            "p99_ms": self.p99_ms,
            "verdicts": dict(self.verdicts),
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
        }


StoredRun = RunOutcome
"""A run read back from the store (the same value :func:`redline.run` returns)."""
