"""How often keys were seen, approximately, in little memory: TinyLFU's frequency sketch.

A count-min sketch of four rows of 4-bit counters (one byte each here, capped at 15):
a key's frequency is the smallest of its four counters, so it is never under-counted and
only over-counted by collisions. Every ``sample_size`` additions (ten times the cache's
capacity) all counters are halved, so the sketch forgets old popularity and follows the
workload as it changes (TinyLFU's "reset"); the halving is one ``bytes.translate`` per
row.
"""

from __future__ import annotations

__all__ = ["FrequencySketch"]

_HALF = bytes(i >> 1 for i in range(256))
_SEEDS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93)
_M64 = (1 << 64) - 1


class FrequencySketch:
    """A count-min sketch with aging, sized for a cache of ``capacity`` entries."""

    __slots__ = ("_rows", "_shift", "additions", "sample_size", "width")

    def __init__(self, capacity: int) -> None:
        """Four rows of the next power of two at or above ``capacity`` counters."""
        width = 16
        while width < capacity:
            width <<= 1
        self.width = width
        self._shift = 64 - (width.bit_length() - 1)
        self._rows = [bytearray(width) for _ in _SEEDS]
        self.sample_size = 10 * max(capacity, 1)
        self.additions = 0

    def _indexes(self, h: int) -> tuple[int, int, int, int]:
        shift = self._shift
        h &= _M64
        return (
            ((h * _SEEDS[0]) & _M64) >> shift,
            ((h * _SEEDS[1]) & _M64) >> shift,
            ((h * _SEEDS[2]) & _M64) >> shift,
            ((h * _SEEDS[3]) & _M64) >> shift,
        )

    def increment(self, h: int) -> None:
        """Count one more sighting of the key whose ``hash()`` is ``h``."""
        r0, r1, r2, r3 = self._rows
        i0, i1, i2, i3 = self._indexes(h)
        added = False
        if r0[i0] < 15:
            r0[i0] += 1
            added = True
        if r1[i1] < 15:
            r1[i1] += 1
            added = True
        if r2[i2] < 15:
            r2[i2] += 1
            added = True
        if r3[i3] < 15:
            r3[i3] += 1
            added = True
        if added:
            self.additions += 1
            if self.additions >= self.sample_size:
                self.age()

    def frequency(self, h: int) -> int:
        """The estimated sightings of the key whose ``hash()`` is ``h`` (at most 15)."""
        r0, r1, r2, r3 = self._rows
        i0, i1, i2, i3 = self._indexes(h)
        return min(r0[i0], r1[i1], r2[i2], r3[i3])

    def age(self) -> None:
        """Halve every counter (and the count of additions)."""
        self._rows = [bytearray(row.translate(_HALF)) for row in self._rows]
        self.additions //= 2
