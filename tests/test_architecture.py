"""docs/architecture.md describes the packages as built."""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

import redline

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def table_packages() -> list[str]:
    rows = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    return [m.group(1) for row in rows if (m := re.match(r"\|\s*\d+\s*\|\s*`(\w+)`", row))]


def test_every_package_has_a_row_and_every_row_a_package() -> None:
    built = sorted(i.name for i in pkgutil.iter_modules(redline.__path__) if i.ispkg)
    named = table_packages()
    assert len(named) == len(set(named))  # no package twice
    assert sorted(named) == built


def test_the_layers_of_the_doc_are_the_layers_lint_imports_holds() -> None:
    rows = DOC.read_text(encoding="utf-8").splitlines()
    layers: dict[int, set[str]] = {}
    for row in rows:
        if m := re.match(r"\|\s*(\d+)\s*\|\s*`(\w+)`", row):
            layers.setdefault(int(m.group(1)), set()).add(f"redline.{m.group(2)}")
    config = (DOC.parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    block = config.split('type = "layers"', 1)[1].split("]", 1)[0]
    contract = [set(re.findall(r"redline\.\w+", line)) for line in block.splitlines()[2:]]
    contract = [layer for layer in contract if layer]
    assert contract == [layers[n] for n in sorted(layers)]
