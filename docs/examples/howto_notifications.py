"""How-to: notify people of new tasks, in process and reliably through the event stream."""

from __future__ import annotations

import asyncio

from flowstar import EventBus, LocalExecutionEngine
from flowstar.settings import FlowstarSettings

from tutorial_human_task import registry

# isort: split
# --8<-- [start:sender]
from flowstar.redis import Notification, RedisStreamEventBus, connect_redis, deliver_notifications


class ChatSender:
    """A Sender: any object with ``async def send(note)``. Raise to have the event retried."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def send(self, note: Notification) -> None:
        self.sent.append(note)  # post to the chat service's API here


# --8<-- [end:sender]


NEEDS = ("redis",)


async def in_process() -> list[str]:
    # --8<-- [start:handler]
    from flowstar.events import HumanTaskCreated, WorkflowEvent

    bus = EventBus()
    outbox: list[str] = []

    async def tell_the_group(event: WorkflowEvent) -> None:
        assert isinstance(event, HumanTaskCreated)
        outbox.append(f"to {event.assignee_group}: {event.task_title}")  # e-mail, chat, ...

    bus.add_handler(tell_the_group, types=[HumanTaskCreated])
    engine = LocalExecutionEngine(registry, event_bus=bus)
    await engine.start_workflow("expense_report", {"amount": "1200"})
    # --8<-- [end:handler]
    await engine.close()
    return outbox


async def main() -> None:
    assert await in_process() == ["to managers: Review an expense report"]

    settings = FlowstarSettings.from_env()
    handle = await connect_redis(settings.redis_url)
    # --8<-- [start:deliver]
    stream = RedisStreamEventBus(handle.client, key_prefix=f"{settings.queue}:")
    sender, ready = ChatSender(), asyncio.Event()
    notifier = asyncio.create_task(deliver_notifications(stream, sender, ready=ready))
    await ready.wait()  # its consumer group exists: nothing published from now on is missed

    engine = LocalExecutionEngine(registry, event_bus=stream)  # SAQ workers publish there too
    await engine.start_workflow("expense_report", {"amount": "1200"})
    # --8<-- [end:deliver]
    async with asyncio.timeout(10):
        while not any(note.kind == "task_created" for note in sender.sent):  # noqa: ASYNC110 - read by another task
            await asyncio.sleep(0.01)
    created = [note for note in sender.sent if note.kind == "task_created"]
    assert [(n.audience, n.recipient, n.title) for n in created] == [("group", "managers", "Review an expense report")]
    await engine.close()
    await stream.close()  # ends deliver_notifications
    await notifier
    await handle.client.delete(f"{settings.queue}:flowstar:events")
    await handle.close()


if __name__ == "__main__":
    asyncio.run(main())
