"""The SQL schema (advanced-alchemy / SQLAlchemy 2 models).

The four documented models, plus the outbox.  An instance row carries the runtime state the
engine needs to continue it (``lock_version``, its tokens, join arrivals and ``dispatch_at``,
the earliest time one of its activations is due), so that one row update commits a step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.base import CommonTableAttributes, create_registry
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from flowstar.engine.ids import new_id

__all__ = [
    "Base",
    "BulkOperationModel",
    "HumanTaskModel",
    "OutboxModel",
    "SignalModel",
    "StepExecutionModel",
    "TaskAuditModel",
    "TaskCandidateModel",
    "WorkflowDefinitionModel",
    "WorkflowInstanceModel",
    "metadata",
]

_registry = create_registry()
metadata = _registry.metadata


def _now() -> datetime:
    return datetime.now(UTC)


def _new_uuid() -> UUID:
    """A UUIDv7 (RFC 9562), as the engine gives its rows: time-ordered, so inserts stay local."""
    return UUID(new_id())


class Base(CommonTableAttributes, DeclarativeBase, AsyncAttrs):
    """Declarative base of flowstar's tables, on a registry and metadata of their own.

    A direct ``DeclarativeBase`` subclass: advanced-alchemy's ``AdvancedDeclarativeBase``
    would map these classes into its process-wide registry, where class names such as
    ``WorkflowInstanceModel`` clash with an application's (or litestar-workflows') own models.
    """

    registry = _registry
    metadata = metadata


class _Timestamps:
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now, onupdate=_now)


class WorkflowDefinitionModel(_Timestamps, Base):
    """A registered workflow definition version (the definition itself stays code).

    ``instances`` loads when it is asked for, the ways SQLAlchemy's asyncio extension offers:
    ``await definition.awaitable_attrs.instances``, ``selectinload(WorkflowDefinitionModel.instances)``
    in the query, or ``await session.refresh(definition, ["instances"])``.  Reading the plain
    attribute of a definition whose instances were not loaded so raises SQLAlchemy's
    ``MissingGreenlet`` on an ``AsyncSession`` (a synchronous ``Session`` loads them).  It is
    read-only: instances are written by the engine.
    """

    __tablename__ = "workflow_definitions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True, default=_new_uuid)
    name: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    definition_json: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    instances: Mapped[list[WorkflowInstanceModel]] = relationship(
        back_populates="definition", lazy="select", viewonly=True
    )


class WorkflowInstanceModel(_Timestamps, Base):
    """One workflow instance: its status, context and runtime state."""

    __tablename__ = "workflow_instances"
    __table_args__ = (
        Index("ix_workflow_instances_tenant_status", "tenant_id", "status"),
        Index("ix_workflow_instances_name_status", "workflow_name", "status"),
        # Keyset pages, newest first (``find_instances``): a tenant's, and everyone's.
        Index("ix_workflow_instances_tenant_started", "tenant_id", "started_at", "id"),
        Index("ix_workflow_instances_started", "started_at", "id"),
        # A unique index, not a constraint: SQLite adds it without rebuilding the table.
        Index("uq_workflow_instances_idempotency_key", "idempotency_key", unique=True),
        # Containment queries (``waiting_for @> '["signal:x"]'``) on PostgreSQL.
        Index("ix_workflow_instances_waiting_for", "waiting_for", postgresql_using="gin"),
    )

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True, default=_new_uuid)
    definition_id: Mapped[UUID | None] = mapped_column(
        GUID, ForeignKey("workflow_definitions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    workflow_name: Mapped[str] = mapped_column(String(255))
    workflow_version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)
    current_step: Mapped[str | None] = mapped_column(String(255), nullable=True)
    context_data: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JsonB, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    failed_step: Mapped[str | None] = mapped_column(String(255), nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)
    completed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    tenant_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    lock_version: Mapped[int] = mapped_column(Integer, default=1)
    tokens: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    joins: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    history: Mapped[list[Any]] = mapped_column(JsonB, default=list)
    dispatch_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True, index=True)
    # The start's idempotency key with its tenant: a second start with it writes nothing.
    # Added by migration 0003: last in the table (sort_order), where SQLite's ADD COLUMN puts it.
    idempotency_key: Mapped[str | None] = mapped_column(String(600), nullable=True, sort_order=1)
    # Added by migration 0004: the keys of its open signal and event waits (a JSON list, NULL
    # when none: ``Engine.signal`` finds the instances to wake by it) and the last signal of
    # each name it consumed (``InstanceState.deliveries``).
    waiting_for: Mapped[list[str] | None] = mapped_column(JsonB, nullable=True, sort_order=2)
    deliveries: Mapped[dict[str, Any] | None] = mapped_column(JsonB, nullable=True, sort_order=2)

    # Loaded like ``WorkflowDefinitionModel.instances`` (``awaitable_attrs.definition``).
    definition: Mapped[WorkflowDefinitionModel | None] = relationship(
        back_populates="instances", lazy="select", viewonly=True
    )


class StepExecutionModel(Base):
    """One execution (attempt) of one step, with its input, output, error and timing."""

    __tablename__ = "workflow_step_executions"

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True, default=_new_uuid)
    instance_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("workflow_instances.id", ondelete="CASCADE"), index=True)
    step_name: Mapped[str] = mapped_column(String(255), index=True)
    step_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    input_data: Mapped[dict[str, Any] | None] = mapped_column(JsonB, nullable=True)
    output_data: Mapped[Any] = mapped_column(JsonB, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)
    completed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    assigned_to: Mapped[str | None] = mapped_column(String(255), nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    token_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    parent_step: Mapped[str | None] = mapped_column(String(255), nullable=True)
    tenant_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)


class HumanTaskModel(_Timestamps, Base):
    """A human task, denormalised for inbox queries by assignee, group, due date and status."""

    __tablename__ = "workflow_human_tasks"
    __table_args__ = (
        Index("ix_workflow_human_tasks_status_assignee", "status", "assignee_id"),
        # Keyset pages in (created_at, id) order (``find_tasks``): one ordered scan per branch
        # of a user's inbox (their id, each of their groups), and of a plain status list.
        Index("ix_workflow_human_tasks_inbox_assignee", "status", "tenant_id", "assignee_id", "created_at", "id"),
        Index("ix_workflow_human_tasks_inbox_group", "status", "tenant_id", "assignee_group", "created_at", "id"),
        Index("ix_workflow_human_tasks_inbox_claimed", "status", "tenant_id", "claimed_by", "created_at", "id"),
        Index("ix_workflow_human_tasks_status_created", "status", "created_at", "id"),
    )

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True, default=_new_uuid)
    instance_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("workflow_instances.id", ondelete="CASCADE"), index=True)
    step_execution_id: Mapped[UUID | None] = mapped_column(
        GUID, ForeignKey("workflow_step_executions.id", ondelete="SET NULL"), nullable=True
    )
    workflow_name: Mapped[str] = mapped_column(String(255))
    step_name: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    form_schema: Mapped[dict[str, Any] | None] = mapped_column(JsonB, nullable=True)
    assignee_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    assignee_group: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    due_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True, index=True)
    reminder_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    completed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    data: Mapped[dict[str, Any] | None] = mapped_column(JsonB, nullable=True)
    tenant_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    # Added by migration 0002: last in the table (sort_order), where SQLite's ADD COLUMN puts them.
    claimed_by: Mapped[str | None] = mapped_column(String(255), nullable=True, sort_order=1)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True, sort_order=1)
    priority: Mapped[int] = mapped_column(Integer, default=50, server_default="50", sort_order=1)
    follow_up_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True, sort_order=1)


class TaskCandidateModel(Base):
    """Who may claim a task: one row per candidate user or group (the assignee group too).

    The inbox finds a user's tasks through the index on (kind, name): the user's id among
    the ``user`` rows and each of the user's groups among the ``group`` rows.
    """

    __tablename__ = "workflow_task_candidates"
    __table_args__ = (Index("ix_workflow_task_candidates_kind_name", "kind", "name", "task_id"),)

    task_id: Mapped[UUID] = mapped_column(
        GUID, ForeignKey("workflow_human_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(String(255), nullable=True)


class TaskAuditModel(Base):
    """A task's audit trail: who claimed, reassigned, commented, completed it, and when."""

    __tablename__ = "workflow_task_audit"
    __table_args__ = (Index("ix_workflow_task_audit_task_at", "task_id", "at"),)

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True, default=_new_uuid)
    task_id: Mapped[UUID] = mapped_column(GUID)
    instance_id: Mapped[UUID] = mapped_column(GUID)
    tenant_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(255), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    details: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)


