"""The SSE feed ``{prefix}/events``: live engine events, only those the caller may see.

Each message's ``event:`` is the event type (``HumanTaskCreated`` ...) and ``data:`` the event
as JSON.  Events come from the engine's in-process event bus; an engine built without one gets
a plain ``EventBus`` when the first client connects (events are only built while somebody
listens, so the hot path pays nothing otherwise).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import get
from litestar.response import ServerSentEvent, ServerSentEventMessage

from flowstar.engine.bus import EventBus
from flowstar.engine.core import Engine
from flowstar.model.access import User
from flowstar.model.errors import WorkflowsError
from flowstar.model.events import WorkflowEvent
from flowstar.web.auth import require_user
from flowstar.web.deps import CurrentUser, EngineDep

__all__ = ["event_messages", "events_route", "may_see"]


def _bus(engine: Engine) -> EventBus:
    if engine.event_bus is None:
        engine.event_bus = EventBus()
    return engine.event_bus


async def may_see(engine: Engine, user: User | None, event: WorkflowEvent) -> bool:
    """Whether ``user`` may see ``event``: same tenant, and for a task event, the user's task."""
    if user is None:
        return True
    if event.tenant_id != user.tenant_id:
        return False
    task_id = getattr(event, "task_id", None)
    if task_id is None or user.is_admin:
        return True
    from flowstar.web.api import visible_task

    try:
        await visible_task(engine, user, str(task_id))
    except WorkflowsError:
        return False
    return True


async def event_messages(engine: Engine, user: User | None) -> AsyncIterator[ServerSentEventMessage]:
    """The SSE messages of the events ``user`` may see, from now on."""
    async for event in _bus(engine).subscribe():
        if await may_see(engine, user, event):
            yield ServerSentEventMessage(event=event.type, data=msgspec.json.encode(event).decode())


@get("/events", summary="Live events (Server-Sent Events)", guards=[require_user])
async def events_route(engine: EngineDep, current_user: CurrentUser) -> ServerSentEvent:
    """A ``text/event-stream`` of the events the caller may see."""
    stream: Any = event_messages(engine, current_user)
    return ServerSentEvent(stream)
