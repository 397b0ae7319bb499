"""Each package's ``__all__`` is exactly its public surface, and every public name is
documented (docs/architecture.md, "Public surface")."""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import redline

PACKAGES = sorted(
    f"redline.{info.name}"
    for info in pkgutil.iter_modules(redline.__path__)
    if info.ispkg and not info.name.startswith("_")
)


def documented_assignments(package: ModuleType) -> set[str]:
    """Names assigned at module level with a string literal right after them."""
    paths = [Path(package.__file__ or "")]
    if hasattr(package, "__path__"):
        paths = sorted(Path(package.__path__[0]).glob("*.py"))
    names: set[str] = set()
    for path in paths:
        body = ast.parse(path.read_text(encoding="utf-8")).body
        for node, after in itertools.pairwise(body):
            documented = (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
                and after.value.value.strip()
            )
            if not documented:
                continue
            if isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return names


def test_every_package_is_checked() -> None:
    # the list is found, not written: a new package is checked from its first commit
    assert {"redline.core", "redline.runner", "redline.cache", "redline.demo"} <= set(PACKAGES)


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


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_is_documented(name: str) -> None:
    module = importlib.import_module(name)
    undocumented = []
    for attr in module.__all__:
        value = getattr(module, attr)
        if inspect.isclass(value) or inspect.isroutine(value):
            # a class's __doc__ is its own (not inherited); a function's is its docstring
            if not (value.__doc__ or "").strip():
                undocumented.append(attr)
            continue
        # a constant, an alias or a Literal: a string literal after its assignment, in
        # the module that defines it (the package's own or the one it re-exports from)
        origin = importlib.import_module(getattr(value, "__module__", None) or name)
        owners = {name, origin.__name__}
        if not any(attr in documented_assignments(importlib.import_module(o)) for o in owners):
            undocumented.append(attr)
    assert undocumented == []


def test_the_top_level_names_are_few_and_resolve() -> None:
    names = [n for n in redline.__all__ if n != "__version__"]
    assert 10 <= len(names) <= 20
    for attr in names:
        value = getattr(redline, attr)
        assert (value.__doc__ or "").strip(), attr
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = redline.no_such_name  # type: ignore[attr-defined]


def test_importing_the_kit_does_not_load_the_engine() -> None:
    # the kit (resilience, cache) is usable in a service without the rest of redline
    import subprocess
    import sys

    code = (
        "import sys, redline.resilience, redline.cache; "
        "print(sorted(m for m in sys.modules if m.startswith(('redline.engine', "
        "'redline.runner', 'numpy'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
