"""docs/events.md: events on a Redis Stream, read by two consumer groups.

Run it with a Redis server: ``FLOWSTAR_REDIS_URL=redis://127.0.0.1:6379/0 python
docs/examples/events_stream_bus.py`` (without the variable it starts the embedded Redis).
"""

from __future__ import annotations

import asyncio

from flowstar import EventBus, LocalExecutionEngine
from flowstar.events import HumanTaskCreated, WorkflowCompleted, WorkflowEvent
from flowstar.settings import FlowstarSettings

from tutorial_human_task import registry

NEEDS = ("redis",)


async def events_of_one_report() -> list[WorkflowEvent]:
    """The events of one expense report, from its start to its payment."""
    events: list[WorkflowEvent] = []
    bus = EventBus()

    async def keep(event: WorkflowEvent) -> None:
        events.append(event)

    bus.add_handler(keep)
    engine = LocalExecutionEngine(registry, event_bus=bus)
    report = await engine.start_workflow("expense_report", {"amount": "1200"})
    (task,) = await engine.get_tasks(instance_id=report.id)
    await engine.complete_task(task.id, "bob", {"decision": "approved"})
    await engine.close()
    return events


async def main() -> None:
    settings = FlowstarSettings.from_env()
    events = await events_of_one_report()
    # --8<-- [start:bus]
    from flowstar.redis import RedisStreamEventBus, connect_redis

    handle = await connect_redis(settings.redis_url)  # None: the embedded Redis
    bus = RedisStreamEventBus(handle.client, key_prefix=f"{settings.queue}:")  # stream "<queue>:flowstar:events"
    await bus.ensure_group("audit")  # before publishing: a new group starts at the end
    await bus.ensure_group("mailer")
    await bus.publish(events)  # one round trip for a batch
    # --8<-- [end:bus]

    audit: list[str] = []
    mails: list[str] = []

    async def record(event: WorkflowEvent) -> None:
        audit.append(event.type)

    async def send_mail(event: WorkflowEvent) -> None:
        mails.append(event.type)

    # --8<-- [start:consume]
    # 1. Events, acknowledged automatically (the seed's API)
    async for event in bus.subscribe("audit", types=[HumanTaskCreated, WorkflowCompleted]):
        await record(event)
        if isinstance(event, WorkflowCompleted):
            break  # a real consumer runs until it is stopped

    # 2. Deliveries, acknowledged explicitly
    async for delivery in bus.deliveries("mailer", consumer="mailer-1"):
        await send_mail(delivery.event)
        await delivery.ack()
        if isinstance(delivery.event, WorkflowCompleted):
            break
    # --8<-- [end:consume]

    assert audit == ["HumanTaskCreated", "WorkflowCompleted"]
    assert mails == [event.type for event in events]  # every event, in commit order
    assert await bus.pending_count("mailer") == 0
    assert await bus.pending_count("audit") == 1  # `break` left the last one unacknowledged
    await handle.client.delete(f"{settings.queue}:flowstar:events")
    await bus.close()
    await handle.close()


if __name__ == "__main__":
    asyncio.run(main())
