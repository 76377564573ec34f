"""docs/tasks.md: its Python examples run as written, in order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOC = Path(__file__).parents[2] / "docs" / "tasks.md"


async def test_the_examples_of_docs_tasks_md_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 3
    namespace: dict[str, Any] = {"__name__": "docs_tasks"}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - the project's own documentation
    step = namespace["ReviewContract"]()
    assert (step.priority, step.candidate_groups, step.candidates_key) == (80, ["compliance"], "reviewers")
    await namespace["example"]()
    await namespace["escalation_example"]()
