"""``PersistentExecutionEngine``: the local engine with its state in a SQL database."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from flowstar.backends.inline import InlineDispatcher
from flowstar.db.connect import create_database_engine
from flowstar.db.store import SQLAlchemyStore
from flowstar.engine.bus import EventBus
from flowstar.engine.clock import Clock
from flowstar.engine.core import DEFAULT_MAX_PAYLOAD_BYTES, Engine
from flowstar.model.registry import WorkflowRegistry

__all__ = ["PersistentExecutionEngine", "coerce_store"]


def _engine_of(source: Any) -> AsyncEngine:
    if isinstance(source, AsyncEngine):
        return source
    if isinstance(source, AsyncConnection):
        return source.engine
    if isinstance(source, AsyncSession):
        session_bind: Any = source.bind
        if session_bind is None:
            raise TypeError("the session is not bound to an engine")
        return _engine_of(session_bind)
    if isinstance(source, async_sessionmaker):
        bind = source.kw.get("bind")
        if bind is None:
            raise TypeError("the session factory has no bind=engine")
        return _engine_of(bind)
    session = getattr(source, "session", None)  # a repository
    if session is not None:
        return _engine_of(session)
    raise TypeError(f"cannot build a store from {type(source).__name__}")


def coerce_store(source: Any, *, outbox: bool = False) -> SQLAlchemyStore:
    """A ``SQLAlchemyStore`` for an engine, session, session factory, repository or URL.

    A given session's own transaction is not used: the store opens a connection from the
    session's engine per unit of work, so concurrent workflows never share one.
    """
    if isinstance(source, SQLAlchemyStore):
        return source
    if isinstance(source, str):
        return SQLAlchemyStore(create_database_engine(source), outbox=outbox, owns_engine=True)
    return SQLAlchemyStore(_engine_of(source), outbox=outbox)


class PersistentExecutionEngine(Engine):
    """Execution engine with database persistence; steps run in this process.

    A drop-in replacement for ``LocalExecutionEngine`` that commits every step outcome.
    Give it a ``session``, a ``session_factory``, an ``engine`` or a ``url``.  Use it as an
    async context manager (or call ``recover()``) so that instances that were running when
    the previous process stopped resume.
    """

    def __init__(
        self,
        registry: WorkflowRegistry | None = None,
        session: AsyncSession | None = None,
        event_bus: EventBus | None = None,
        *,
        session_factory: async_sessionmaker[AsyncSession] | None = None,
        engine: AsyncEngine | None = None,
        url: str | None = None,
        clock: Clock | None = None,
        outbox: bool = False,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        sources = [s for s in (session, session_factory, engine, url) if s is not None]
        if len(sources) != 1:
            raise TypeError("give exactly one of session, session_factory, engine or url")
        self.store_sql = coerce_store(sources[0], outbox=outbox)
        self._dispatcher = InlineDispatcher(clock)
        super().__init__(
            registry,
            self.store_sql,
            self._dispatcher,
            event_bus=event_bus,
            clock=clock,
            max_payload_bytes=max_payload_bytes,
        )

    def get_running_instances(self) -> list[UUID]:
        """Ids of instances with a step executing in this process right now."""
        return [UUID(i) for i in self._dispatcher.running_instances()]
