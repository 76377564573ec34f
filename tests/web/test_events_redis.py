"""The SSE feed of an API process sees the events another process commits, over Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

from redis.asyncio import Redis

from flowstar import LocalExecutionEngine, User
from flowstar.db.migrate import upgrade_async
from flowstar.db.store import SQLAlchemyStore
from flowstar.demo_workflows import build_registry
from flowstar.redis.stream_bus import RedisStreamEventBus
from flowstar.web.events import event_messages


async def test_feed_tails_the_redis_stream(tmp_path: Path, redis_server_url: str, unique_prefix: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    await upgrade_async(url)
    clients = [Redis.from_url(redis_server_url), Redis.from_url(redis_server_url)]
    worker, api = (
        LocalExecutionEngine(
            build_registry(), SQLAlchemyStore.from_url(url), RedisStreamEventBus(c, key_prefix=unique_prefix)
        )
        for c in clients
    )
    bob = User(id="bob", groups=frozenset({"managers"}), tenant_id="acme")

    async def first_task_event() -> str:
        async for message in event_messages(api, bob):
            if message.event == "HumanTaskCreated":
                return str(message.data)
        raise AssertionError("feed ended")

    try:
        feed = asyncio.create_task(first_task_event())
        # The tail starts at "now", so an event committed before its first read is not seen:
        # start instances until one reaches the feed (bounded), then check it is one of them.
        started = []
        for _ in range(20):
            started.append(
                await worker.start_workflow("expense_approval", {"amount": 5000, "manager": "bob"}, tenant_id="acme")
            )
            done, _pending = await asyncio.wait({feed}, timeout=0.5)
            if done:
                break
        data = feed.result()
        assert any(str(i.id) in data for i in started)
    finally:
        await worker.close()
        await api.close()
        for c in clients:
            await c.aclose()
