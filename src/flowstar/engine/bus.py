"""The in-process event bus: handlers are called, and subscribers iterate, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import structlog

from flowstar.model.events import WorkflowEvent

__all__ = ["EventBus", "EventHandler"]

EventHandler = Callable[[WorkflowEvent], Awaitable[None]]
log = structlog.get_logger("flowstar.events")


def _type_filter(types: Iterable[str | type[WorkflowEvent]] | None) -> frozenset[str] | None:
    if types is None:
        return None
    return frozenset(t if isinstance(t, str) else t.__name__ for t in types)


class EventBus:
    """Receives every event after its transition was committed.

    Subclass and override ``emit`` (as in the reference documents), or register handlers
    with ``add_handler``, or iterate with ``async for event in bus.subscribe()``.  A handler
    that raises is logged and skipped: it never breaks the workflow.
    """

    def __init__(self) -> None:
        self._handlers: list[tuple[EventHandler, frozenset[str] | None]] = []
        self._queues: list[tuple[asyncio.Queue[WorkflowEvent], frozenset[str] | None]] = []

    def add_handler(
        self, handler: EventHandler, types: Iterable[str | type[WorkflowEvent]] | None = None
    ) -> Callable[[], None]:
        """Call ``handler`` for each event (of ``types``, if given); returns an unsubscriber."""
        entry = (handler, _type_filter(types))
        self._handlers.append(entry)
        return lambda: self._handlers.remove(entry)

    async def emit(self, event: WorkflowEvent) -> None:
        """Deliver ``event`` to handlers and subscribers."""
        for handler, types in list(self._handlers):
            if types is not None and event.type not in types:
                continue
            try:
                await handler(event)
            except Exception:
                # structlog's first parameter is named ``event``: the type goes under another key.
                log.exception("event handler failed", handler=repr(handler), event_type=event.type)
        for queue, types in self._queues:
            if types is None or event.type in types:
                queue.put_nowait(event)

    async def subscribe(
        self, group: str | None = None, types: Iterable[str | type[WorkflowEvent]] | None = None
    ) -> AsyncIterator[WorkflowEvent]:
        """Yield events emitted from now on (``group`` is accepted for API parity)."""
        entry: tuple[asyncio.Queue[WorkflowEvent], frozenset[str] | None] = (asyncio.Queue(), _type_filter(types))
        self._queues.append(entry)
        try:
            while True:
                yield await entry[0].get()
        finally:
            self._queues.remove(entry)

    async def close(self) -> None:
        """Release resources (nothing to release in memory)."""
