"""Every file under docs/examples runs, and checks what its page says it shows.

The pages include these files (``--8<--``), so a page shows exactly the code run here.  A
file is imported from ``docs/examples`` (with the working directory a fresh temporary one,
so SQLite files and the embedded Redis land there); its ``main()``, when it has one, is
called (awaited when it is a coroutine function).  Every file must assert something itself:
a file without an ``assert`` statement fails here.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from flowstar.flow import engine as default_flow_engine
from tests.docs.conftest import declared_needs, example_files, import_example


def _param(path: Path) -> object:
    marks = [pytest.mark.integration] if declared_needs(path) else []
    return pytest.param(path, marks=marks, id=path.stem)


def _asserts(path: Path) -> int:
    return sum(isinstance(node, ast.Assert) for node in ast.walk(ast.parse(path.read_text())))


@pytest.fixture
def servers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the ``FLOWSTAR_*`` variables at the servers the example declares it needs."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in list(__import__("os").environ) if n.startswith("FLOWSTAR_")]:
        monkeypatch.delenv(name)
    path: Path = request.node.callspec.params["path"]
    needs = declared_needs(path)
    if "postgresql" in needs:
        monkeypatch.setenv("FLOWSTAR_DATABASE_URL", request.getfixturevalue("own_pg_database_url"))
    if "redis" in needs:
        monkeypatch.setenv("FLOWSTAR_REDIS_URL", request.getfixturevalue("redis_server_url") + "/0")
        # Queue, stream and lock keys are named after the queue: a name of its own per test.
        monkeypatch.setenv("FLOWSTAR_QUEUE", request.getfixturevalue("unique_prefix"))


@pytest.mark.parametrize("path", [_param(p) for p in example_files()])
@pytest.mark.usefixtures("servers", "examples_on_path")
async def test_example_runs_and_checks_itself(path: Path) -> None:
    assert _asserts(path) > 0, f"{path.name} asserts nothing: end it with the checks its page promises"
    module = import_example(path)
    main = getattr(module, "main", None)
    try:
        if main is not None:
            result = main()
            if inspect.isawaitable(result):
                await result
    finally:
        await default_flow_engine.close()  # an example may have driven the default facade


def test_there_are_examples() -> None:
    assert len(example_files()) >= 5
