"""The docs' example files, found and loaded the way a reader runs them.

A reader runs ``python docs/examples/<name>.py``, which puts ``docs/examples`` on the import
path, so an example may import the one before it (``from tutorial_human_task import
registry``); the tests do the same.  An example that needs servers says so with a
module-level ``NEEDS`` tuple (``"postgresql"``, ``"redis"``), and reads them from the
``FLOWSTAR_*`` variables, as every flowstar process does.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
KNOWN_NEEDS = frozenset({"postgresql", "redis"})


def example_files() -> list[Path]:
    """Every example file: a new one is tested without being listed anywhere."""
    return sorted(EXAMPLES.glob("*.py"))


def declared_needs(path: Path) -> tuple[str, ...]:
    """The file's ``NEEDS`` constant, read without importing it (imports may need the servers)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "NEEDS" for t in node.targets):
            needs = ast.literal_eval(node.value)
            assert set(needs) <= KNOWN_NEEDS, f"{path.name}: unknown NEEDS {needs}"
            return tuple(needs)
    return ()


@pytest.fixture
def examples_on_path() -> Iterator[None]:
    """``docs/examples`` importable, and every example module imported meanwhile forgotten after."""
    before = set(sys.modules)
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield
    finally:
        sys.path.remove(str(EXAMPLES))
        for name in set(sys.modules) - before:
            module = sys.modules[name]
            if Path(getattr(module, "__file__", None) or "/").parent == EXAMPLES:
                del sys.modules[name]


def import_example(path: Path) -> ModuleType:
    """Import ``docs/examples/<name>.py`` under its own name, as ``python`` would find it."""
    return importlib.import_module(path.stem)