class OutboxModel(Base):
    """Events committed with their transition and not yet published."""

    __tablename__ = "workflow_outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    instance_id: Mapped[UUID] = mapped_column(GUID, index=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)


class SignalModel(Base):
    """A signal sent or an external event reported (``flowstar.model.state.SignalEntry``).

    Kept so that a wait that begins after its signal still receives it (the lookback), and
    so that a reported event's pending start can be found and moved.
    """

    __tablename__ = "workflow_signals"
    __table_args__ = (
        Index("ix_workflow_signals_lookup", "kind", "name", "tenant_id", "recorded_at"),
        # The entries a crash left half-delivered: few, so a partial index keeps them cheap.
        Index(
            "ix_workflow_signals_undelivered",
            "recorded_at",
            postgresql_where=text("delivered_at IS NULL"),
            sqlite_where=text("delivered_at IS NULL"),
        ),
    )

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True, default=_new_uuid)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(255))
    tenant_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    instance_id: Mapped[UUID | None] = mapped_column(GUID, nullable=True)
    entity_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    occurs_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), nullable=True)


class BulkOperationModel(Base):
    """A bulk operation and its progress (``flowstar.model.bulk.BulkOperation``, in ``body``).

    The columns beside the body are what operations are looked up by: the caller's
    idempotency key, the request's fingerprint (a re-sent request), and unfinished ones.
    """

    __tablename__ = "workflow_bulk_operations"
    __table_args__ = (
        Index("ix_workflow_bulk_operations_open", "status", "updated_at"),
        Index("uq_workflow_bulk_operations_request_key", "request_key", unique=True),
        Index("ix_workflow_bulk_operations_request_hash", "request_hash"),
    )

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True, default=_new_uuid)
    tenant_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    request_key: Mapped[str | None] = mapped_column(String(600), nullable=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)
    body: Mapped[bytes] = mapped_column(LargeBinary)
