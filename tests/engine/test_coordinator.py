"""The coordinator's side of the worker protocol, with scripted workers on real pipes."""

from __future__ import annotations

import dataclasses
import threading
from multiprocessing import Pipe
from multiprocessing.connection import Connection

import numpy as np

from redline.core import EndpointInterval, GeneratorInterval, Histogram, Observers
from redline.engine import RunControl
from redline.engine._coordinator import _collect, _Merger
from redline.engine._fleet import LocalFleet
from redline.engine._segments import split
from redline.engine._worker import WorkerInterval
from redline.plan import Plan, plan_from_dict

PLAN = plan_from_dict(
    {
        "target": "http://127.0.0.1:1",
        "requests": [{"path": "/"}],
        "load": {"rate": 10},
        "duration": 5,
    }
)


def interval(worker: int, index: int, requests: int) -> WorkerInterval:
    latency = Histogram()
    latency.record_values(np.full(requests, 1000))
    data = EndpointInterval(
        requests=requests, status={200: requests}, latency=latency, latency_actual=latency.copy()
    )
    return WorkerInterval(
        worker=worker,
        index=index,
        start_s=float(index),
        duration_s=1.0,
        endpoints={"GET /": data},
        generator=GeneratorInterval(scheduled=requests, sent=requests),
    )


def scripted(
    pipe: Connection, messages: list[tuple[object, ...]], *, close: bool = False
) -> threading.Thread:
    def play() -> None:
        for message in messages:
            pipe.send(message)
        if close:
            pipe.close()

    return threading.Thread(target=play)


def collect(scripts: list[tuple[list[tuple[object, ...]], bool]], plan: Plan = PLAN) -> _Merger:
    control = RunControl()
    merger = _Merger(plan, split(len(scripts)), (), Observers(), control)
    fleet = LocalFleet()
    threads = []
    for index, (messages, close) in enumerate(scripts):
        parent, child = Pipe()
        fleet.pipes[index] = parent
        threads.append(scripted(child, messages, close=close))
    for thread in threads:
        thread.start()
    _collect(fleet, merger, control)
    for thread in threads:
        thread.join()
    return merger


def test_intervals_of_all_workers_are_merged_in_order() -> None:
    merger = collect(
        [
            (
                [("interval", interval(0, 0, 5)), ("interval", interval(0, 1, 7)), ("done", 0)],
                False,
            ),
            (
                [("interval", interval(1, 0, 3)), ("interval", interval(1, 1, 1)), ("done", 1)],
                False,
            ),
        ]
    )
    assert [i.index for i in merger.intervals] == [0, 1]
    assert [i.total().requests for i in merger.intervals] == [8, 8]
    assert merger.stop_reason == "completed"


def test_a_failing_worker_still_delivers_its_last_interval() -> None:
    merger = collect(
        [
            (
                [
                    ("interval", interval(0, 0, 5)),
                    ("error", "Traceback: boom"),
                    ("interval", interval(0, 1, 2)),
                    ("done", 0),
                ],
                False,
            ),
        ]
    )
    assert [i.total().requests for i in merger.intervals] == [5, 2]
    assert merger.stop_reason == "worker_failed"
    assert any("boom" in note for note in merger.notes)


def test_a_vanished_worker_keeps_what_it_sent() -> None:
    merger = collect(
        [
            ([("interval", interval(0, 0, 4))], True),  # pipe closes: the process died
            (
                [("interval", interval(1, 0, 6)), ("interval", interval(1, 1, 6)), ("done", 1)],
                False,
            ),
        ]
    )
    assert [i.total().requests for i in merger.intervals] == [10, 6]
    assert merger.stop_reason == "worker_failed"
    # the second interval lacks the lost worker's half of the load, and says so
    assert [i.missing for i in merger.intervals] == [0.0, 0.5]
    assert any("50.0% share" in note and "interval 1" in note for note in merger.notes)


def test_a_lost_worker_leaves_the_rest_running_when_the_plan_says_continue() -> None:
    plan = dataclasses.replace(PLAN, on_worker_lost="continue")
    merger = collect(
        [
            ([("interval", interval(0, 0, 4))], True),
            ([("interval", interval(1, 0, 3))], True),
            ([("interval", interval(2, i, 2)) for i in range(3)] + [("done", 2)], False),
            ([("interval", interval(3, i, 1)) for i in range(3)] + [("done", 3)], False),
        ],
        plan,
    )
    assert merger.stop_reason == "completed"
    assert not merger.control.stopped
    assert [i.total().requests for i in merger.intervals] == [10, 3, 3]
    assert [i.missing for i in merger.intervals] == [0.0, 0.5, 0.5]
    assert sum("went on without it" in note for note in merger.notes) == 2
    assert any("exited without finishing" in note for note in merger.notes)
