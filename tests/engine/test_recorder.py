from __future__ import annotations

import pytest

from redline.engine._recorder import Recorder
from redline.engine._requests import weighted_cycle


def test_recorder_buckets_in_bulk_and_resets_each_interval() -> None:
    recorder = Recorder(["a", "b"], capacity=4)  # small, so the buffer fills and spills
    for i in range(10):
        recorder.record(i % 2, 2_000_000 + i, 1_000_000, 200 if i < 8 else 500, 100, done_ns=i)
    recorder.record_error(1, "reset", done_ns=10)
    recorder.record_sent(0, 40)
    first = recorder.take(boundary_ns=100)
    assert first["a"].requests == 5
    assert first["a"].status == {200: 4, 500: 1}
    assert first["a"].errors == 1
    assert first["a"].bytes_in == 500
    assert first["a"].bytes_out == 40
    assert first["b"].requests == 6
    assert first["b"].error_classes == {"reset": 1}
    assert first["b"].latency.total_count == 5  # a transport failure has no latency
    assert first["a"].latency.value_at_percentile(100) == 2000  # 2 ms from intended start
    assert first["a"].latency_actual.value_at_percentile(100) == 1000
    assert recorder.take(boundary_ns=200) == {}


def test_samples_after_the_boundary_wait_for_the_next_interval() -> None:
    recorder = Recorder(["a"])
    for done in (10, 20, 30, 40):
        recorder.record(0, 1000, 1000, 200, 1, done_ns=done)
    recorder.record_error(0, "reset", done_ns=35)
    first = recorder.take(boundary_ns=25)
    assert first["a"].requests == 2
    second = recorder.take(boundary_ns=50)
    assert second["a"].requests == 3
    assert second["a"].error_classes == {"reset": 1}


def test_out_of_order_completions_are_split_exactly() -> None:
    recorder = Recorder(["a"])
    for done in (30, 10, 40, 20):
        recorder.record(0, done * 1000, 0, 200, 1, done_ns=done)
    first = recorder.take(boundary_ns=25)
    assert first["a"].requests == 2
    assert first["a"].latency.max < 25
    assert recorder.take()["a"].latency.min >= 30


def test_weighted_cycle_is_exact_and_spread() -> None:
    order = weighted_cycle([6, 3, 3])
    assert len(order) == 4
    assert order.count(0) == 2
    assert order[0] != order[1]  # smooth: the heavy one does not come in a clump
    assert weighted_cycle([5]) == [0]


class _Stamps:
    """A connection's stamps for one request, as :class:`Timed` reads them."""

    def __init__(self, setup: tuple[int, int, int], sent: int, written: int, first: int) -> None:
        self.setup = setup
        self.sent_ns = sent
        self.written_ns = written
        self.first_ns = first
        self.done_once = 0

    def first_exchange_done(self) -> None:
        self.setup = (0, 0, 0)
        self.done_once += 1


def test_phases_are_bucketed_per_endpoint_and_kept_across_a_spill() -> None:
    recorder = Recorder(["a", "b"], capacity=3)  # spills while recording
    new = _Stamps((2_000_000, 1_000_000, 5_000_000), sent=0, written=10_000, first=30_010_000)
    recorder.record(0, 40_000_000, 31_010_000, 200, 10, 31_010_000, new)  # sent at 0
    for done in range(1, 6):
        reused = _Stamps((0, 0, 0), sent=0, written=10_000, first=30_010_000)
        recorder.record(0, 40_000_000, 31_010_000 + done, 200, 10, 31_010_000 + done, reused)
    recorder.record(1, 5_000_000, 5_000_000, 200, 10, 31_020_000)  # not an HTTP exchange
    recorder.record_error(0, "reset", 31_030_000)  # a failure has no phases
    taken = recorder.take()
    phases = taken["a"].phases
    assert list(phases) == ["dns", "connect", "tls", "send", "wait", "receive"]
    assert all(h.total_count == 6 for h in phases.values())
    # set-up phases only on the request that opened the connection
    assert phases["tls"].total_count - phases["tls"].count_at_or_below(0) == 1
    assert phases["tls"].max == pytest.approx(5000, rel=0.001)
    assert phases["dns"].max == pytest.approx(2000, rel=0.001)
    assert phases["connect"].max == pytest.approx(1000, rel=0.001)
    assert phases["send"].max == 10
    assert phases["wait"].value_at_percentile(50) == pytest.approx(30_000, rel=0.001)
    assert phases["receive"].min == pytest.approx(1000, rel=0.001)
    assert taken["b"].phases == {}
    assert new.done_once == 1  # told once: the next request reuses the connection
    assert new.first_ns == -1  # read: until the next timed request, nothing is stamped


def test_untimed_exchanges_leave_no_phases_even_in_reused_buffer_rows() -> None:
    recorder = Recorder(["a"], capacity=4)
    untimed = _Stamps((0, 0, 0), sent=0, written=0, first=-1)  # a request not sampled
    for done in range(1, 4):
        timed = _Stamps((0, 0, 0), sent=0, written=1000, first=2_000_000)
        recorder.record(0, 3_000_000, 3_000_000, 200, 1, 3_000_000 + done, timed)
    first = recorder.take()["a"].phases
    assert first["wait"].total_count == 3
    for done in range(1, 4):  # the same buffer rows again, untimed this time
        recorder.record(0, 3_000_000, 3_000_000, 200, 1, 4_000_000 + done, untimed)
    assert recorder.take()["a"].phases == {}
