"""Data sources: CSV and JSON lines, drawn sequentially, at random, or uniquely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from redline.core import DataExhaustedError, PlanError
from redline.plan import RenderContext, compile_template, plan_from_dict


def plan_with(tmp_path: Path, data: dict[str, Any]) -> Any:
    return plan_from_dict(
        {
            "target": "http://127.0.0.1:9",
            "requests": [{"path": "/"}],
            "load": {"rate": 1},
            "duration": 1,
            "data": data,
        },
        source="p.yaml",
        base_dir=tmp_path,
    )


def test_json_lines_keep_types_and_render_as_text(tmp_path: Path) -> None:
    (tmp_path / "users.jsonl").write_text('{"name": "ada", "id": 1}\n\n{"name": "bob", "id": 2}\n')
    (source,) = plan_with(tmp_path, {"users": "users.jsonl"}).data
    assert source.columns == ("name", "id")
    assert source.rows == (("ada", 1), ("bob", 2))
    template = compile_template("/u/${users.id}/${users.name}", {"users": source})
    ctx = RenderContext()
    assert [template.render(ctx) for _ in range(3)] == ["/u/1/ada", "/u/2/bob", "/u/1/ada"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"name": "ada", "id": 1}\n{"name": "bob"}\n', r"line 2: missing column 'id'"),
        ('{"name": "ada"}\nnot json\n', r"line 2: not valid JSON"),
        ("[1, 2]\n", r"line 1: expected a JSON object"),
        ("", r"has no rows"),
    ],
)
def test_bad_json_lines_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.jsonl").write_text(text)
    with pytest.raises(PlanError, match=rf"p\.yaml: data\.rows: .*bad\.jsonl' {message}"):
        plan_with(tmp_path, {"rows": "bad.jsonl"})


def test_unique_rows_are_shared_out_between_workers_and_run_out(tmp_path: Path) -> None:
    (tmp_path / "codes.csv").write_text("code\n" + "".join(f"c{i}\n" for i in range(5)))
    (source,) = plan_with(tmp_path, {"codes": {"file": "codes.csv", "mode": "unique"}}).data
    workers = [RenderContext(stride=2, offset=i) for i in range(2)]
    drawn = []
    for _ in range(3):
        for ctx in workers:
            try:
                drawn.append(source.draw(ctx)[0])
            except DataExhaustedError:
                drawn.append(None)
    assert sorted(d for d in drawn if d) == [f"c{i}" for i in range(5)]  # each once
    assert drawn.count(None) == 1


def test_unique_rows_can_recycle(tmp_path: Path) -> None:
    (tmp_path / "codes.csv").write_text("code\na\nb\n")
    (source,) = plan_with(
        tmp_path, {"codes": {"file": "codes.csv", "mode": "unique", "recycle": True}}
    ).data
    ctx = RenderContext()
    assert [source.draw(ctx)[0] for _ in range(5)] == ["a", "b", "a", "b", "a"]


def test_random_rows_are_reproducible(tmp_path: Path) -> None:
    (tmp_path / "codes.csv").write_text("code\n" + "".join(f"c{i}\n" for i in range(50)))
    (source,) = plan_with(tmp_path, {"codes": {"file": "codes.csv", "mode": "random"}}).data
    first = [source.draw(RenderContext(seed=4))[0] for _ in range(3)]
    again = [source.draw(RenderContext(seed=4))[0] for _ in range(3)]
    assert first == again
    ctx = RenderContext(seed=9)
    assert len({source.draw(ctx)[0] for _ in range(40)}) > 10


def test_unknown_mode_is_explained(tmp_path: Path) -> None:
    (tmp_path / "codes.csv").write_text("code\na\n")
    with pytest.raises(
        PlanError, match=r'data\.codes\.mode: expected "sequential", "random" or "unique"'
    ):
        plan_with(tmp_path, {"codes": {"file": "codes.csv", "mode": "shuffled"}})
