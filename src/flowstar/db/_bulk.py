"""The SQL store's bulk operations: one row each, the operation itself in ``body``.

A part of ``SQLAlchemyStore`` (its base class), like ``_signal_log``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite

from flowstar.db._errors import translating
from flowstar.db._parts import StorePart
from flowstar.db._rows import uuid_of
from flowstar.db.models import BulkOperationModel
from flowstar.model.bulk import BulkOperation

__all__ = ["BulkLog"]

_bulk = cast(Table, BulkOperationModel.__table__)
_UNFINISHED = ("pending", "running")


class BulkLog(StorePart):
    """Bulk-operation methods of ``SQLAlchemyStore``."""

    @translating("save the bulk operation", write=True)
    async def save_bulk(self, operation: BulkOperation) -> None:
        """Store a bulk operation (a new one, or its progress)."""
        row = {
            "id": uuid_of(operation.id),
            "tenant_id": operation.tenant_id,
            "status": operation.status,
            "request_key": operation.request_key,
            "request_hash": operation.request_hash,
            "created_at": operation.created_at,
            "updated_at": operation.updated_at,
            "body": msgspec.json.encode(operation),
        }
        insert = (postgresql if self.engine.dialect.name == "postgresql" else sqlite).insert(_bulk).values(row)
        changed = {k: insert.excluded[k] for k in ("status", "updated_at", "body")}
        async with self._turn(), self.engine.begin() as conn:
            await conn.execute(insert.on_conflict_do_update(index_elements=["id"], set_=changed))

    @translating("read the bulk operation")
    async def get_bulk(self, operation_id: str) -> BulkOperation | None:
        """One bulk operation by id."""
        try:
            key = uuid_of(operation_id)
        except ValueError:
            return None
        found = await self._bulk_rows(select(_bulk.c.body).where(_bulk.c.id == key))
        return found[0] if found else None

    @translating("read the bulk operation")
    async def bulk_for_key(self, request_key: str) -> BulkOperation | None:
        """The bulk operation submitted with this (tenant-scoped) idempotency key."""
        found = await self._bulk_rows(select(_bulk.c.body).where(_bulk.c.request_key == request_key))
        return found[0] if found else None

    @translating("read the bulk operations")
    async def unfinished_bulk(
        self, *, request_hash: str | None = None, updated_before: datetime | None = None
    ) -> list[BulkOperation]:
        """Pending or running bulk operations (of that request, or saved before that time), oldest first."""
        c = _bulk.c
        query = select(c.body).where(c.status.in_(_UNFINISHED)).order_by(c.created_at, c.id)
        if request_hash is not None:
            query = query.where(c.request_hash == request_hash)
        if updated_before is not None:
            query = query.where(c.updated_at < updated_before)
        return await self._bulk_rows(query)

    async def _bulk_rows(self, query: Any) -> list[BulkOperation]:
        async with self._turn(), self._autocommit.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [msgspec.json.decode(row.body, type=BulkOperation) for row in rows]
