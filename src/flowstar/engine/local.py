"""``LocalExecutionEngine``: the engine with an inline dispatcher, in one process."""

from __future__ import annotations

from flowstar.backends.inline import InlineDispatcher
from flowstar.backends.memory import MemoryStore
from flowstar.engine.bus import EventBus
from flowstar.engine.clock import Clock
from flowstar.engine.core import DEFAULT_MAX_PAYLOAD_BYTES, Engine
from flowstar.engine.ports import Store
from flowstar.model.registry import WorkflowRegistry


def _store(persistence: object) -> Store:
    if persistence is None:
        return MemoryStore()
    if hasattr(persistence, "commit") and hasattr(persistence, "load_instance"):
        return persistence  # type: ignore[return-value]
    from flowstar.db.engine import coerce_store

    return coerce_store(persistence)


__all__ = ["LocalExecutionEngine"]


class LocalExecutionEngine(Engine):
    """In-process async execution engine.

    Args:
        registry: workflow registry containing definitions (None: ``default_registry()``).
        persistence: where state lives: in memory when omitted; a store; or (with the ``db``
            extra) an SQLAlchemy async engine, session, session factory, repository or URL.
        event_bus: receives every event after its commit.
        clock: time source; pass a ``ManualClock`` to drive timers in tests.
    """

    def __init__(
        self,
        registry: WorkflowRegistry | None = None,
        persistence: Store | object | None = None,
        event_bus: EventBus | None = None,
        *,
        clock: Clock | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        super().__init__(
            registry,
            _store(persistence),
            InlineDispatcher(clock),
            event_bus=event_bus,
            clock=clock,
            max_payload_bytes=max_payload_bytes,
        )
