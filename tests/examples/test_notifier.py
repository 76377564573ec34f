"""examples/notifier.py: started in-process against real Redis, it sends a new task's notification."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType

import pytest
from redis.asyncio import Redis

from flowstar.events import HumanTaskCreated
from flowstar.redis import LoggingSender, Notification, RedisStreamEventBus


class RecordingSender(LoggingSender):
    """The example's LoggingSender, also keeping what it sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: asyncio.Queue[Notification] = asyncio.Queue()

    async def send(self, note: Notification) -> None:
        await super().send(note)
        self.sent.put_nowait(note)


@pytest.fixture
async def redis_url(redis_server_url: str, unique_prefix: str):
    url = f"{redis_server_url}/9"
    yield url
    client = Redis.from_url(url)
    keys = [key async for key in client.scan_iter(match=f"{unique_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_notifier_sends_a_new_task_notification(
    redis_url: str, unique_prefix: str, load_example: Callable[[str], ModuleType]
) -> None:
    example = load_example("notifier")
    sender = RecordingSender()
    ready = asyncio.Event()
    prefix = f"{unique_prefix}:"
    notifier = asyncio.create_task(example.run(redis_url, sender=sender, key_prefix=prefix, ready=ready))
    bus = RedisStreamEventBus.from_url(redis_url, key_prefix=prefix)
    try:
        await asyncio.wait_for(ready.wait(), 5)
        await bus.emit(
            HumanTaskCreated(
                instance_id="inst-1",
                workflow_name="expense_approval",
                workflow_version="1.0.0",
                timestamp=datetime.now(UTC),
                task_id="task-1",
                step_name="manager_approval",
                task_title="Approve expense",
                assignee="bob",
            )
        )
        note = await asyncio.wait_for(sender.sent.get(), 5)
    finally:
        notifier.cancel()
        with pytest.raises(asyncio.CancelledError):
            await notifier
        await bus.close()

    assert (note.audience, note.recipient, note.kind) == ("user", "bob", "task_created")
    assert note.task_id == "task-1"
    assert note.title == "Approve expense"
