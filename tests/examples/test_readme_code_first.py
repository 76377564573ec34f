"""README's code-first snippet runs as written (inside a coroutine, on a fresh default engine)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from flowstar import LocalExecutionEngine, WorkflowRegistry, WorkflowStatus
from flowstar.flow import engine

README = Path(__file__).resolve().parents[2] / "README.md"


def _code_first_snippet() -> str:
    section = README.read_text().split("## Code-first workflows", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "README's code-first section has no Python block"
    return match.group(1)


async def test_the_readme_code_first_snippet_runs() -> None:
    registry = WorkflowRegistry()
    source = _code_first_snippet().replace(
        '@workflow("order_fulfillment")', '@workflow("order_fulfillment", registry=registry)'
    )
    namespace: dict[str, Any] = {"registry": registry}
    body = textwrap.indent(source, "    ")
    exec(compile(f"async def snippet():\n{body}\n    return run\n", str(README), "exec"), namespace)  # noqa: S102 - our own README
    engine.use(LocalExecutionEngine(registry))
    try:
        run = await namespace["snippet"]()
        run = await run.refresh()
    finally:
        await engine.close()
    assert run.status == WorkflowStatus.COMPLETED
    assert (run.data["approved_by"], run.data["shipped"]) == ("dana", True)
