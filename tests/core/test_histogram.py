from __future__ import annotations

import pickle

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given
from hypothesis import strategies as st

from redline.core import HIGHEST_US, Histogram

values = st.lists(st.integers(min_value=0, max_value=HIGHEST_US), min_size=0, max_size=300)
percentiles = [0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 100.0]


def reference(samples: list[int]) -> HdrHistogram:
    ref = HdrHistogram(1, HIGHEST_US, 3)
    for v in samples:
        ref.record_value(v)
    return ref


@given(values)
def test_percentiles_match_the_reference_hdrhistogram(samples: list[int]) -> None:
    mine = Histogram()
    mine.record_values(np.array(samples, dtype=np.int64))
    ref = reference(samples)
    assert mine.total_count == ref.get_total_count()
    for p in percentiles:
        expected = ref.get_value_at_percentile(p) if samples else 0
        assert mine.value_at_percentile(p) == expected, p
    if samples:
        assert mine.max == ref.get_max_value()
        assert mine.min == ref.get_min_value()


@given(st.lists(values, min_size=1, max_size=5))
def test_merging_parts_equals_recording_the_whole(parts: list[list[int]]) -> None:
    merged = Histogram.merged(Histogram().merge(_of(p)) for p in parts)
    whole = _of([v for p in parts for v in p])
    assert merged == whole
    assert merged.total_count == sum(len(p) for p in parts)
    for p in percentiles:
        assert merged.value_at_percentile(p) == whole.value_at_percentile(p)


@given(values)
def test_encoding_round_trips_and_is_read_by_hdrhistogram(samples: list[int]) -> None:
    mine = _of(samples)
    text = mine.encode()
    assert Histogram.decode(text) == mine
    decoded = HdrHistogram.decode(text)
    assert decoded.get_total_count() == len(samples)
    for p in (50.0, 99.0, 100.0):
        assert decoded.get_value_at_percentile(p) == mine.value_at_percentile(p)


@given(values)
def test_reads_histograms_encoded_by_hdrhistogram(samples: list[int]) -> None:
    assert Histogram.decode(reference(samples).encode()) == _of(samples)


@given(values)
def test_sparse_and_dense_forms_agree(samples: list[int]) -> None:
    dense = _of(samples)
    sparse = dense.copy()
    assert sparse == dense
    assert sparse.mean == pytest.approx(dense.mean)
    assert sparse.stddev == pytest.approx(dense.stddev)
    assert pickle.loads(pickle.dumps(dense)) == dense
    indices, counts = dense.to_sparse()
    assert Histogram.from_sparse(indices, counts) == dense
    assert np.array_equal(sparse.counts, dense.counts)


def test_out_of_range_values_are_clamped_not_lost() -> None:
    h = Histogram()
    h.record_values(np.array([-5, HIGHEST_US * 10]))
    assert h.total_count == 2
    assert h.min == 0
    assert h.max >= HIGHEST_US


def test_recording_into_a_compacted_histogram_keeps_its_counts() -> None:
    h = _of([10, 20, 30]).compact()
    h.record(40)
    assert h.total_count == 4
    assert h.value_at_percentile(100) == 40


def test_empty_histogram_reads_as_zero() -> None:
    h = Histogram()
    assert h.total_count == 0
    assert h.value_at_percentile(99) == 0
    assert (h.min, h.max, h.mean, h.stddev) == (0, 0, 0.0, 0.0)


@pytest.mark.parametrize("bad", ["not base64!", "SGVsbG8=", ""])
def test_decode_rejects_garbage_with_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="histogram"):
        Histogram.decode(bad)


def test_decode_rejects_a_different_layout() -> None:
    other = HdrHistogram(1, 1000, 2)
    other.record_value(5)
    with pytest.raises(ValueError, match="layout"):
        Histogram.decode(other.encode())


def test_percentile_outside_range_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        _of([1]).value_at_percentile(101)


def _of(samples: list[int]) -> Histogram:
    h = Histogram()
    h.record_values(np.array(samples, dtype=np.int64))
    return h


@pytest.mark.parametrize("count", [1, 127, 128, 2**35, 2**55, 2**62])
def test_counts_of_every_varint_length_round_trip(count: int) -> None:
    hist = Histogram()
    hist.record(1, count)
    hist.record(999_999, 3)
    back = Histogram.decode(hist.encode())
    assert back.to_sparse()[1].tolist() == [count, 3]
    assert back.encode() == hist.encode()
    reference = HdrHistogram(1, HIGHEST_US, 3)
    reference.record_value(1, count)
    reference.record_value(999_999, 3)
    assert Histogram.decode(reference.encode()).to_sparse()[1].tolist() == [count, 3]
