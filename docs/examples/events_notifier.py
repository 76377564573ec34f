"""docs/events.md: live notifications on Redis pub/sub, for a user and their groups."""

from __future__ import annotations

import asyncio

from flowstar import EventBus, LocalExecutionEngine
from flowstar.redis import RedisNotifier, connect_redis
from flowstar.settings import FlowstarSettings

from tutorial_human_task import registry

NEEDS = ("redis",)


async def main() -> None:
    settings = FlowstarSettings.from_env()
    handle = await connect_redis(settings.redis_url)
    notifier = RedisNotifier(handle.client, channel_prefix=f"{settings.queue}:notify:")
    engine = LocalExecutionEngine(registry, event_bus=EventBus())
    notifier.attach(engine.event_bus)  # publish what this process's engine emits
    received: list[str] = []

    async def listen() -> None:
        # --8<-- [start:listen]
        async for note in notifier.listen(user_id="bob", groups=["managers"]):
            print(note.message)  # "New task 'Review an expense report' in expense_report"
            # --8<-- [end:listen]
            received.append(note.message)
            return

    listener = asyncio.create_task(listen())
    channel = notifier.channel("group", "managers")
    async with asyncio.timeout(10):  # pub/sub keeps nothing: publish once the listener is subscribed
        while not (await handle.client.pubsub_numsub(channel))[0][1]:  # noqa: ASYNC110 - a server-side state
            await asyncio.sleep(0.01)
    await engine.start_workflow("expense_report", {"amount": "1200"})
    await asyncio.wait_for(listener, timeout=10)
    assert received == ["New task 'Review an expense report' in expense_report"]
    await engine.close()
    await handle.close()


if __name__ == "__main__":
    asyncio.run(main())
