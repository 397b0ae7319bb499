"""``redline testserver`` and ``redline import openapi`` on the command line."""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from redline.cli._main import main
from redline.plan import load_plan

SPEC = """
openapi: 3.0.3
info: {title: shop}
servers: [{url: "http://127.0.0.1:8080/api"}]
paths:
  /items/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: integer, example: 7}}
    get:
      operationId: getItem
  /orders:
    post:
      requestBody:
        content:
          application/json:
            schema: {type: object, properties: {sku: {type: string, example: lamp}}}
"""


def test_testserver_serves_what_it_is_told_until_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "redline", "testserver", "--port", "0", "--status", "503",
         "--body-size", "1KiB", "--latency", "20ms"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("test server on http://127.0.0.1:"), line
        port = int(line.split("http://127.0.0.1:", 1)[1].split("/", 1)[0].split()[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        started = time.perf_counter()
        connection.request("GET", "/anything")
        response = connection.getresponse()
        body = response.read()
        took = time.perf_counter() - started
        connection.close()
        assert response.status == 503
        assert len(body) == 1024
        assert took >= 0.02  # the latency it was given, at least
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
        assert process.returncode in (0, 130), stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_testserver_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["testserver", "--latency", "soon"]) == 2
    assert "testserver:" in capsys.readouterr().err
    assert main(["testserver", "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_import_openapi_writes_a_plan_that_loads(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    out = tmp_path / "plan.yaml"
    assert main(["import", "openapi", str(spec), "--target", "http://127.0.0.1:9000",
                 "--out", str(out)]) == 0  # fmt: skip
    written = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert written["target"] == "http://127.0.0.1:9000"
    plan = load_plan(out)
    paths = {r.name: r.path.text for r in plan.requests}
    # --target takes the place of the spec's server, base path and all
    assert paths == {"getItem": "/items/7", "POST /orders": "/orders"}


def test_import_openapi_names_a_file_it_cannot_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text('{"swagger": "2.0"}', encoding="utf-8")
    assert main(["import", "openapi", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "spec.json" in err
    assert "expected an OpenAPI 3 document" in err
