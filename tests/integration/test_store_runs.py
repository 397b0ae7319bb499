"""Runs kept end to end: `redline run` stores, `runs`/`show`/`export` read back, kills survive."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from redline.cli._main import main
from redline.core import StoreError
from redline.store import LOST, open_store
from redline.testing import TestServer

Server = Callable[..., TestServer]
SECRETS = ("Bearer tok-31415926", "key-27182818", "sig-16180339")


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return str(tmp_path / "kept" / "runs.db")


def stored_text(location: str) -> str:
    """Everything the store holds, as text, to search for secrets in."""
    if location.startswith("postgresql://"):
        with open_store(location) as store:
            rows = store._db.query(
                "SELECT r.plan::text || r.notes::text || r.tracebacks::text || r.meta::text "
                "|| coalesce(string_agg(i.data::text, ''), '') FROM redline_runs r "
                "LEFT JOIN redline_intervals i ON i.run_id = r.id GROUP BY r.id"
            )
        return "".join(r[0] for r in rows)
    folder = Path(location).parent
    return "".join(p.read_bytes().decode("latin-1") for p in folder.iterdir())


def write_plan(path: Path, url: str, *, duration: str, rate: str = "200/s") -> Path:
    path.write_text(
        f"name: kept\ntarget: {url}\n"
        "redact: [X-Api-Key, sig]\n"
        "requests:\n"
        "  - name: home\n"
        "    path: /?sig=sig-16180339\n"
        f"    headers: {{Authorization: '{SECRETS[0]}', X-Api-Key: {SECRETS[1]}}}\n"
        f"load: {{rate: {rate}}}\nduration: {duration}\nworkers: 1\nseed: 5\n"
        "generator: {late_tolerance: 0.9}\n"
        "slo:\n  - {name: availability, objective: error_rate < 1%}\n"
    )
    return path


def test_a_run_is_stored_listed_shown_and_exported_without_its_secrets(
    redline_server: Server,
    tmp_path: Path,
    store_location: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = redline_server()
    plan = write_plan(tmp_path / "plan.yaml", server.url, duration="2s")
    out, junit, summary = tmp_path / "out.json", tmp_path / "junit.xml", tmp_path / "pr.md"
    code = main(
        [
            "run", str(plan), "--quiet", "--store", store_location,
            "--label", "branch=main", "--label", f"ci={tmp_path.name}",
            "--out", str(out), "--junit", str(junit), "--summary-md", str(summary),
        ]
    )  # fmt: skip
    assert code == 0
    run_output = capsys.readouterr()
    document = json.loads(out.read_text())
    run_id = document["id"]
    assert f"stored as {run_id}" in run_output.out

    # The PostgreSQL database is shared by the session: the unique label finds this run.
    assert (
        main(["runs", "--json", "--store", store_location, "--label", f"ci={tmp_path.name}"]) == 0
    )
    (line,) = capsys.readouterr().out.splitlines()
    listed = json.loads(line)
    assert listed["id"] == run_id
    assert listed["labels"] == {"branch": "main", "ci": tmp_path.name}
    assert listed["requests"] == document["summary"]["total"]["requests"] == 400
    assert listed["verdicts"] == {"pass": 1}
    assert main(["runs", "--json", "--store", store_location, "--label", "ci=other"]) == 0
    assert capsys.readouterr().out == ""

    assert main(["show", run_id[:-3], "--store", store_location]) == 0
    shown = capsys.readouterr().out
    assert f"run {run_id}: plan kept" in shown
    assert f"labels branch=main ci={tmp_path.name}" in shown

    exported = tmp_path / "export.json"
    assert main(["export", run_id, "--store", store_location, "--out", str(exported)]) == 0
    # What the store gives back is exactly what the run wrote itself.
    assert json.loads(exported.read_text()) == document
    assert document["meta"]["labels"] == {"branch": "main", "ci": tmp_path.name}
    assert document["verdicts"][0]["outcome"] == "pass"

    seen = (
        run_output.out + run_output.err + shown + capsys.readouterr().err
        + out.read_text() + junit.read_text() + summary.read_text() + exported.read_text()
        + stored_text(store_location)
    )  # fmt: skip
    for secret in (*SECRETS, "tok-31415926"):
        assert secret not in seen
    assert '"X-Api-Key": "[redacted]"' in exported.read_text()


def test_reading_commands_explain_a_missing_store_or_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "nothing.db")
    assert main(["runs", "--store", missing]) == 2
    assert "no run store here yet" in capsys.readouterr().err
    assert not Path(missing).exists()
    with open_store(tmp_path / "empty.db"):
        pass
    assert main(["show", "20990101", "--store", str(tmp_path / "empty.db")]) == 2
    assert "no run '20990101'" in capsys.readouterr().err
    assert main(["runs", "--since", "yesterday-ish", "--store", missing]) == 2
    assert "expected a date" in capsys.readouterr().err


def known_runs(location: str) -> set[str]:
    try:
        with open_store(location, create=False) as store:
            return {info.id for info in store.runs()}
    except StoreError:
        return set()  # no store yet


def wait_for_intervals(location: str, count: int, *, known: set[str], timeout: float = 30.0) -> str:
    """Poll the store (as another reader would) until a new run has ``count`` intervals."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open_store(location, create=False) as store:
                run = store.load("latest")
            if run.result.id not in known and len(run.result.intervals) >= count:
                return run.result.id
        except StoreError:
            pass  # not created yet, or no run yet
        time.sleep(0.1)
    raise AssertionError(f"no run with {count} intervals appeared in {location}")


def start_run(plan: Path, location: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "redline", "run", str(plan), "--quiet", "--store", location],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the kill reaches its workers too
    )


def test_a_run_killed_mid_way_leaves_a_readable_partial_run(
    redline_server: Server, tmp_path: Path, store_location: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = redline_server()
    plan = write_plan(tmp_path / "plan.yaml", server.url, duration="60s", rate="50/s")
    known = known_runs(store_location)
    process = start_run(plan, store_location)
    try:
        run_id = wait_for_intervals(store_location, 3, known=known)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    with open_store(store_location, create=False) as store:
        stored = store.load(run_id)
        (info,) = [i for i in store.runs() if i.id == run_id]
    result = stored.result
    assert (result.complete, result.stop_reason, info.stop_reason) == (False, LOST, LOST)
    assert len(result.intervals) >= 3
    assert result.total().requests >= 100
    assert result.total().requests <= server.requests_total
    assert stored.verdicts == ()
    assert main(["show", run_id, "--store", store_location]) == 0
    assert "lost (incomplete)" in capsys.readouterr().out


def test_ctrl_c_keeps_the_run_marked_interrupted(
    redline_server: Server, tmp_path: Path, store_location: str
) -> None:
    server = redline_server()
    plan = write_plan(tmp_path / "plan.yaml", server.url, duration="60s", rate="50/s")
    known = known_runs(store_location)
    process = start_run(plan, store_location)
    try:
        run_id = wait_for_intervals(store_location, 2, known=known)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 130, stderr
    with open_store(store_location, create=False) as store:
        stored = store.load(run_id)
    assert (stored.result.complete, stored.result.stop_reason) == (False, "interrupted")
    assert stored.result.total().requests == server.requests_total
    assert [v.objective.name for v in stored.verdicts] == ["availability"]
