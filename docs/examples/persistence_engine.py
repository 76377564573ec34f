"""docs/persistence.md and the persistence how-to: migrate, start, stop, start again, recover.

Run it against a database of yours:
``FLOWSTAR_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/app python docs/examples/persistence_engine.py``
(without the variable it uses the SQLite file ``.flowstar/flowstar.db``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from flowstar import WorkflowStatus
from flowstar.settings import FlowstarSettings

from tutorial_human_task import registry

NEEDS = ("postgresql",)


async def main() -> None:
    url = FlowstarSettings.from_env().database_url
    # --8<-- [start:migrate]
    from flowstar.db.migrate import upgrade_async

    await upgrade_async(url)  # what `flowstar db upgrade` does; a no-op when up to date
    # --8<-- [end:migrate]

    # --8<-- [start:engine]
    from flowstar.db import PersistentExecutionEngine

    engine = PersistentExecutionEngine(registry, url=url)
    # or: engine=create_database_engine(url) | session=AsyncSession | session_factory=async_sessionmaker
    async with engine:  # recovers what a previous process left running
        instance = await engine.start_workflow(
            "expense_report", {"amount": "1200"}, tenant_id="acme", created_by="carol"
        )
        later = await engine.start_workflow(
            "expense_report", {"amount": "20"}, start_at=datetime.now(UTC) + timedelta(hours=1)
        )
    # --8<-- [end:engine]
    assert instance.status is WorkflowStatus.WAITING

    # --8<-- [start:restart]
    # Another process, or the same one after a deploy: everything is in the database.
    async with PersistentExecutionEngine(registry, url=url) as engine:  # calls recover()
        (task,) = await engine.get_tasks(instance_id=instance.id, tenant_id="acme")
        done = await engine.complete_task(task.id, "bob", {"decision": "approved"})
        assert done.status is WorkflowStatus.COMPLETED and done.context.get("paid") == 1200.0
        # or explicitly: the delayed start is the one activation waiting to be dispatched
        dispatched = await engine.recover()
        assert dispatched == 1
        waiting = await engine.get_instance(later.id)
        assert waiting.context.get("amount") == "20"  # its first step runs in an hour
    # --8<-- [end:restart]


if __name__ == "__main__":
    asyncio.run(main())
