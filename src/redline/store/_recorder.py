"""Recording a run into a store while it happens."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from redline.core import (
    IntervalSnapshot,
    RunMeta,
    RunOutcome,
    RunResult,
    StoreError,
    TargetReport,
    TraceReport,
    Verdict,
)

if TYPE_CHECKING:
    from ._store import RunStore

__all__ = ["RunRecorder"]


class RunRecorder:
    """Writes one run to a store while it happens, and never lets the store stop it.

    It is an observer (pass it in a run's ``observers``; :func:`redline.run` does, given a
    store). A failed write is remembered in :attr:`errors` and retried at the finish; the
    run goes on. If the process ends without a finish, what was written stays.
    """

    def __init__(self, store: RunStore, meta: RunMeta) -> None:
        """Record into ``store`` with ``meta``."""
        self.store = store
        self.meta = meta
        self.run_id: str | None = None
        self.errors: list[str] = []
        self.stored = False
        """Whether :meth:`finish` stored the run whole."""
        self._late_tolerance = 0.01
        self._written: set[int] = set()

    def on_start(self, run: RunResult) -> None:
        """Record the run's start (its id and start time)."""
        self.run_id = run.id
        self._late_tolerance = run.late_tolerance
        self._attempt(lambda: self.store.begin(run, self.meta))

    def on_interval(self, interval: IntervalSnapshot) -> None:
        """Record one interval as it completes."""
        run_id = self.run_id
        if run_id is None or self.errors:
            return  # after a failure, the rest is written at finish (or the run is lost)
        self._attempt(
            lambda: self.store.add_interval(run_id, interval, late_tolerance=self._late_tolerance)
        )
        if not self.errors:
            self._written.add(interval.index)

    def finish(
        self,
        result: RunResult,
        verdicts: Sequence[Verdict] = (),
        *,
        analysis: Mapping[str, Any] | None = None,
        target: TargetReport | None = None,
        traces: TraceReport | None = None,
    ) -> bool:
        """Record the finished run; return whether it is now stored whole."""
        before = len(self.errors)
        self._attempt(
            lambda: self.store.save(
                result, self.meta, verdicts, analysis=analysis, target=target, traces=traces
            )
        )
        self.stored = len(self.errors) == before
        return self.stored

    def on_finish(self, outcome: RunOutcome) -> None:
        """Record the finished, judged run."""
        self.finish(
            outcome.result,
            outcome.verdicts,
            analysis=outcome.analysis,
            target=outcome.target,
            traces=outcome.traces,
        )

    def on_abandon(self, stop_reason: str) -> None:
        """Mark the run stopped for ``stop_reason`` when there is no result to finish with."""
        if self.run_id is not None:
            run_id = self.run_id
            self._attempt(lambda: self.store.mark_stopped(run_id, stop_reason))

    def _attempt(self, write: Callable[[], None]) -> None:
        try:
            write()
        except StoreError as exc:
            self.errors.append(str(exc))
