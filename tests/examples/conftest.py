"""Helpers for example tests: import an example file by path, or run it as a script."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def import_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a fresh module."""
    path = EXAMPLES / f"{name}.py"
    module_name = f"flowstar_example_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None, path
    assert spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def run_example(name: str) -> subprocess.CompletedProcess[str]:
    """Run ``python examples/<name>.py`` as a user would."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def load_example() -> Callable[[str], ModuleType]:
    return import_example
