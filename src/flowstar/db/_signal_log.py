"""The SQL store's signal log: record, search and finish the delivery of signals and events.

A part of ``SQLAlchemyStore`` (its base class), kept apart to keep the store small; the
statements themselves are built in ``_signals``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from flowstar.db import _signals
from flowstar.db._errors import translating
from flowstar.db._parts import StorePart
from flowstar.db._rows import uuid_of
from flowstar.model.state import SignalEntry

__all__ = ["SignalLog"]


class SignalLog(StorePart):
    """Signal-log methods of ``SQLAlchemyStore``; they take turns like its other units of work."""

    @translating("log the signal", write=True)
    async def record_signal(self, entry: SignalEntry) -> None:
        """Log a signal sent or an event reported (undelivered until ``mark_delivered``)."""
        # One statement: autocommitted on PostgreSQL (one round trip, no BEGIN/COMMIT).
        async with self._turn(), self._autocommit.begin() as conn:
            await conn.execute(_signals.INSERT_SIGNAL, [_signals.signal_row(entry)])

    @translating("finish the signal's delivery", write=True)
    async def mark_delivered(self, entry_id: str, at: datetime) -> None:
        """Every instance that waited for the entry when it was logged has been woken."""
        c = _signals.signals.c
        statement = update(_signals.signals).where(c.id == uuid_of(entry_id)).values(delivered_at=at)
        async with self._turn(), self._autocommit.begin() as conn:
            await conn.execute(statement)

    @translating("read the signal log")
    async def undelivered_signals(self, recorded_before: datetime, limit: int = 500) -> list[SignalEntry]:
        """Entries logged before ``recorded_before`` whose delivery never finished, oldest first."""
        query = _signals.undelivered(recorded_before, limit)
        async with self._turn(), self._autocommit.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_signals.signal_from_row(r) for r in rows]

    @translating("read the signal log")
    async def find_signals(
        self, kind: str, name: str, *, tenant_id: str | None, since: datetime, entity_id: str | None = None
    ) -> list[SignalEntry]:
        """Logged entries of ``kind`` and ``name`` in the tenant since ``since``, oldest first."""
        query = _signals.find_signals(kind, name, tenant_id=tenant_id, since=since, entity_id=entity_id)
        async with self._turn(), self._autocommit.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_signals.signal_from_row(r) for r in rows]

    @translating("find the waiting instances")
    async def waiting_instances(
        self, key: str, *, tenant_id: str | None, after: str | None = None, limit: int = 500
    ) -> list[str]:
        """Ids of active instances of the tenant waiting for ``key``, by id, after ``after``."""
        dialect = self.engine.dialect.name
        query, params = _signals.waiting_instances(dialect, key, tenant_id=tenant_id, after=after, limit=limit)
        async with self._turn(), self._autocommit.connect() as conn:
            rows = (await conn.execute(query, params)).all()
        return [str(r.id) for r in rows]
