"""``redline.run`` and its async form against the real test server on loopback."""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import redline
from redline.core import IntervalSnapshot, RunOutcome, RunResult
from redline.plan import Plan, plan_from_dict
from redline.runner import RunControl
from redline.store import open_store
from redline.testing import Behaviour, TestServer

Server = Callable[..., TestServer]
ROOT = Path(__file__).resolve().parents[2]


def plan(url: str, **changes: Any) -> Plan:
    data: dict[str, Any] = {
        "name": "runner",
        "target": url,
        "requests": [{"name": "get", "path": "/"}],
        "load": {"rate": "100/s"},
        "duration": "2s",
        "workers": 1,
        "seed": 1,
    }
    data.update(changes)
    return plan_from_dict(data, source="test")


class Log:
    """An observer that writes down what it was told, in order."""

    def __init__(self, name: str, calls: list[tuple[str, str]]) -> None:
        self.name = name
        self.calls = calls

    def on_start(self, run: RunResult) -> None:
        self.calls.append((self.name, f"start {run.stop_reason}"))

    def on_interval(self, interval: IntervalSnapshot) -> None:
        self.calls.append((self.name, f"interval {interval.index}"))

    def on_finish(self, outcome: RunOutcome) -> None:
        self.calls.append((self.name, f"finish {outcome.result.stop_reason}"))

    def on_abandon(self, reason: str) -> None:
        self.calls.append((self.name, f"abandon {reason}"))


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "api" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_the_csv_observer_of_the_docs_writes_every_interval(
    redline_server: Server, tmp_path: Path
) -> None:
    server = redline_server(Behaviour(latency=0.001))
    example = load_example("csv_observer")
    out = tmp_path / "intervals.csv"
    assert example.main(server.url, str(out)) == 0
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 3  # three measured seconds at least
    assert sum(int(r["requests"]) for r in rows) == server.requests_total
    assert {r["run"] for r in rows} == {rows[0]["run"]}


def test_observers_are_called_in_order_and_the_outcome_is_kept(
    redline_server: Server, tmp_path: Path
) -> None:
    server = redline_server()
    calls: list[tuple[str, str]] = []
    out = tmp_path / "result.json"
    with open_store(tmp_path / "runs.db") as store:
        outcome = redline.run(
            plan(server.url, slo=["error_rate < 5%"]),
            observers=[Log("a", calls), Log("b", calls)],
            store=store,
            out=out,
            labels={"branch": "main"},
        )
        stored = store.load(outcome.result.id)
    assert outcome.passed
    assert [v.outcome for v in outcome.verdicts] == ["pass"]
    assert calls[:2] == [("a", "start running"), ("b", "start running")]
    assert calls[-2:] == [("a", "finish completed"), ("b", "finish completed")]
    intervals = [c for c in calls if c[1].startswith("interval")]
    assert len(intervals) == 2 * len(outcome.result.intervals)
    # the store saw it all, with its verdicts and labels
    assert stored.result.total().requests == outcome.result.total().requests
    assert stored.meta.labels == {"branch": "main"}
    assert [v.outcome for v in stored.verdicts] == ["pass"]
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["id"] == outcome.result.id
    assert document["meta"]["labels"] == {"branch": "main"}
    assert RunOutcome.from_dict(document).result.total().requests == server.requests_total


def test_an_abort_rule_stops_the_run_after_every_observer_saw_the_breach(
    redline_server: Server,
) -> None:
    server = redline_server(Behaviour(latency=0.05))
    calls: list[tuple[str, str]] = []
    outcome = redline.run(
        plan(server.url, duration="20s", slo=[{"objective": "p99 < 10ms", "abort": True}]),
        observers=[Log("mine", calls)],
    )
    result = outcome.result
    assert result.stop_reason == "aborted"
    assert result.duration_s < 10
    assert any(note.startswith("aborted: ") for note in result.notes)
    assert outcome.verdicts[0].outcome == "fail"
    assert not outcome.passed
    seen = [c for c in calls if c[1].startswith("interval")]
    assert len(seen) == len(result.intervals)  # including the one that breached


def test_an_observer_that_raises_ends_the_run_and_the_store_says_so(
    redline_server: Server, tmp_path: Path
) -> None:
    server = redline_server()
    calls: list[tuple[str, str]] = []

    class Broken:
        def on_interval(self, interval: IntervalSnapshot) -> None:
            if interval.index == 1:
                raise ValueError("a bug in an observer")

    with open_store(tmp_path / "runs.db") as store:
        with pytest.raises(ValueError, match="a bug in an observer"):
            redline.run(
                plan(server.url, duration="20s"),
                observers=[Log("log", calls), Broken()],
                store=store,
            )
        (info,) = store.runs()
    assert calls[-1] == ("log", "abandon crashed")
    assert info.stop_reason == "crashed"
    assert info.requests > 0  # what was measured before the crash is kept


def test_cancelling_run_async_stops_the_run_and_keeps_it(
    redline_server: Server, tmp_path: Path
) -> None:
    server = redline_server()
    calls: list[tuple[str, str]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        two_intervals = asyncio.Event()

        class Signal:
            def on_interval(self, interval: IntervalSnapshot) -> None:
                if interval.index == 1:  # called in the runner's thread
                    loop.call_soon_threadsafe(two_intervals.set)

        task = asyncio.create_task(
            redline.run_async(
                plan(server.url, duration="30s"),
                observers=[Log("log", calls), Signal()],
                store=store,
            )
        )
        await asyncio.wait_for(two_intervals.wait(), timeout=60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with open_store(tmp_path / "runs.db") as store:
        asyncio.run(main())
        (info,) = store.runs()
    assert calls[-1] == ("log", "finish interrupted")
    assert info.stop_reason == "interrupted"
    assert 2 <= info.measured_s < 10
    assert info.requests == server.requests_total


def test_a_control_stops_a_run_from_another_thread(redline_server: Server) -> None:
    server = redline_server()
    control = RunControl()

    class StopAtTwo:
        def on_interval(self, interval: IntervalSnapshot) -> None:
            if interval.index == 2:
                control.stop()

    outcome = redline.run(
        plan(server.url, duration="30s"), observers=[StopAtTwo()], control=control
    )
    assert outcome.result.stop_reason == "interrupted"
    assert not outcome.passed
    assert 3 <= len(outcome.result.intervals) <= 5


def test_a_plan_file_runs_by_its_path(redline_server: Server, tmp_path: Path) -> None:
    server = redline_server()
    path = tmp_path / "plan.yaml"
    path.write_text(
        f"name: by-path\ntarget: {server.url}\nrequests: [{{name: get, path: /}}]\n"
        "load: {rate: 50/s}\nduration: 1s\n",
        encoding="utf-8",
    )
    outcome = redline.run(str(path))
    assert outcome.result.plan.name == "by-path"
    assert outcome.result.total().requests == server.requests_total > 0
