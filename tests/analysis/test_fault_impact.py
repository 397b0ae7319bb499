"""Time to detect, time to recover and budget spent, on runs with known faults."""

from __future__ import annotations

import numpy as np

from redline.analysis import fault_impacts
from redline.core import (
    EndpointInterval,
    GeneratorInterval,
    Histogram,
    IntervalSnapshot,
    RunResult,
    parse_objective,
)


def run_with(errors: list[int], faults: list[dict[str, object]], rate: int = 100) -> RunResult:
    intervals = []
    for index, failed in enumerate(errors):
        latency = Histogram()
        latency.record_values(np.full(rate, 2000))
        data = EndpointInterval(requests=rate, errors=failed, latency=latency)
        intervals.append(
            IntervalSnapshot(
                index=index, start_s=float(index), duration_s=1.0, endpoints={"home": data},
                generator=GeneratorInterval(scheduled=rate, sent=rate),
            )
        )  # fmt: skip
    plan = {"name": "faulty", "faults": faults}
    return RunResult(id="r", plan=plan, started_at="", intervals=tuple(intervals))


OUTAGE = {"name": "outage", "type": "down", "proxy": "svc", "at_s": 3.0, "for_s": 3.0}


def test_an_outage_is_detected_in_its_first_interval_and_recovery_counted_from_its_end() -> None:
    # errors from 3 s to 7 s: the service needed a second after the fault ended
    errors = [0, 0, 0, 100, 100, 100, 60, 0, 0, 0, 0]
    (impact,) = fault_impacts(run_with(errors, [OUTAGE]), [parse_objective("error_rate < 1%")])
    assert impact.detected_after_s == 1.0
    assert impact.recovered_after_s == 1.0
    # 300 bad requests in the window; the budget is 1% of 1,100
    assert impact.budget_consumed["error_rate < 1%"] == 300 / (0.01 * 1100)
    assert "detected after 1 s" in impact.reason
    assert "recovered 1 s after it ended" in impact.reason


def test_a_fault_nobody_noticed_is_said_so() -> None:
    (impact,) = fault_impacts(run_with([0] * 10, [OUTAGE]), [parse_objective("error_rate < 1%")])
    assert impact.detected_after_s is None
    assert impact.recovered_after_s == 0.0
    assert impact.budget_consumed["error_rate < 1%"] == 0.0
    assert "no objective breached" in impact.reason


def test_no_recovery_before_the_end_is_not_a_recovery() -> None:
    errors = [0, 0, 0, 100, 100, 100, 50, 50, 0, 0]
    (impact,) = fault_impacts(run_with(errors, [OUTAGE]), [parse_objective("error_rate < 1%")])
    assert impact.recovered_after_s is None  # only two calm intervals were left
    assert "not recovered by the end of the run" in impact.reason


def test_runs_without_faults_have_no_impacts() -> None:
    assert fault_impacts(run_with([0] * 5, []), [parse_objective("p99 < 1s")]) == []


def test_a_fault_still_on_at_the_end_is_not_called_unrecovered() -> None:
    lasting = {**OUTAGE, "at_s": 0.0, "for_s": 60.0}  # a neighbour kept on for the whole run
    objectives = [parse_objective("error_rate < 1%")]
    (impact,) = fault_impacts(run_with([0] * 10, [lasting]), objectives)
    assert impact.ran_to_end
    assert "on until the end of the run" in impact.reason
    assert "not recovered" not in impact.reason
    (ended,) = fault_impacts(run_with([0, 0, 0, 100, 100, 100, 50, 50, 0, 0], [OUTAGE]), objectives)
    assert not ended.ran_to_end
    assert "not recovered by the end of the run" in ended.reason
