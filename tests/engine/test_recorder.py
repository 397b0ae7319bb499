from __future__ import annotations

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
