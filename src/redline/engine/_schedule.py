"""Open-model arrival schedules: when each request is *intended* to start.

The global schedule numbers arrivals k = 0, 1, 2, ... and places arrival k where the
cumulative intended rate reaches u_k: u_k = k for evenly spaced arrivals, or the
running sum of Exp(1) draws for Poisson arrivals (one seeded stream shared by every
worker, so the union of the workers' arrivals is exactly one Poisson process).
Each worker keeps the arrivals its segment owns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from redline.plan import OpenLoad

from ._segments import Segment

__all__ = ["ArrivalSchedule"]

_CHUNK = 2048  # arrivals generated at a time: small enough to be a short pause


class ArrivalSchedule:
    """Intended start offsets (ns from the run's start) of one worker's arrivals."""

    def __init__(
        self,
        load: OpenLoad,
        *,
        total: float,
        segment: Segment,
        block: int | None = None,
        seed: int | None = None,
    ) -> None:
        """Plan arrivals for ``total`` seconds of ``load`` owned by ``segment``.

        ``block`` is the block length common to all segments of the run (default: the
        segment's own, which is right when the segments are an equal split).
        """
        self._total = total
        self._block = block or segment.denominator
        owned = segment.positions(self._block)
        self._owned = np.asarray(owned, dtype=np.int64)
        self._poisson = load.arrivals == "poisson"
        self._rng = np.random.default_rng(seed)
        self._next_k = 0
        self._next_u = 0.0
        self._done = False
        # The rate curve as pieces (start time, duration, start rate, end rate, cumulative
        # arrivals at piece start); a last, open-ended piece holds the final rate.
        pieces: list[tuple[float, float, float, float, float]] = []
        if load.rate is not None:
            pieces.append((0.0, float("inf"), load.rate, load.rate, 0.0))
        else:
            t, rate, cumulative = 0.0, load.start_rate, 0.0
            for stage in load.stages:
                if stage.duration <= 0:  # a jump (a scenario's start or end): no piece
                    rate = stage.target
                    continue
                pieces.append((t, stage.duration, rate, stage.target, cumulative))
                cumulative += (rate + stage.target) / 2 * stage.duration
                t += stage.duration
                rate = stage.target
            pieces.append((t, float("inf"), rate, rate, cumulative))
        self._pieces = pieces
        self._starts = np.array([p[4] for p in pieces])

    @property
    def exhausted(self) -> bool:
        """True once every arrival before ``total`` has been handed out."""
        return self._done

    def next_batch(self) -> list[int]:
        """Return the next batch of owned intended offsets in ns (ascending; may be empty).

        Returns an empty list once the schedule is exhausted.
        """
        while not self._done:
            u = self._targets(_CHUNK)
            times = self._invert(u)
            k = np.arange(self._next_k - _CHUNK, self._next_k, dtype=np.int64)
            inside = times < self._total
            if not inside[-1]:  # times ascend: once one is past the end, all later ones are
                self._done = True
            mine = inside & np.isin(k % self._block, self._owned)
            if mine.any():
                offsets: list[int] = (times[mine] * 1e9).astype(np.int64).tolist()
                return offsets
        return []

    def _targets(self, count: int) -> npt.NDArray[np.float64]:
        u: npt.NDArray[np.float64]
        if self._poisson:
            gaps = self._rng.exponential(1.0, count)
            u = self._next_u + np.cumsum(gaps) - gaps[0]
            self._next_u = float(u[-1] + self._rng.exponential(1.0))
        else:
            u = np.arange(self._next_k, self._next_k + count, dtype=np.float64)
        self._next_k += count
        return u

    def _invert(self, u: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Times at which the cumulative intended arrivals reach ``u`` (inf: never)."""
        piece = np.searchsorted(self._starts, u, side="right") - 1
        out = np.full(u.shape, np.inf)
        for i, (t0, duration, r0, r1, cumulative) in enumerate(self._pieces):
            sel = piece == i
            if not sel.any():
                continue
            du = u[sel] - cumulative
            if r0 == r1:
                if r0 <= 0:
                    continue
                offset = du / r0
            else:
                slope = (r1 - r0) / duration
                root = np.sqrt(np.maximum(r0 * r0 + 2 * slope * du, 0.0))
                with np.errstate(divide="ignore", invalid="ignore"):
                    offset = np.where(r0 + root > 0, 2 * du / (r0 + root), np.inf)
                offset = np.where(du <= 0, 0.0, offset)  # 0/0 at the start of a ramp from 0
            offset = np.where(offset <= duration, offset, np.inf)
            out[sel] = t0 + offset
        return out
