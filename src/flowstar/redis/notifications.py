"""Live notifications on Redis pub/sub: "a task for you arrived", "your instance finished".

Events map to small JSON ``Notification`` messages published on channels

* ``flowstar:notify:user:<user id>`` - a task was created for, or reassigned to, the user;
* ``flowstar:notify:group:<group>`` - a task was created for a group (no single assignee);
* both of those when an open task's reminder fires (``task_reminder``);
* ``flowstar:notify:instance:<instance id>`` - the instance started, completed, failed,
  was canceled or retried.

Pub/sub is fire-and-forget: a listener that is not connected misses the message.  That suits
live UI updates.  Anything that must not be lost (e-mail) reads the event stream through a
consumer group instead: see ``flowstar.redis.senders.deliver_notifications``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from typing import Literal

import msgspec
import structlog
from redis.asyncio import Redis

from flowstar.engine.bus import EventBus
from flowstar.model.enums import WorkflowStatus
from flowstar.model.events import (
    HumanTaskCreated,
    HumanTaskEscalated,
    HumanTaskReassigned,
    WorkflowCanceled,
    WorkflowCompleted,
    WorkflowEvent,
    WorkflowFailed,
    WorkflowRetried,
    WorkflowStarted,
)
from flowstar.redis._cancel import raise_if_cancel_requested

__all__ = [
    "DEFAULT_CHANNEL_PREFIX",
    "NOTIFYING_TYPES",
    "Audience",
    "Notification",
    "RedisNotifier",
    "notifications_for",
]

DEFAULT_CHANNEL_PREFIX = "flowstar:notify:"
Audience = Literal["user", "group", "instance"]

log = structlog.get_logger("flowstar.notifications")


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """A message for one user, one group or the watchers of one instance.

    Attributes:
        audience: Who it is for: ``"user"``, ``"group"`` or ``"instance"``.
        recipient: The user id, group name or instance id.
        kind: ``"task_created"``, ``"task_reassigned"``, ``"task_reminder"`` or
            ``"instance_status"``.
        event_type: The event it was made from, e.g. ``"HumanTaskCreated"``.
        message: One line for a person to read.
    """

    audience: Audience
    recipient: str
    kind: str
    event_type: str
    message: str
    instance_id: str
    workflow_name: str
    timestamp: datetime
    tenant_id: str | None = None
    task_id: str | None = None
    step_name: str | None = None
    title: str | None = None
    status: str | None = None
    due_at: datetime | None = None


_STATUS_OF: dict[type[WorkflowEvent], WorkflowStatus] = {
    WorkflowStarted: WorkflowStatus.RUNNING,
    WorkflowRetried: WorkflowStatus.RUNNING,
    WorkflowCompleted: WorkflowStatus.COMPLETED,
    WorkflowFailed: WorkflowStatus.FAILED,
    WorkflowCanceled: WorkflowStatus.CANCELED,
}

NOTIFYING_TYPES: frozenset[str] = frozenset(
    [
        HumanTaskCreated.__name__,
        HumanTaskReassigned.__name__,
        HumanTaskEscalated.__name__,
        *(cls.__name__ for cls in _STATUS_OF),
    ]
)
"""Event types that produce notifications (subscribe with ``types=NOTIFYING_TYPES``)."""


def notifications_for(event: WorkflowEvent) -> list[Notification]:
    """The notifications an event produces (none for most events).

    A new task notifies its assignee and its group (a group member may pick it up); a
    reassigned task notifies the new assignee, or the group when it went back to the group;
    a reminder notifies the task's claimer or assignee and its group (an escalation
    notifies through its reassignment); a status change notifies the instance's channel.
    """
    match event:
        case HumanTaskEscalated(action="reminded"):
            message = f"Reminder: task '{event.task_title or event.step_name}' in {event.workflow_name} is still open"
            reminded: list[tuple[Audience, str | None]] = [("user", event.assignee), ("group", event.assignee_group)]
            return [
                _note(event, audience, who, "task_reminder", message, task_id=event.task_id, step_name=event.step_name)
                for audience, who in reminded
                if who
            ]
        case HumanTaskCreated():
            message = f"New task '{event.task_title}' in {event.workflow_name}"
            audiences: list[tuple[Audience, str | None]] = [("user", event.assignee), ("group", event.assignee_group)]
            return [
                _note(
                    event,
                    audience,
                    recipient,
                    "task_created",
                    message,
                    task_id=event.task_id,
                    step_name=event.step_name,
                    title=event.task_title,
                    due_at=event.due_at,
                )
                for audience, recipient in audiences
                if recipient
            ]
        case HumanTaskReassigned():
            recipient = event.new_assignee or event.assignee_group
            if not recipient:
                return []
            message = f"Task '{event.step_name}' in {event.workflow_name} was assigned to you"
            return [
                _note(
                    event,
                    "user" if event.new_assignee else "group",
                    recipient,
                    "task_reassigned",
                    message,
                    task_id=event.task_id,
                    step_name=event.step_name,
                )
            ]
        case _ if type(event) in _STATUS_OF:
            status = _STATUS_OF[type(event)]
            message = f"{event.workflow_name} instance {event.instance_id} is {status}"
            return [_note(event, "instance", event.instance_id, "instance_status", message, status=str(status))]
    return []


def _note(
    event: WorkflowEvent,
    audience: Audience,
    recipient: str,
    kind: str,
    message: str,
    *,
    task_id: str | None = None,
    step_name: str | None = None,
    title: str | None = None,
    status: str | None = None,
    due_at: datetime | None = None,
) -> Notification:
    return Notification(
        audience=audience,
        recipient=recipient,
        kind=kind,
        event_type=event.type,
        message=message,
        instance_id=event.instance_id,
        workflow_name=event.workflow_name,
        timestamp=event.timestamp,
        tenant_id=event.tenant_id,
        task_id=task_id,
        step_name=step_name,
        title=title,
        status=status,
        due_at=due_at,
    )


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Notification)


class RedisNotifier:
    """Publishes notifications on Redis pub/sub and listens to them.

    Args:
        redis: The client.  ``listen`` takes one connection of its pool per listener.
        channel_prefix: Prepended to ``user:<id>``, ``group:<name>``, ``instance:<id>``.
    """

    def __init__(self, redis: Redis, *, channel_prefix: str = DEFAULT_CHANNEL_PREFIX) -> None:
        self.redis = redis
        self.channel_prefix = channel_prefix

    def channel(self, audience: Audience, recipient: str) -> str:
        """The channel of one user, group or instance."""
        return f"{self.channel_prefix}{audience}:{recipient}"

    async def publish(self, notes: Iterable[Notification]) -> int:
        """Publish notifications (one round trip); returns how many listeners received them."""
        batch = list(notes)
        if not batch:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for note in batch:
                pipe.publish(self.channel(note.audience, note.recipient), _encoder.encode(note))
            receivers = await pipe.execute()
        return sum(int(n) for n in receivers)

    async def publish_event(self, event: WorkflowEvent) -> int:
        """Publish the notifications ``event`` produces."""
        return await self.publish(notifications_for(event))

    def attach(self, bus: EventBus) -> Callable[[], None]:
        """Publish notifications for every event ``bus`` emits in this process.

        Returns:
            A function that detaches again.
        """

        async def handler(event: WorkflowEvent) -> None:
            await self.publish_event(event)

        return bus.add_handler(handler, types=NOTIFYING_TYPES)

    async def listen(
        self,
        *,
        user_id: str | None = None,
        groups: Iterable[str] = (),
        instance_ids: Iterable[str] = (),
        poll_s: float = 1.0,
    ) -> AsyncIterator[Notification]:
        """Yield notifications for a user, their groups and watched instances, as they come.

        Only messages published after the subscription took effect arrive (pub/sub keeps
        nothing).  Leave the loop to unsubscribe.

        Args:
            user_id: The user whose channel to listen to.
            groups: Group channels to listen to.
            instance_ids: Instance channels to listen to.
            poll_s: Longest wait for one message before checking again (bounds how long a
                cancelled listener lingers).

        Raises:
            ValueError: No channel was given.
        """
        channels = [self.channel("user", user_id)] if user_id else []
        channels += [self.channel("group", g) for g in groups]
        channels += [self.channel("instance", i) for i in instance_ids]
        if not channels:
            raise ValueError("listen() needs a user_id, groups or instance_ids")
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*channels)
            while True:
                raise_if_cancel_requested()
                message = await pubsub.get_message(timeout=poll_s)
                if message is None or message.get("type") != "message":
                    continue
                try:
                    yield _decoder.decode(message["data"])
                except msgspec.DecodeError:
                    log.warning("undecodable notification skipped", channel=message.get("channel"))
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # annotated only from redis-py 8.2
