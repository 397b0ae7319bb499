"""An HDR-style log-linear latency histogram with exact merging.

The bucket layout is HdrHistogram's for values from 1 us to 1 h at 3 significant
digits, so the standard V2 compressed encoding written here is read by every
HdrHistogram implementation (Java, C, Go, Python's ``hdrhistogram``).
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["COUNTS_LEN", "HIGHEST_US", "Histogram", "bucket_indices", "bucket_values"]

HIGHEST_US = 3_600_000_000
"""The highest value the histogram tracks, in microseconds (one hour)."""
LOWEST_US = 1
SIGNIFICANT_FIGURES = 3

# HdrHistogram's layout arithmetic for (lowest=1, highest=1h, 3 digits): 2048 sub-buckets
# per bucket (the smallest power of two >= 2 * 10**3), of which the upper half is used in
# every bucket but the first.
_SUB_BUCKET_COUNT = 2048
_HALF_MAGNITUDE = 10
_HALF_COUNT = 1 << _HALF_MAGNITUDE
_SUB_BUCKET_BITS = 11


def _bucket_count() -> int:
    smallest_untrackable = _SUB_BUCKET_COUNT
    buckets = 1
    while smallest_untrackable <= HIGHEST_US:
        smallest_untrackable <<= 1
        buckets += 1
    return buckets


COUNTS_LEN = (_bucket_count() + 1) * _HALF_COUNT
"""Length of the dense counts array (23,552 for this layout)."""

_V2_ENCODING_COOKIE = 0x1C849303 | 0x10
_V2_COMPRESSED_COOKIE = 0x1C849304 | 0x10
_HEADER = struct.Struct(">iiiiqqd")
_COMPRESSED_HEADER = struct.Struct(">ii")

IntArray = npt.NDArray[np.int64]


def bucket_indices(values_us: npt.ArrayLike) -> IntArray:
    """Map integer microsecond values to indices in the dense counts array (vectorised).

    Values below 0 count as 0 and values above one hour as one hour, so every sample
    lands somewhere and totals stay exact.
    """
    v = np.clip(np.asarray(values_us, dtype=np.int64), 0, HIGHEST_US)
    if v.size and v.max() < _SUB_BUCKET_COUNT:
        return v  # the first bucket: a value below 2048 us is its own index
    # frexp gives the bit length exactly for integers below 2**53.
    _, bit_length = np.frexp((v | (_SUB_BUCKET_COUNT - 1)).astype(np.float64))
    bucket = bit_length.astype(np.int64) - _SUB_BUCKET_BITS
    sub_bucket = v >> bucket
    return ((bucket + 1) << _HALF_MAGNITUDE) + sub_bucket - _HALF_COUNT


def _index_bounds(indices: IntArray) -> tuple[IntArray, IntArray]:
    """Return (lowest equivalent value, bucket width) for each counts index."""
    bucket = (indices >> _HALF_MAGNITUDE) - 1
    sub_bucket = (indices & (_HALF_COUNT - 1)) + _HALF_COUNT
    first = bucket < 0
    sub_bucket = np.where(first, sub_bucket - _HALF_COUNT, sub_bucket)
    bucket = np.where(first, 0, bucket)
    return sub_bucket << bucket, np.left_shift(1, bucket)


_ALL_LOW, _ALL_WIDTH = _index_bounds(np.arange(COUNTS_LEN, dtype=np.int64))
_ALL_HIGH = _ALL_LOW + _ALL_WIDTH - 1
_ALL_MID = _ALL_LOW + (_ALL_WIDTH >> 1)


def bucket_values(indices: npt.ArrayLike) -> IntArray:
    """The value (us) reported for a percentile that falls in each counts index.

    That is the index's highest equivalent value, as HdrHistogram and
    :meth:`Histogram.values_at_percentiles` report it.
    """
    return _ALL_HIGH[np.asarray(indices, dtype=np.int64)]


class Histogram:
    """Counts of microsecond latencies in HdrHistogram buckets.

    Merging adds counts bucket by bucket, so percentiles of a merged histogram are exactly
    those of one histogram that saw every sample. A histogram is either *dense* (an
    accumulator being recorded into) or *sparse* (only non-empty buckets, as kept in
    results and sent between processes); every reading works on either, and recording
    into a sparse one makes it dense. Histograms inside results are treated as read-only.
    """

    __slots__ = ("_counts", "_sparse")

    def __init__(self, counts: IntArray | None = None) -> None:
        """Create an empty histogram, or one over a dense ``counts`` array (not copied)."""
        if counts is not None and counts.shape != (COUNTS_LEN,):
            raise ValueError(f"expected {COUNTS_LEN} counts, got shape {counts.shape}")
        self._counts: IntArray | None = counts
        self._sparse: tuple[IntArray, IntArray] | None = None
        if counts is None:
            empty = np.zeros(0, dtype=np.int64)
            self._sparse = (empty, empty)

    def _dense(self) -> IntArray:
        if self._counts is None:
            counts = np.zeros(COUNTS_LEN, dtype=np.int64)
            assert self._sparse is not None
            indices, values = self._sparse
            counts[indices] = values
            self._counts = counts
        self._sparse = None
        return self._counts

    def _pairs(self) -> tuple[IntArray, IntArray]:
        """``(indices, counts)`` of the non-empty buckets, in index order."""
        if self._sparse is None:
            assert self._counts is not None
            indices = np.flatnonzero(self._counts).astype(np.int64)
            return indices, self._counts[indices]
        return self._sparse

    # -- recording ---------------------------------------------------------------------
    def record(self, value_us: int, count: int = 1) -> None:
        """Record one value (in microseconds) ``count`` times."""
        self._dense()[int(bucket_indices(np.int64(value_us)))] += count

    def record_values(self, values_us: npt.ArrayLike) -> None:
        """Record many values at once (bulk bucketing, no Python object per value)."""
        indices = bucket_indices(values_us)
        if indices.size:
            self._dense()[:] += np.bincount(indices, minlength=COUNTS_LEN)

    def merge(self, other: Histogram) -> Histogram:
        """Add every count of ``other`` to this histogram and return ``self``."""
        indices, values = other._pairs()
        if indices.size:
            self._dense()[indices] += values  # indices are unique, so this adds exactly
        return self

    def reset(self) -> None:
        """Forget every recorded value."""
        self._dense().fill(0)

    def copy(self) -> Histogram:
        """Return an independent copy (sparse)."""
        indices, values = self._pairs()
        return Histogram._of_pairs(indices.copy(), values.copy())

    def compact(self) -> Histogram:
        """Switch to the sparse form to save memory; return ``self``."""
        if self._sparse is None:
            indices, values = self._pairs()
            self._sparse = (indices, values.copy())
            self._counts = None
        return self

    @classmethod
    def _of_pairs(cls, indices: IntArray, values: IntArray) -> Histogram:
        histogram = cls.__new__(cls)
        histogram._counts = None
        histogram._sparse = (indices, values)
        return histogram

    @classmethod
    def merged(cls, histograms: Iterable[Histogram]) -> Histogram:
        """Return a new (sparse) histogram holding the sum of ``histograms``.

        Sums the non-empty buckets only (sorted, then added run by run), so merging the
        few dozen buckets of short intervals never touches a dense array.
        """
        pairs = [p for p in (h._pairs() for h in histograms) if p[0].size]
        if not pairs:
            return cls()
        if len(pairs) == 1:
            return cls._of_pairs(pairs[0][0].copy(), pairs[0][1].copy())
        indices = np.concatenate([p[0] for p in pairs])
        values = np.concatenate([p[1] for p in pairs])
        order = np.argsort(indices, kind="stable")
        indices, values = indices[order], values[order]
        starts = np.flatnonzero(np.r_[True, indices[1:] != indices[:-1]])
        return cls._of_pairs(indices[starts], np.add.reduceat(values, starts))

    def __reduce__(self) -> tuple[object, ...]:
        indices, values = self._pairs()
        return (Histogram.from_sparse, (indices, values))

    # -- reading -----------------------------------------------------------------------
    @property
    def counts(self) -> IntArray:
        """The dense counts array (a read-only copy-free view when dense)."""
        if self._counts is not None:
            view = self._counts.view()
        else:
            view = Histogram(None).merge(self)._dense().view()
        view.flags.writeable = False
        return view

    @property
    def total_count(self) -> int:
        """How many values were recorded."""
        return int(self._pairs()[1].sum())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        mine, theirs = self._pairs(), other._pairs()
        return bool(np.array_equal(mine[0], theirs[0]) and np.array_equal(mine[1], theirs[1]))

    __hash__ = None  # type: ignore[assignment]  # mutable, like list

    def __repr__(self) -> str:
        return f"Histogram(total_count={self.total_count})"

    def value_at_percentile(self, percentile: float) -> int:
        """Return the value at ``percentile`` (0-100) in microseconds; 0 when empty.

        Follows HdrHistogram: the highest value equivalent to the bucket in which the
        cumulative count reaches ``percentile`` of the total.
        """
        return self.values_at_percentiles([percentile])[0]

    def values_at_percentiles(self, percentiles: Sequence[float]) -> list[int]:
        """Return the values at several percentiles at once, in microseconds."""
        indices, values = self._pairs()
        cumulative = np.cumsum(values)
        total = int(cumulative[-1]) if cumulative.size else 0
        out = []
        for percentile in percentiles:
            if not 0 <= percentile <= 100:
                raise ValueError(f"percentile must be within 0..100, got {percentile}")
            if total == 0:
                out.append(0)
                continue
            wanted = max(int(percentile * total / 100 + 0.5), 1)
            index = int(indices[int(np.searchsorted(cumulative, wanted, side="left"))])
            out.append(int(_ALL_HIGH[index] if percentile else _ALL_LOW[index]))
        return out

    def count_at_or_below(self, value_us: int) -> int:
        """How many recorded values are certainly at most ``value_us``.

        A bucket that straddles ``value_us`` counts as above it, so the count errs low
        by at most one bucket's width (0.1% of the value).
        """
        indices, values = self._pairs()
        return int(values[_ALL_HIGH[indices] <= value_us].sum())

    @property
    def min(self) -> int:
        """The lowest recorded value (lowest equivalent), 0 when empty."""
        indices = self._pairs()[0]
        return int(_ALL_LOW[indices[0]]) if indices.size else 0

    @property
    def max(self) -> int:
        """The highest recorded value (highest equivalent), 0 when empty."""
        indices = self._pairs()[0]
        return int(_ALL_HIGH[indices[-1]]) if indices.size else 0

    @property
    def mean(self) -> float:
        """The mean, taking each value as the middle of its bucket; 0 when empty."""
        indices, values = self._pairs()
        total = int(values.sum())
        if total == 0:
            return 0.0
        return float(np.dot(values, _ALL_MID[indices])) / total

    @property
    def stddev(self) -> float:
        """The standard deviation around :attr:`mean`; 0 when empty."""
        indices, values = self._pairs()
        total = int(values.sum())
        if total == 0:
            return 0.0
        deviation = _ALL_MID[indices] - self.mean
        return math.sqrt(float(np.dot(values, deviation * deviation)) / total)

    # -- sparse form (cheap to ship between processes) ---------------------------------
    def to_sparse(self) -> tuple[IntArray, IntArray]:
        """Return ``(indices, counts)`` of the non-empty buckets (copies)."""
        indices, values = self._pairs()
        return indices.copy(), values.copy()

    @classmethod
    def from_sparse(cls, indices: npt.ArrayLike, counts: npt.ArrayLike) -> Histogram:
        """Build a histogram from :meth:`to_sparse` output (indices may repeat)."""
        dense = np.zeros(COUNTS_LEN, dtype=np.int64)
        np.add.at(dense, np.asarray(indices, dtype=np.int64), np.asarray(counts, dtype=np.int64))
        return cls(dense).compact()

    # -- HdrHistogram V2 compressed encoding -------------------------------------------
    def encode(self) -> str:
        """Encode in HdrHistogram's V2 compressed format, base64 text ("HISTFAA...")."""
        indices, values = self._pairs()
        payload = _encode_payload(indices, values)
        header = _HEADER.pack(
            _V2_ENCODING_COOKIE,
            len(payload),
            0,
            SIGNIFICANT_FIGURES,
            LOWEST_US,
            HIGHEST_US,
            1.0,
        )
        compressed = zlib.compress(header + payload)
        framed = _COMPRESSED_HEADER.pack(_V2_COMPRESSED_COOKIE, len(compressed)) + compressed
        return base64.b64encode(framed).decode("ascii")

    @classmethod
    def decode(cls, text: str | bytes) -> Histogram:
        """Decode :meth:`encode` output (or any V2 histogram of the same layout).

        Raises:
            ValueError: when ``text`` is not a V2 compressed histogram of this layout.
        """
        try:
            framed = base64.b64decode(text, validate=True)
            cookie, length = _COMPRESSED_HEADER.unpack_from(framed)
            if cookie & ~0xF0 != _V2_COMPRESSED_COOKIE & ~0xF0:
                raise ValueError(f"not a V2 compressed histogram (cookie {cookie:#x})")
            raw = zlib.decompress(
                framed[_COMPRESSED_HEADER.size : _COMPRESSED_HEADER.size + length]
            )
            cookie, payload_len, offset, digits, lowest, highest, _ = _HEADER.unpack_from(raw)
        except (struct.error, zlib.error, ValueError) as exc:
            raise ValueError(f"cannot decode histogram: {exc}") from exc
        if cookie & ~0xF0 != _V2_ENCODING_COOKIE & ~0xF0:
            raise ValueError(f"not a V2 histogram payload (cookie {cookie:#x})")
        if (digits, lowest, highest, offset) != (SIGNIFICANT_FIGURES, LOWEST_US, HIGHEST_US, 0):
            raise ValueError(
                f"histogram layout ({lowest}..{highest}, {digits} digits) differs from "
                f"redline's ({LOWEST_US}..{HIGHEST_US}, {SIGNIFICANT_FIGURES} digits)"
            )
        indices, values = _decode_payload(raw[_HEADER.size : _HEADER.size + payload_len])
        return cls._of_pairs(indices, values)


