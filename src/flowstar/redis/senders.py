"""Sending notifications to people: the ``Sender`` protocol and the durable delivery loop.

``deliver_notifications`` reads the event stream through its own consumer group, so a
notification is sent at least once even if the sending process was down when the event
happened; pub/sub (``RedisNotifier``) is only for live screens.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from flowstar.redis.notifications import NOTIFYING_TYPES, Notification, notifications_for

if TYPE_CHECKING:
    from flowstar.redis.stream_bus import RedisStreamEventBus

__all__ = ["DEFAULT_NOTIFIER_GROUP", "LoggingSender", "Sender", "deliver_notifications"]

DEFAULT_NOTIFIER_GROUP = "flowstar-notifier"

log = structlog.get_logger("flowstar.notifications")


class Sender(Protocol):
    """Delivers one notification to its recipient (e-mail, chat, ...).

    Raise to have the event retried: it stays pending and is delivered again after the
    bus's ``claim_idle_ms``, and dead-lettered after ``max_deliveries``.
    """

    async def send(self, note: Notification) -> None:
        """Deliver ``note``."""


class LoggingSender:
    """A ``Sender`` that writes each notification to the structlog log (for development)."""

    def __init__(self, logger: Any | None = None) -> None:
        self.log = logger if logger is not None else structlog.get_logger("flowstar.notifications.sender")

    async def send(self, note: Notification) -> None:
        """Log ``note`` with its recipient and the instance and task it is about."""
        self.log.info(
            "notification",
            audience=note.audience,
            recipient=note.recipient,
            kind=note.kind,
            message=note.message,
            instance_id=note.instance_id,
            workflow=note.workflow_name,
            task_id=note.task_id,
            step=note.step_name,
        )


async def deliver_notifications(
    bus: RedisStreamEventBus,
    sender: Sender,
    *,
    group: str = DEFAULT_NOTIFIER_GROUP,
    consumer: str | None = None,
    start: str = "$",
    ready: asyncio.Event | None = None,
) -> None:
    """Send the notifications of the stream's events through ``sender`` until the bus closes.

    Each event is acknowledged once all its notifications were sent.  If ``sender`` raises,
    the event is left pending and retried later, so a recipient may get a notification
    twice but never silently none.

    Args:
        bus: The stream to read.
        sender: Where notifications go.
        group: Consumer group; every process of one notifier service shares it.
        consumer: Consumer name (stable across restarts to resume at once).
        start: Where a new group starts (``"$"``: from now on).
        ready: Set once the group exists, i.e. no event published from then on is missed.
    """
    await bus.ensure_group(group, start)
    if ready is not None:
        ready.set()
    async with contextlib.aclosing(bus.deliveries(group, consumer=consumer, types=NOTIFYING_TYPES)) as stream:
        async for delivery in stream:
            try:
                for note in notifications_for(delivery.event):
                    await sender.send(note)
            except Exception:
                log.exception(
                    "sending a notification failed; the event will be retried",
                    entry_id=delivery.entry_id,
                    event_type=delivery.event.type,
                    instance_id=delivery.event.instance_id,
                    deliveries=delivery.delivery_count,
                )
                continue
            await delivery.ack()
