"""Data sources of a plan: CSV and JSON-lines files read when the plan is validated."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

from redline.core import PlanError

from ._node import _boolean, _Node, _show, _text
from ._template import DataSource


def _data_sources(root: _Node, base_dir: Path) -> list[DataSource]:
    node = root.node("data")
    if node is None:
        return []
    sources = []
    for name, value in node.value.items():
        path = node.child_path(str(name))
        mode, recycle = "sequential", False
        if isinstance(value, Mapping):
            entry = _Node(value, path, root.source)
            entry.check_keys(("file", "mode", "recycle"))
            value = entry.get("file", _text)
            mode = entry.get("mode", str, "sequential")
            if mode not in ("sequential", "random", "unique"):
                entry.fail(
                    f'expected "sequential", "random" or "unique", got {_show(mode)}', "mode"
                )
            recycle = entry.get("recycle", _boolean, False)
            path = entry.child_path("file")
        if not isinstance(value, str):
            raise PlanError(
                'expected a file name like "users.csv" or {file: ..., mode: ...}, '
                f"got {_show(value)}",
                source=root.source,
                path=path,
            )
        file = (base_dir / value).resolve()
        try:
            columns, rows = _read_rows(file)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise PlanError(
                f"cannot read {str(file)!r}: {exc}", source=root.source, path=path
            ) from None
        except ValueError as exc:
            raise PlanError(f"{str(file)!r} {exc}", source=root.source, path=path) from None
        sources.append(
            DataSource(
                name=str(name),
                path=str(file),
                columns=columns,
                rows=rows,
                mode=cast(Literal["sequential", "random", "unique"], mode),
                recycle=recycle,
            )
        )
    return sources


def _read_rows(file: Path) -> tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]]:
    """Columns and rows of a CSV (header row first) or JSON-lines (one object a line) file.

    Raises:
        ValueError: naming the line where the file is malformed.
    """
    if file.suffix.lower() in (".jsonl", ".ndjson"):
        columns: tuple[str, ...] = ()
        rows: list[tuple[Any, ...]] = []
        with file.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"line {number}: not valid JSON: {exc.msg}") from None
                if not isinstance(item, dict):
                    raise ValueError(f"line {number}: expected a JSON object, got {_show(item)}")
                if not columns:
                    columns = tuple(str(k) for k in item)
                missing = [c for c in columns if c not in item]
                if missing:
                    raise ValueError(
                        f"line {number}: missing column {missing[0]!r} "
                        f"(columns: {', '.join(columns)})"
                    )
                rows.append(tuple(item[c] for c in columns))
        if not rows:
            raise ValueError("has no rows: expected one JSON object a line")
        return columns, tuple(rows)
    with file.open(newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    if len(table) < 2:
        raise ValueError("needs a header row and at least one data row")
    header = tuple(c.strip() for c in table[0])
    body = tuple(tuple(r) for r in table[1:] if r)
    for number, row in enumerate(table[1:], start=2):
        if row and len(row) != len(header):
            raise ValueError(f"line {number}: expected {len(header)} columns, got {len(row)}")
    return header, body
