"""Test types as presets: the shape of the load, from one rate (or user count).

Given ``type:`` (or ``--type``), the plan's ``rate`` (or ``vus``) is the *expected peak*
and the preset draws the stages (times as fractions of the duration ``D``):

- ``smoke``: a tiny load (at most 2 req/s, or 1 user) for 1 minute: does it work at all?
- ``load``: ramp up to the peak over 10% of D, hold 80%, ramp down over 10% (default D 10m).
- ``stress``: steps beyond the peak: 50%, 100%, 150% and 200% of it, a quarter of D each,
  each reached by a short ramp (default D 10m).
- ``soak``: the peak held for hours (default D 2h); the run reports drift: a trend of
  latency over time (see :func:`redline.analysis.drift`).
- ``spike``: the peak for 40% of D, a sudden jump to ``multiple`` times it (default 5)
  for ``for`` (default 10% of D), then back; the run reports the recovery time
  (default D 5m).
- ``breakpoint``: a linear ramp from nothing to the given rate over D, every objective an
  abort rule: the run stops where the first objective breaks (default D 10m); ``redline
  find`` answers the same question with a number and an interval.
"""

from __future__ import annotations

from typing import Any

from ._spec import ClosedLoad, OpenLoad, Stage

__all__ = ["DEFAULT_DURATIONS", "TEST_TYPES", "shape_load"]

TEST_TYPES = ("smoke", "load", "stress", "soak", "spike", "breakpoint")
"""The test types ``--type`` shapes a load into (docs/find.md)."""
DEFAULT_DURATIONS = {
    "smoke": 60.0,
    "load": 600.0,
    "stress": 600.0,
    "soak": 7200.0,
    "spike": 300.0,
    "breakpoint": 600.0,
}
_SMOKE_RATE, _SMOKE_VUS = 2.0, 1


def shape_load(
    kind: str,
    load: OpenLoad | ClosedLoad,
    duration: float,
    *,
    multiple: float = 5.0,
    spike_for: float | None = None,
) -> tuple[OpenLoad | ClosedLoad, dict[str, Any]]:
    """The load of a ``kind`` test around ``load``'s rate or user count.

    Returns:
        the shaped load, and what the run's analysis needs to know of the shape
        (``type``, ``peak``, and for a spike ``at_s``, ``for_s``, ``multiple``).

    Raises:
        ValueError: an unknown kind, a load without one rate or user count, or a spike
            that does not fit in the duration.
    """
    if kind not in TEST_TYPES:
        raise ValueError(f"expected one of {', '.join(TEST_TYPES)}, got {kind!r}")
    peak = _peak(load)
    info: dict[str, Any] = {"type": kind, "peak": peak}
    if kind == "smoke":
        small = min(peak, _SMOKE_RATE if isinstance(load, OpenLoad) else _SMOKE_VUS)
        return _constant(load, small), info
    if kind == "soak":
        return _constant(load, peak), info
    if kind == "load":
        stages = [(0.1 * duration, peak), (0.8 * duration, peak), (0.1 * duration, 0.0)]
        return _staged(load, stages, start=0.0), info
    if kind == "stress":
        stages = []
        for share in (0.5, 1.0, 1.5, 2.0):
            ramp = 0.05 * duration / 4
            stages += [(ramp, share * peak), (duration / 4 - ramp, share * peak)]
        return _staged(load, stages, start=0.0), info
    if kind == "breakpoint":
        return _staged(load, [(duration, peak)], start=0.0), info
    length = spike_for if spike_for is not None else 0.1 * duration
    at = 0.4 * duration
    if not 0 < length <= duration - at:
        raise ValueError(
            f"a spike of {length:g}s does not fit after {at:g}s of a {duration:g}s run"
        )
    stages = [
        (at, peak),
        (0.0, multiple * peak),
        (length, multiple * peak),
        (0.0, peak),
        (duration - at - length, peak),
    ]
    info |= {"at_s": at, "for_s": length, "multiple": multiple}
    return _staged(load, stages, start=peak), info


def _peak(load: OpenLoad | ClosedLoad) -> float:
    if isinstance(load, OpenLoad):
        if load.rate is None:
            raise ValueError("a test type shapes the load from one rate: give load.rate")
        return load.rate
    if load.vus is None:
        raise ValueError("a test type shapes the load from one user count: give load.vus")
    return float(load.vus)


def _constant(load: OpenLoad | ClosedLoad, amount: float) -> OpenLoad | ClosedLoad:
    if isinstance(load, OpenLoad):
        return OpenLoad(rate=amount, arrivals=load.arrivals)
    return ClosedLoad(vus=max(1, round(amount)), think_min=load.think_min, think_max=load.think_max)


def _staged(
    load: OpenLoad | ClosedLoad, stages: list[tuple[float, float]], *, start: float
) -> OpenLoad | ClosedLoad:
    shaped = tuple(Stage(duration=d, target=t) for d, t in stages)
    if isinstance(load, OpenLoad):
        return OpenLoad(stages=shaped, start_rate=start, arrivals=load.arrivals)
    rounded = tuple(Stage(duration=s.duration, target=float(round(s.target))) for s in shaped)
    return ClosedLoad(
        stages=rounded,
        start_vus=round(start),
        think_min=load.think_min,
        think_max=load.think_max,
    )
