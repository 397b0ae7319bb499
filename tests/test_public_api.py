"""Each package's ``__all__`` is exactly its public surface (STYLE.md)."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = [
    "redline.core",
    "redline.plan",
    "redline.http",
    "redline.engine",
    "redline.report",
    "redline.analysis",
    "redline.store",
    "redline.observe",
    "redline.faults",
    "redline.resilience",
    "redline.testing",
    "redline.scenario",
    "redline.cli",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_matches_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_") and not inspect.ismodule(value)
    }
    assert exported == public
    for attr in exported:
        assert getattr(module, attr).__doc__, f"{name}.{attr} has no docstring"