# -- the V2 payload: zigzag LEB128 varints, a negative value skipping that many buckets --
# Vectorised with numpy (a run's store holds thousands of histograms). Decoding falls
# back to a scalar loop for the rare 9-byte varint (a count of 2**55 or more) and for
# malformed payloads, whose errors it explains.


def _encode_payload(indices: IntArray, values: IntArray) -> bytes:
    keep = values != 0
    indices, values = indices[keep], values[keep]
    if not indices.size:
        return b""
    gaps = indices - np.concatenate(([0], indices[:-1] + 1))
    has_gap = gaps > 0
    positions = np.arange(indices.size) + np.cumsum(has_gap)
    items = np.empty(indices.size + int(has_gap.sum()), dtype=np.int64)
    items[positions] = values
    # A gap of one bucket is written as an explicit zero count, as HdrHistogram does.
    items[positions[has_gap] - 1] = np.where(gaps[has_gap] == 1, 0, -gaps[has_gap])
    encoded = (items.astype(np.uint64) << np.uint64(1)) ^ (items >> 63).astype(np.uint64)
    lengths = np.ones(encoded.size, dtype=np.int64)
    for k in range(1, 9):
        longer = encoded >= np.uint64(1 << (7 * k))
        if not longer.any():
            break
        lengths += longer
    width = int(lengths.max())
    rows = np.zeros((encoded.size, width), dtype=np.uint8)
    for k in range(min(width, 8)):
        more = np.where(lengths > k + 1, 0x80, 0).astype(np.uint8)
        rows[:, k] = ((encoded >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8) | more
    if width == 9:  # the ninth byte carries a full 8 bits
        rows[:, 8] = ((encoded >> np.uint64(56)) & np.uint64(0xFF)).astype(np.uint8)
    return rows[np.arange(width) < lengths[:, None]].tobytes()


def _decode_payload(data: bytes) -> tuple[IntArray, IntArray]:
    raw = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(raw < 0x80)
    if not raw.size:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    starts = np.concatenate(([0], ends[:-1] + 1)) if ends.size else ends
    lengths = ends - starts + 1
    if not ends.size or ends[-1] != raw.size - 1 or lengths.max() > 8:
        return _decode_payload_scalar(data)  # a 9-byte varint, or a malformed payload
    shifts = (np.arange(raw.size) - np.repeat(starts, lengths)) * 7
    parts = (raw & 0x7F).astype(np.uint64) << shifts.astype(np.uint64)
    encoded = np.add.reduceat(parts, starts)  # the 7-bit groups never overlap: exact
    items = (encoded >> np.uint64(1)).astype(np.int64) ^ -(encoded & np.uint64(1)).astype(np.int64)
    steps = np.where(items < 0, -items, 1)
    at = np.cumsum(steps) - steps
    counted = items >= 0
    if counted.any() and at[counted][-1] >= COUNTS_LEN:
        raise ValueError("histogram payload runs past the counts array")
    nonzero = items > 0
    return at[nonzero].astype(np.int64), items[nonzero]


def _decode_payload_scalar(data: bytes) -> tuple[IntArray, IntArray]:
    counts = np.zeros(COUNTS_LEN, dtype=np.int64)
    position = 0
    index = 0
    while position < len(data):
        value, position = _get_zigzag(data, position)
        if value < 0:
            index += -value
            continue
        if index >= COUNTS_LEN:
            raise ValueError("histogram payload runs past the counts array")
        counts[index] = value
        index += 1
    indices = np.flatnonzero(counts).astype(np.int64)
    return indices, counts[indices]


def _get_zigzag(data: bytes, position: int) -> tuple[int, int]:
    encoded = 0
    shift = 0
    for _ in range(8):
        if position >= len(data):
            raise ValueError("truncated histogram payload")
        byte = data[position]
        position += 1
        encoded |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (encoded >> 1) ^ -(encoded & 1), position
        shift += 7
    if position >= len(data):
        raise ValueError("truncated histogram payload")
    encoded |= data[position] << 56
    return (encoded >> 1) ^ -(encoded & 1), position + 1
