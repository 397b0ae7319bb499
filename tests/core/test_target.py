"""The target report's JSON form: every part written and read back the same."""

from __future__ import annotations

import json

import pytest

from redline.core import (
    MemoryGrowth,
    ProfileFunction,
    RunOutcome,
    ServedProcess,
    TargetCost,
    TargetProfile,
    TargetReport,
    TargetVerdict,
    UseRow,
    WatchedThing,
)
from synthetic import synthetic_run

FULL = TargetReport(
    watched=(
        WatchedThing("serve", "process", cores=1.0, python=True, exited_at_s=4.5, exit_status=-9),
        WatchedThing("host", "host", cores=2.0),
    ),
    samples={"serve": ({"interval": 0.0, "cpu_cores": 0.9, "pss_bytes": None},), "host": ()},
    profile=TargetProfile(
        67.0,
        (1.0, 9.0),
        samples=10,
        waiting_samples=4,
        top=(ProfileFunction("scan", "/srv/app.py", 3, 80.0, 90.0),),
        folded={"main (/srv/app.py:1);scan (/srv/app.py:3)": 10},
        waits={"lock": 4},
        wait_sites={"lock": "handler (/srv/app.py:9)"},
    ),
    served=ServedProcess("python app.py", 123, exit_status=-9, exited_at_s=4.5, stderr_tail=("x",)),
    use=(UseRow("cpu", "serve", 90.0, 0.0, "s throttled"),),
    verdict=TargetVerdict("cpu", "CPU of serve (90% of its one core)"),
    memory_growth=MemoryGrowth("serve", 10.0, 5.0, 15.0, True),
    cost=TargetCost(0.001, 0.0002, 1.5, vcpu_hour=0.04, gib_hour=0.005),
    notes=("a note",),
)


def test_a_full_report_survives_json_and_back() -> None:
    data = json.loads(json.dumps(FULL.to_dict()))
    assert TargetReport.from_dict(data) == FULL
    assert data["verdict"] == {
        "bottleneck": "cpu",
        "evidence": "CPU of serve (90% of its one core)",
    }
    assert data["profile"]["top"][0] == {
        "function": "scan", "file": "/srv/app.py", "line": 3, "self_pct": 80.0, "total_pct": 90.0
    }  # fmt: skip
    assert data["samples"]["serve"][0]["pss_bytes"] is None  # missing stays null


def test_an_outcome_carries_it_as_target_and_older_documents_have_none() -> None:
    outcome = RunOutcome(synthetic_run(1, intervals=2), target=FULL)
    document = json.loads(json.dumps(outcome.to_dict()))
    assert document["target"]["watched"][0]["name"] == "serve"
    assert RunOutcome.from_dict(document).target == FULL
    del document["target"]
    assert RunOutcome.from_dict(document).target is None


def test_a_wrong_bottleneck_names_its_path() -> None:
    data = FULL.to_dict()
    data["verdict"]["bottleneck"] = "disk"
    with pytest.raises(ValueError, match=r"\$\.target\.verdict\.bottleneck: expected one of"):
        TargetReport.from_dict(data)
