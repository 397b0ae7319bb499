"""``redline demo``'s own input (the whole demo runs in .ci/run, checked there)."""

from __future__ import annotations

from pathlib import Path

import pytest

from redline.cli._main import main


def test_an_out_that_cannot_be_a_directory_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("not a directory")
    assert main(["demo", "--quick", "--out", str(taken)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err
    assert str(taken) in err
