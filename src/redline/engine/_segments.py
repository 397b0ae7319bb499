"""Exact rational shares of the load, one per worker (like k6's execution segments).

The whole load is the interval [0, 1). A worker owns a segment [start, end). Arrivals
are numbered globally; in every block of ``denominator`` consecutive arrivals, a
segment owns the positions ``start * D .. end * D - 1``. So the workers' arrivals are,
together, exactly the global schedule: nothing is lost or doubled by rounding.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Segment", "block_of", "split", "split_weighted"]


@dataclass(frozen=True, slots=True)
class Segment:
    """The share ``[start, end)`` of the whole load owned by one worker."""

    start: Fraction
    end: Fraction

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= 1:
            raise ValueError(
                f"a segment needs 0 <= start < end <= 1, got [{self.start}, {self.end})"
            )

    @property
    def share(self) -> Fraction:
        """The fraction of the load this segment owns."""
        return self.end - self.start

    @property
    def denominator(self) -> int:
        """The smallest block length over which this segment's ownership repeats."""
        return math.lcm(self.start.denominator, self.end.denominator)

    def positions(self, block: int) -> tuple[int, ...]:
        """The positions this segment owns in each ``block`` of consecutive arrivals.

        ``block`` must be common to every segment of the sequence (see :func:`block_of`),
        or two segments could own the same arrival. Arrival ``k`` is ours when
        ``k % block`` is among the positions returned.
        """
        if block % self.denominator:
            raise ValueError(f"block {block} is not a multiple of {self.denominator}")
        return tuple(range(int(self.start * block), int(self.end * block)))

    def scale(self, count: int) -> int:
        """Return this segment's whole-number share of ``count`` (VUs, for example).

        ``floor(count * end) - floor(count * start)``: the shares of segments that
        partition [0, 1) add up to exactly ``count``.
        """
        return math.floor(count * self.end) - math.floor(count * self.start)


def block_of(segments: Sequence[Segment]) -> int:
    """The block length common to ``segments`` (the lcm of their denominators)."""
    return math.lcm(*(s.denominator for s in segments))


def split(workers: int) -> list[Segment]:
    """Split the load into ``workers`` equal segments."""
    if workers < 1:
        raise ValueError(f"need at least one worker, got {workers}")
    bounds = [Fraction(i, workers) for i in range(workers + 1)]
    return [Segment(a, b) for a, b in itertools.pairwise(bounds)]


def split_weighted(weights: Sequence[int]) -> list[Segment]:
    """Split the load into one segment per weight, each the weight's share of the total.

    A cluster host that declares twice the capacity gets twice the share; the segments
    still partition [0, 1) exactly.

    Raises:
        ValueError: no weights, or one that is not positive.
    """
    if not weights or any(w < 1 for w in weights):
        raise ValueError(f"need positive whole-number weights, got {list(weights)}")
    total = sum(weights)
    bounds = [Fraction(0), *(Fraction(s, total) for s in itertools.accumulate(weights))]
    return [Segment(a, b) for a, b in itertools.pairwise(bounds)]
