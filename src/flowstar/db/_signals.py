"""The signal log and the search for waiting instances, as SQL (no I/O here).

``Engine.signal`` finds the instances to wake through ``workflow_instances.waiting_for``, a
JSON list of wait keys: on PostgreSQL a containment test a GIN index answers, on SQLite a
``json_each`` scan of the rows that wait for anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, and_, bindparam, insert, select, text
from sqlalchemy.sql.elements import ColumnElement

from flowstar.db._rows import instances, json_column, uuid_of
from flowstar.db.models import SignalModel
from flowstar.model.enums import ACTIVE_WORKFLOW_STATUSES
from flowstar.model.signals import SIGNAL_SCAN_LIMIT
from flowstar.model.state import SignalEntry

__all__ = [
    "INSERT_SIGNAL",
    "find_signals",
    "signal_from_row",
    "signal_row",
    "signals",
    "undelivered",
    "waiting_instances",
]

signals = cast(Table, SignalModel.__table__)
INSERT_SIGNAL = insert(signals)
_ACTIVE = [s.value for s in ACTIVE_WORKFLOW_STATUSES]


def signal_row(entry: SignalEntry) -> dict[str, Any]:
    """A ``workflow_signals`` row."""
    return {
        "id": uuid_of(entry.id),
        "kind": entry.kind,
        "name": entry.name,
        "tenant_id": entry.tenant_id,
        "instance_id": uuid_of(entry.instance_id) if entry.instance_id else None,
        "entity_id": entry.entity_id,
        "payload": entry.payload,
        "occurs_at": entry.occurs_at,
        "recorded_at": entry.recorded_at,
    }


def signal_from_row(row: Any) -> SignalEntry:
    """Rebuild a ``SignalEntry``."""
    m = row._mapping
    return SignalEntry(
        id=str(m["id"]),
        kind=m["kind"],
        name=m["name"],
        tenant_id=m["tenant_id"],
        instance_id=str(m["instance_id"]) if m["instance_id"] is not None else None,
        entity_id=m["entity_id"],
        payload=json_column(m["payload"]) or {},
        occurs_at=m["occurs_at"],
        recorded_at=m["recorded_at"],
    )


def _tenant(column: Any, tenant_id: str | None) -> ColumnElement[bool]:
    return cast(ColumnElement[bool], column.is_(None) if tenant_id is None else column == tenant_id)


def find_signals(kind: str, name: str, *, tenant_id: str | None, since: datetime, entity_id: str | None) -> Select[Any]:
    """Logged entries of ``kind`` and ``name`` in the tenant since ``since``, oldest first."""
    c = signals.c
    query = (
        select(signals)
        .where(c.kind == kind, c.name == name, _tenant(c.tenant_id, tenant_id), c.recorded_at >= since)
        .order_by(c.recorded_at, c.id)
        .limit(SIGNAL_SCAN_LIMIT)
    )
    return query.where(c.entity_id == entity_id) if entity_id is not None else query


def undelivered(recorded_before: datetime, limit: int) -> Select[Any]:
    """Entries logged before ``recorded_before`` whose delivery never finished, oldest first."""
    c = signals.c
    return (
        select(signals)
        .where(c.delivered_at.is_(None), c.recorded_at < recorded_before)
        .order_by(c.recorded_at, c.id)
        .limit(limit)
    )


def waiting_instances(
    dialect: str, key: str, *, tenant_id: str | None, after: str | None, limit: int
) -> tuple[Select[Any], dict[str, Any]]:
    """Ids of the tenant's active instances waiting for ``key``, by id (a keyset page)."""
    c = instances.c
    if dialect == "postgresql":
        waits = text("workflow_instances.waiting_for @> CAST(:wait_key AS jsonb)")
        params: dict[str, Any] = {"wait_key": f'["{_escaped(key)}"]'}
    else:
        waits = text("EXISTS (SELECT 1 FROM json_each(workflow_instances.waiting_for) AS w WHERE w.value = :wait_key)")
        params = {"wait_key": key}
    conditions: list[ColumnElement[bool]] = [
        _tenant(c.tenant_id, tenant_id),
        c.status.in_(_ACTIVE),
        cast(ColumnElement[bool], waits),
    ]
    if after is not None:
        conditions.append(c.id > bindparam("after_id"))
        params["after_id"] = uuid_of(after)
    return select(c.id).where(and_(*conditions)).order_by(c.id).limit(limit), params


def _escaped(key: str) -> str:
    # The key goes inside a JSON string literal.
    return key.replace("\\", "\\\\").replace('"', '\\"')
