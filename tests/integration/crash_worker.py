"""A workflow process to kill: ``python crash_worker.py URL N``.

It starts ``N`` instances of the ``crashy`` workflow on the database at ``URL`` and keeps
running them until it is killed.  Each of the five machine steps appends its name to the
context's ``trail`` and, before that, inserts one row into ``side_effects`` through a
connection of its own (outside the engine's transactions), so the test can count how often a
step body really ran.

In worker mode step ``s4`` of every even-numbered instance sleeps far longer than the test
waits, so at the moment of the kill some instances have finished, and the others are inside
``s4`` with its side effect done and its outcome not committed.  The test process builds the
same registry with ``slow=False`` to recover them.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from flowstar import BaseMachineStep, Edge, WorkflowContext, WorkflowDefinition, WorkflowRegistry
from flowstar.db import PersistentExecutionEngine, create_database_engine

STEPS = ("s1", "s2", "s3", "s4", "s5")
WORKFLOW = "crashy"
SIDE_EFFECTS_DDL = (
    "CREATE TABLE side_effects "
    "(instance_id VARCHAR(36) NOT NULL, step VARCHAR(16) NOT NULL, token VARCHAR(36) NOT NULL)"
)
BLOCKING_STEP = "s4"


class Recorded(BaseMachineStep):
    """Inserts a side-effect row, then appends its name to ``trail``."""

    def __init__(self, name: str, side_effects: AsyncEngine, *, slow: bool) -> None:
        super().__init__(name)
        self.side_effects = side_effects
        self.slow = slow

    async def execute(self, context: WorkflowContext) -> dict[str, Any]:
        token = str(uuid.uuid4())
        async with self.side_effects.begin() as conn:
            await conn.execute(
                text("INSERT INTO side_effects (instance_id, step, token) VALUES (:i, :s, :t)"),
                {"i": str(context.instance_id), "s": self.name, "t": token},
            )
        if self.slow and self.name == BLOCKING_STEP and context.get("i", 0) % 2 == 0:
            await asyncio.sleep(3600)  # killed long before this ends
        context.set("trail", [*context.get("trail", []), self.name])
        context.set(self.name, token)
        return {"token": token}


def build_registry(side_effects: AsyncEngine, *, slow: bool) -> WorkflowRegistry:
    """The ``crashy`` workflow: ``s1 -> s2 -> s3 -> s4 -> s5``."""
    definition = WorkflowDefinition(
        name=WORKFLOW,
        version="1.0.0",
        steps={name: Recorded(name, side_effects, slow=slow) for name in STEPS},
        edges=[Edge(a, b) for a, b in zip(STEPS, STEPS[1:], strict=False)],
        initial_step=STEPS[0],
        terminal_steps={STEPS[-1]},
    )
    registry = WorkflowRegistry()
    registry.register_definition(definition)
    return registry


async def main(url: str, count: int) -> None:
    side_effects = create_database_engine(url)
    engine = PersistentExecutionEngine(build_registry(side_effects, slow=True), url=url)
    starts = [asyncio.create_task(engine.start_workflow(WORKFLOW, {"i": i})) for i in range(count)]
    print("started", flush=True)
    await asyncio.gather(*starts)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
