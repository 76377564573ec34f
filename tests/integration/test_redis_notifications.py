"""Notifications: the event mapping, pub/sub publish and listen, durable delivery, SMTP."""

from __future__ import annotations

import asyncio
import contextlib
import email
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from flowstar.events import (
    HumanTaskCreated,
    HumanTaskReassigned,
    StepCompleted,
    WorkflowCompleted,
    WorkflowFailed,
)
from flowstar.redis import (
    Notification,
    RedisNotifier,
    RedisStreamEventBus,
    deliver_notifications,
    notifications_for,
)

pytestmark = pytest.mark.integration

TIMEOUT = 5.0
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
COMMON: dict[str, Any] = {"workflow_name": "expense_approval", "workflow_version": "1.0.0", "timestamp": NOW}


def task_created(assignee: str | None = "bob", group: str | None = None, n: int = 1) -> HumanTaskCreated:
    return HumanTaskCreated(
        instance_id=f"inst-{n}",
        task_id=f"task-{n}",
        step_name="manager_approval",
        task_title="Approve expense",
        assignee=assignee,
        assignee_group=group,
        **COMMON,
    )


async def wait_until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll Redis state (nothing signals it) for up to TIMEOUT seconds."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.01)


@pytest.fixture
async def redis(redis_server_url: str, unique_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(f"{redis_server_url}/9")
    yield client
    keys = [key async for key in client.scan_iter(match=f"{unique_prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def notifier(redis: Redis, unique_prefix: str) -> RedisNotifier:
    return RedisNotifier(redis, channel_prefix=f"{unique_prefix}:notify:")


class Listener:
    """Runs ``notifier.listen(...)`` in a task and collects what arrives."""

    def __init__(self, notifier: RedisNotifier, **channels: Any) -> None:
        self.notifier = notifier
        self.received: asyncio.Queue[Notification] = asyncio.Queue()
        self.task = asyncio.create_task(self._run(channels))

    async def _run(self, channels: dict[str, Any]) -> None:
        async for note in self.notifier.listen(poll_s=0.05, **channels):
            self.received.put_nowait(note)

    async def subscribed_to(self, *channels: str) -> None:
        async def all_subscribed() -> bool:
            counts = dict(await self.notifier.redis.pubsub_numsub(*channels))
            return all(counts.get(c.encode(), 0) >= 1 for c in channels)

        await wait_until(all_subscribed)

    async def next(self) -> Notification:
        return await asyncio.wait_for(self.received.get(), TIMEOUT)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


# -- the mapping (pure) -------------------------------------------------------------------


def test_new_task_notifies_its_assignee_and_its_group() -> None:
    notes = notifications_for(task_created(assignee="bob", group="managers"))
    assert [(n.audience, n.recipient, n.kind) for n in notes] == [
        ("user", "bob", "task_created"),
        ("group", "managers", "task_created"),
    ]
    assert notes[0].task_id == "task-1"
    assert notes[0].title == "Approve expense"


def test_reassigned_task_notifies_the_new_assignee_or_the_group() -> None:
    to_alice = HumanTaskReassigned(
        instance_id="i", task_id="t", step_name="s", old_assignee="bob", new_assignee="alice", **COMMON
    )
    back_to_group = HumanTaskReassigned(
        instance_id="i",
        task_id="t",
        step_name="s",
        old_assignee="bob",
        new_assignee=None,
        assignee_group="managers",
        **COMMON,
    )
    assert [(n.audience, n.recipient) for n in notifications_for(to_alice)] == [("user", "alice")]
    assert [(n.audience, n.recipient) for n in notifications_for(back_to_group)] == [("group", "managers")]


def test_status_changes_notify_the_instance_and_other_events_nobody() -> None:
    [done] = notifications_for(WorkflowCompleted(instance_id="i-9", **COMMON))
    [failed] = notifications_for(WorkflowFailed(instance_id="i-9", error="boom", **COMMON))
    assert (done.audience, done.recipient, done.status) == ("instance", "i-9", "completed")
    assert failed.status == "failed"
    assert notifications_for(StepCompleted(instance_id="i", step_name="s", step_type="machine", **COMMON)) == []


# -- pub/sub ------------------------------------------------------------------------------


async def test_listener_gets_notes_for_its_user_and_groups_only(notifier: RedisNotifier) -> None:
    listener = Listener(notifier, user_id="bob", groups=["managers"])
    try:
        await listener.subscribed_to(notifier.channel("user", "bob"), notifier.channel("group", "managers"))
        await notifier.publish_event(task_created(assignee="alice", n=1))  # not for bob
        receivers = await notifier.publish_event(task_created(assignee="bob", group="managers", n=2))
        assert receivers == 2

        first, second = await listener.next(), await listener.next()
        assert {(first.audience, first.recipient), (second.audience, second.recipient)} == {
            ("user", "bob"),
            ("group", "managers"),
        }
        assert first.task_id == second.task_id == "task-2"
        assert listener.received.empty()
    finally:
        await listener.stop()


async def test_attached_notifier_publishes_what_the_bus_emits(
    notifier: RedisNotifier, redis: Redis, unique_prefix: str
) -> None:
    bus = RedisStreamEventBus(redis, key_prefix=f"{unique_prefix}:")
    detach = notifier.attach(bus)
    listener = Listener(notifier, instance_ids=["inst-7"])
    try:
        await listener.subscribed_to(notifier.channel("instance", "inst-7"))
        await bus.emit(WorkflowCompleted(instance_id="inst-7", **COMMON))
        note = await listener.next()
        assert (note.kind, note.status, note.instance_id) == ("instance_status", "completed", "inst-7")
    finally:
        detach()
        await listener.stop()
        await bus.close()


async def test_listen_needs_a_channel(notifier: RedisNotifier) -> None:
    with pytest.raises(ValueError, match="needs a user_id"):
        await anext(notifier.listen())


# -- durable delivery ---------------------------------------------------------------------


class FlakySender:
    """Fails the first send, then records."""

    def __init__(self) -> None:
        self.attempts = 0
        self.sent: asyncio.Queue[Notification] = asyncio.Queue()

    async def send(self, note: Notification) -> None:
        self.attempts += 1
        if self.attempts == 1:
            raise ConnectionError("mail server down")
        self.sent.put_nowait(note)


async def test_failed_send_is_retried_and_acknowledged_after_success(redis: Redis, unique_prefix: str) -> None:
    bus = RedisStreamEventBus(redis, key_prefix=f"{unique_prefix}:", claim_idle_ms=100, block_ms=50)
    sender = FlakySender()
    ready = asyncio.Event()
    service = asyncio.create_task(deliver_notifications(bus, sender, group="mailer", ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), TIMEOUT)
        await bus.emit(task_created(assignee="bob"))
        note = await asyncio.wait_for(sender.sent.get(), TIMEOUT)
        assert (note.recipient, sender.attempts) == ("bob", 2)
        await wait_until(lambda: _nothing_pending(bus, "mailer"))
    finally:
        await bus.close()
        await asyncio.wait_for(service, TIMEOUT)


async def _nothing_pending(bus: RedisStreamEventBus, group: str) -> bool:
    return await bus.pending_count(group) == 0


# -- SMTP (aiosmtplib against a local aiosmtpd server) ------------------------------------


async def test_smtp_sender_mails_the_notification() -> None:
    from aiosmtpd import smtp  # the dev extra's test server (aiosmtplib comes with flowstar[notify])

    from flowstar.redis.smtp import SmtpSender

    received: asyncio.Queue[Any] = asyncio.Queue()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.put_nowait(envelope)
            return "250 OK"

    server = await asyncio.get_running_loop().create_server(lambda: smtp.SMTP(Handler()), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        book = {"bob": "bob@example.com"}
        sender = SmtpSender(
            lambda note: [book[note.recipient]] if note.audience == "user" else [],
            from_address="flowstar@example.com",
            hostname="127.0.0.1",
            port=port,
            start_tls=False,
        )
        [to_bob, to_group] = notifications_for(task_created(assignee="bob", group="managers"))
        await sender.send(to_group)  # no address for the group: nothing is sent
        await sender.send(to_bob)
        envelope = await asyncio.wait_for(received.get(), TIMEOUT)
    finally:
        server.close()
        await server.wait_closed()

    assert envelope.rcpt_tos == ["bob@example.com"]
    message = email.message_from_bytes(envelope.content)
    assert message["Subject"] == "New task 'Approve expense' in expense_approval"
    assert "Task: task-1 (manager_approval)" in message.get_payload()
    assert received.empty()
