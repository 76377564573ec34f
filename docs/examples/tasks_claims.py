"""docs/tasks.md: claims, comments, a reassignment and the audit trail they leave."""

from __future__ import annotations

import asyncio

# --8<-- [start:example]
from flowstar import LocalExecutionEngine, User, WorkflowDefinition, WorkflowRegistry

from tasks_candidates import ReviewContract


async def example() -> None:
    registry = WorkflowRegistry()
    registry.register_definition(
        WorkflowDefinition(
            name="contract",
            version="1.0.0",
            steps={"review": ReviewContract(name="review")},
            edges=[],
            initial_step="review",
            terminal_steps={"review"},
        )
    )
    engine = LocalExecutionEngine(registry)
    started = await engine.start_workflow("contract", {"reviewers": {"users": ["erik"]}}, tenant_id="acme")
    (task,) = await engine.get_tasks(instance_id=started.id)

    lena = User(id="lena", groups=frozenset({"legal"}), tenant_id="acme")
    admin = User(id="root", tenant_id="acme", is_admin=True)
    await engine.claim_task(task.id, user=lena)  # now lena's to complete
    await engine.comment_task(task.id, "Clause 7 needs a look", user=lena)
    await engine.reassign_task(task.id, "erik", reason="he wrote clause 7", user=lena)
    await engine.complete_task(task.id, data={}, user=User(id="erik", tenant_id="acme"))

    trail = await engine.task_audit(task.id, user=admin)
    assert [(e.action, e.actor) for e in trail] == [
        ("created", None),
        ("claimed", "lena"),
        ("commented", "lena"),
        ("reassigned", "lena"),
        ("completed", "erik"),
    ]
    assert trail[2].details == {"text": "Clause 7 needs a look"}
    assert trail[3].details["reason"] == "he wrote clause 7"
    await engine.close()


# --8<-- [end:example]


async def main() -> None:
    await example()


if __name__ == "__main__":
    asyncio.run(main())
