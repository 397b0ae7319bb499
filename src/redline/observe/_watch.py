"""The target watcher: an observer that samples the target at every interval boundary.

The run's ``started_at`` is the wall-clock moment its load started, and its intervals are
whole seconds from there; the watcher reads every watched thing at those same boundaries
(in a thread of its own), so sample ``k`` covers exactly interval ``k``. A profile, when
asked for, covers the steady state: from the end of the warm-up to the end of the load.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from redline.core import (
    IntervalSnapshot,
    RunOutcome,
    RunResult,
    TargetProfile,
    TargetReport,
    WatchedThing,
)

from ._profile import Profiler
from ._samplers import Reading, Sampler, figures
from ._serve import ServedTarget

__all__ = ["ProfileRequest", "TargetWatcher"]

logger = logging.getLogger("redline")


class ProfileRequest:
    """What to profile: a process tree, how often, which samples."""

    def __init__(self, pid: int, *, rate_hz: float, idle: bool, gil: bool) -> None:
        """Profile ``pid`` (and its subprocesses)."""
        self.pid = pid
        self.rate_hz = rate_hz
        self.idle = idle
        self.gil = gil


class TargetWatcher:
    """Samples the watched things each interval, and profiles over the steady state.

    Use it as an observer of one run; then :meth:`report` gives what it saw.
    """

    def __init__(
        self,
        samplers: Sequence[Sampler],
        *,
        profile: ProfileRequest | None = None,
        served: ServedTarget | None = None,
        warmup_s: float = 0.0,
        duration_s: float = 3600.0,
        notes: Sequence[str] = (),
    ) -> None:
        """Watch with ``samplers`` (the served target's first, when there is one)."""
        self.samplers = list(samplers)
        self.profile_request = profile
        self.served = served
        self.warmup_s = warmup_s
        self.duration_s = duration_s
        self.notes = list(notes)
        self.samples: dict[str, list[dict[str, float | None]]] = {
            s.thing.name: [] for s in self.samplers
        }
        self.exits: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0_wall: float | None = None
        self._t0_mono: float | None = None
        self._profiler: Profiler | None = None
        self._profile: TargetProfile | None = None
        self._profile_from: float | None = None

    # -- the observer -------------------------------------------------------------------
    def on_start(self, run: RunResult) -> None:
        """Start sampling at the load's start (``run.started_at``)."""
        started = datetime.fromisoformat(run.started_at.replace("Z", "+00:00")).timestamp()
        self._t0_wall = started
        self._t0_mono = time.monotonic() + (started - time.time())
        self._thread = threading.Thread(target=self._sample, name="redline-watch", daemon=True)
        self._thread.start()

    def on_interval(self, interval: IntervalSnapshot) -> None:
        """Nothing: samples are taken on the watcher's own clock, at the same boundaries."""

    def on_finish(self, outcome: RunOutcome) -> None:
        """Stop sampling (if :meth:`stop` was not called yet)."""
        self.stop()

    def on_abandon(self, reason: str) -> None:
        """Stop sampling and profiling; nothing is read."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._profiler is not None:
            self._profiler.abandon()
            self._profiler = None

    # -- sampling -------------------------------------------------------------------------
    def _wait_until(self, moment: float) -> bool:
        """Sleep until ``moment`` (monotonic); ``False`` when asked to stop first."""
        return not self._stop.wait(max(moment - time.monotonic(), 0.0))

    def _read_all(self) -> list[Reading]:
        if self.served is not None:
            self.served.poll()  # reaps it if it exited, so its sampler sees it gone
        readings = []
        for sampler in self.samplers:
            try:
                readings.append(sampler.read())
            except Exception as exc:  # noqa: BLE001 - a reader's failure is a gap, not a crash
                self._note(f"{sampler.thing.name}: a reading failed: {exc!r}")
                readings.append(Reading(time.monotonic()))
        return readings

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _sample(self) -> None:
        assert self._t0_mono is not None
        t0 = self._t0_mono
        if not self._wait_until(t0):
            return
        before = self._read_all()
        if self.profile_request is not None and self.warmup_s <= 0:
            self._start_profile()  # no warm-up: the steady state is the whole load
        index = 0
        while True:
            stopping = not self._wait_until(t0 + index + 1)
            after = self._read_all()
            self._keep(index, before, after)
            if (
                self._profiler is None
                and self._profile is None
                and self.profile_request is not None
                and after[0].at - t0 >= self.warmup_s - 1e-3
            ):
                self._start_profile()
            before = after
            index += 1
            if stopping or index > self.duration_s + 3600:
                return

    def _keep(self, index: int, before: list[Reading], after: list[Reading]) -> None:
        assert self._t0_mono is not None
        for sampler, start, end in zip(self.samplers, before, after, strict=True):
            name = sampler.thing.name
            values = figures(start, end, sampler.thing.cores)
            if end.gone and name not in self.exits:
                self.exits[name] = round(end.at - self._t0_mono, 3)
            self.samples[name].append({"interval": float(index), **values})

    def _start_profile(self) -> None:
        request = self.profile_request
        assert request is not None
        assert self._t0_mono is not None
        self._profile_from = time.monotonic() - self._t0_mono
        self._profiler = Profiler(
            request.pid,
            rate_hz=request.rate_hz,
            idle=request.idle,
            gil=request.gil,
            cap_s=self.duration_s - self._profile_from + 60,
        )
        if not self._profiler.start():
            self._profile = TargetProfile(
                rate_hz=request.rate_hz,
                window_s=(self._profile_from, self._profile_from),
                note=self._profiler.note,
            )
            self._profiler = None

    def stop(self) -> None:
        """Take the last sample and stop the profile (the load has ended)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._profiler is not None and self._t0_mono is not None:
            until = time.monotonic() - self._t0_mono
            self._profile = self._profiler.stop(
                window_s=(round(self._profile_from or 0.0, 3), round(until, 3))
            )
            self._profiler = None

    # -- the report -----------------------------------------------------------------------
    def report(self, result: RunResult) -> TargetReport:
        """What was seen, with samples for the run's intervals only (stops first)."""
        self.stop()
        if self.profile_request is not None and self._profile is None:
            self._profile = TargetProfile(
                rate_hz=self.profile_request.rate_hz,
                window_s=(self.warmup_s, self.warmup_s),
                note="no profile: the run ended before its warm-up did",
            )
        indices = {i.index for i in result.intervals}
        watched: list[WatchedThing] = []
        for sampler in self.samplers:
            thing = sampler.thing
            problems = getattr(sampler, "problems", ())
            if problems:
                self.notes.extend(p for p in problems if p not in self.notes)
            if thing.name in self.exits:
                status = None
                if self.served is not None and sampler is self.samplers[0]:
                    status = self.served.poll()
                thing = replace(thing, exited_at_s=self.exits[thing.name], exit_status=status)
                self._note(
                    f"{thing.name} exited {self.exits[thing.name]:.1f}s into the run"
                    + (f" with status {status}" if status is not None else "")
                    + "; its later samples are missing"
                )
            watched.append(thing)
        samples = {
            name: tuple(s for s in rows if int(s["interval"] or 0) in indices)
            for name, rows in self.samples.items()
        }
        served = None
        if self.served is not None:
            served = self.served.record(t0=self._t0_mono)
        return TargetReport(
            watched=tuple(watched),
            samples=samples,
            profile=self._profile,
            served=served,
            notes=tuple(self.notes),
        )
