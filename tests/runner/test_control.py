"""``RunControl`` and the observer fan-out, on their own."""

from __future__ import annotations

import threading

from redline.core import GeneratorInterval, IntervalSnapshot, Observers
from redline.runner import RunControl


def test_a_stop_is_remembered_and_an_abort_keeps_the_first_reason() -> None:
    control = RunControl()
    assert not control.stopped
    control.abort("p99 breached")
    control.abort("errors breached")
    assert control.stopped
    assert control.abort_reason == "p99 breached"
    stopped = RunControl()
    stopped.stop()
    stopped.abort("too late")
    assert stopped.abort_reason is None  # a stop asked first is not an abort


def test_a_child_stops_with_its_parent_but_its_abort_is_its_own() -> None:
    parent = RunControl()
    first, second = parent.child(), parent.child()
    first.abort("a step broke")
    assert first.stopped
    assert not parent.stopped
    assert not second.stopped
    waiter = threading.Thread(target=second.wait, args=(5.0,))
    waiter.start()
    parent.stop()
    waiter.join(timeout=2.0)
    assert not waiter.is_alive()  # the child woke for its parent's stop
    assert second.stopped
    assert second.abort_reason is None
    assert not RunControl().child().wait(0.05)


def test_the_fan_out_calls_only_the_methods_an_observer_has_in_order() -> None:
    calls: list[str] = []

    class OnlyIntervals:
        def on_interval(self, interval: IntervalSnapshot) -> None:
            calls.append(f"intervals {interval.index}")

    class Everything:
        def on_start(self, run: object) -> None:
            calls.append("start")

        def on_interval(self, interval: IntervalSnapshot) -> None:
            calls.append(f"everything {interval.index}")

        def on_abandon(self, reason: str) -> None:
            calls.append(f"abandon {reason}")

    fan_out = Observers([OnlyIntervals(), object()])
    fan_out.add(Everything(), first=True)
    interval = IntervalSnapshot(
        index=3, start_s=3.0, duration_s=1.0, endpoints={}, generator=GeneratorInterval()
    )
    fan_out.on_interval(interval)
    fan_out.on_abandon("crashed")
    assert calls == ["everything 3", "intervals 3", "abandon crashed"]
    assert len(fan_out) == 3
