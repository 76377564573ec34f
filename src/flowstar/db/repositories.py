"""Repositories with the documented query methods (advanced-alchemy async repositories).

Every query that lists instances or tasks takes an optional ``tenant_id``, so a multi-tenant
application can always scope what it reads.  Pagination returns ``(items, total)``.

They read; they do not change an instance's or a task's state.  That happens only through
the engine's transitions, which keep the runtime state, the step records and the events in
step: ``Engine.cancel_workflow``, ``retry``, ``complete_task`` and ``reassign_task``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flowstar.db.models import HumanTaskModel, StepExecutionModel, WorkflowDefinitionModel, WorkflowInstanceModel
from flowstar.model.enums import (
    ACTIVE_WORKFLOW_STATUSES,
    StepStatus,
    TaskStatus,
    WorkflowStatus,
)
from flowstar.model.semver import semver_key

__all__ = [
    "HumanTaskRepository",
    "StepExecutionRepository",
    "WorkflowDefinitionRepository",
    "WorkflowInstanceRepository",
]


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _status_value(status: WorkflowStatus | str) -> str:
    return status.value if isinstance(status, WorkflowStatus) else str(status)


class _Repository(SQLAlchemyAsyncRepository[Any]):
    def __init__(self, session: AsyncSession, **kwargs: Any) -> None:
        super().__init__(session=session, **kwargs)


class WorkflowDefinitionRepository(_Repository):
    """Workflow definition versions."""

    model_type = WorkflowDefinitionModel

    async def get_by_name(
        self, name: str, version: str | None = None, *, active_only: bool = True
    ) -> WorkflowDefinitionModel | None:
        """The given version, or the latest (active) one by semantic-version order."""
        query = select(WorkflowDefinitionModel).where(WorkflowDefinitionModel.name == name)
        if active_only:
            query = query.where(WorkflowDefinitionModel.is_active.is_(True))
        if version is not None:
            return (
                await self.session.execute(query.where(WorkflowDefinitionModel.version == version))
            ).scalar_one_or_none()
        rows = (await self.session.execute(query)).scalars().all()
        return max(rows, key=lambda d: semver_key(d.version), default=None)

    async def get_latest_version(self, name: str) -> WorkflowDefinitionModel | None:
        """The latest active version (semantic-version order, not insertion order)."""
        return await self.get_by_name(name)

    async def list_active(self) -> Sequence[WorkflowDefinitionModel]:
        """Every active definition version."""
        query = select(WorkflowDefinitionModel).where(WorkflowDefinitionModel.is_active.is_(True))
        return (await self.session.execute(query.order_by(WorkflowDefinitionModel.name))).scalars().all()

    async def deactivate_version(self, name: str, version: str) -> bool:
        """Mark a version inactive; returns whether it existed."""
        result = await self.session.execute(
            update(WorkflowDefinitionModel)
            .where(WorkflowDefinitionModel.name == name, WorkflowDefinitionModel.version == version)
            .values(is_active=False, updated_at=datetime.now(UTC))
        )
        return bool(getattr(result, "rowcount", 0))


class WorkflowInstanceRepository(_Repository):
    """Workflow instances."""

    model_type = WorkflowInstanceModel

    async def _page(
        self, conditions: list[ColumnElement[bool]], limit: int | None, offset: int
    ) -> tuple[Sequence[WorkflowInstanceModel], int]:
        query = select(WorkflowInstanceModel).where(*conditions).order_by(WorkflowInstanceModel.started_at.desc())
        if limit is not None:
            query = query.limit(limit).offset(offset)
        items = (await self.session.execute(query)).scalars().all()
        total = await self.session.scalar(select(func.count()).select_from(WorkflowInstanceModel).where(*conditions))
        return items, int(total or 0)

    @staticmethod
    def _filters(status: WorkflowStatus | str | None, tenant_id: str | None) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if status is not None:
            conditions.append(WorkflowInstanceModel.status == _status_value(status))
        if tenant_id is not None:
            conditions.append(WorkflowInstanceModel.tenant_id == tenant_id)
        return conditions

    async def find_by_workflow(
        self,
        workflow_name: str,
        status: WorkflowStatus | str | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        tenant_id: str | None = None,
    ) -> tuple[Sequence[WorkflowInstanceModel], int]:
        """Instances of a workflow, newest first, with the total count."""
        conditions = [WorkflowInstanceModel.workflow_name == workflow_name, *self._filters(status, tenant_id)]
        return await self._page(conditions, limit, offset)

    async def find_by_user(
        self, user_id: str, status: WorkflowStatus | str | None = None, *, tenant_id: str | None = None
    ) -> Sequence[WorkflowInstanceModel]:
        """Instances started by ``user_id``."""
        conditions = [WorkflowInstanceModel.created_by == user_id, *self._filters(status, tenant_id)]
        items, _total = await self._page(conditions, None, 0)
        return items

    async def find_by_tenant(
        self, tenant_id: str, status: WorkflowStatus | str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[Sequence[WorkflowInstanceModel], int]:
        """One tenant's instances, newest first, with the total count."""
        return await self._page(self._filters(status, tenant_id), limit, offset)

    async def find_running(self, *, tenant_id: str | None = None) -> Sequence[WorkflowInstanceModel]:
        """Instances that are running, waiting or pending."""
        conditions: list[ColumnElement[bool]] = [
            WorkflowInstanceModel.status.in_([s.value for s in ACTIVE_WORKFLOW_STATUSES])
        ]
        if tenant_id is not None:
            conditions.append(WorkflowInstanceModel.tenant_id == tenant_id)
        items, _total = await self._page(conditions, None, 0)
        return items


class StepExecutionRepository(_Repository):
    """Step execution records."""

    model_type = StepExecutionModel

    async def find_by_instance(
        self, instance_id: UUID | str, *, tenant_id: str | None = None
    ) -> Sequence[StepExecutionModel]:
        """An instance's step executions, in start order (none if it is another tenant's)."""
        query = (
            select(StepExecutionModel)
            .where(StepExecutionModel.instance_id == _uuid(instance_id))
            .order_by(StepExecutionModel.started_at, StepExecutionModel.id)
        )
        if tenant_id is not None:
            query = query.where(StepExecutionModel.tenant_id == tenant_id)
        return (await self.session.execute(query)).scalars().all()

    async def find_by_step_name(self, instance_id: UUID | str, step_name: str) -> StepExecutionModel | None:
        """The most recent execution of ``step_name`` in the instance."""
        query = (
            select(StepExecutionModel)
            .where(StepExecutionModel.instance_id == _uuid(instance_id), StepExecutionModel.step_name == step_name)
            .order_by(StepExecutionModel.started_at.desc(), StepExecutionModel.attempt.desc())
            .limit(1)
        )
        return (await self.session.execute(query)).scalar_one_or_none()

    async def find_failed(
        self, instance_id: UUID | str | None = None, *, tenant_id: str | None = None
    ) -> Sequence[StepExecutionModel]:
        """Failed step executions (of one instance, or of a tenant, or all)."""
        query = select(StepExecutionModel).where(StepExecutionModel.status == StepStatus.FAILED.value)
        if instance_id is not None:
            query = query.where(StepExecutionModel.instance_id == _uuid(instance_id))
        if tenant_id is not None:
            query = query.where(StepExecutionModel.tenant_id == tenant_id)
        return (await self.session.execute(query.order_by(StepExecutionModel.started_at))).scalars().all()


class HumanTaskRepository(_Repository):
    """Human tasks, for inboxes (complete or reassign them through the engine)."""

    model_type = HumanTaskModel

    async def find_pending(
        self,
        assignee_id: str | None = None,
        assignee_group: str | None = None,
        *,
        tenant_id: str | None = None,
    ) -> Sequence[HumanTaskModel]:
        """Pending tasks for a user and/or group, plus unassigned ones.

        With ``assignee_id`` the result has the user's tasks and tasks nobody is assigned to;
        with ``assignee_group`` the group's tasks and unassigned ones; with both, the union.
        """
        query = select(HumanTaskModel).where(HumanTaskModel.status == TaskStatus.PENDING.value)
        unassigned = (HumanTaskModel.assignee_id.is_(None)) & (HumanTaskModel.assignee_group.is_(None))
        scopes: list[ColumnElement[bool]] = []
        if assignee_id is not None:
            scopes.append(HumanTaskModel.assignee_id == assignee_id)
        if assignee_group is not None:
            scopes.append(HumanTaskModel.assignee_group == assignee_group)
        if scopes:
            query = query.where(or_(unassigned, *scopes))
        if tenant_id is not None:
            query = query.where(HumanTaskModel.tenant_id == tenant_id)
        query = query.order_by(HumanTaskModel.due_at.is_(None), HumanTaskModel.due_at, HumanTaskModel.created_at)
        return (await self.session.execute(query)).scalars().all()

    async def find_by_instance(
        self, instance_id: UUID | str, *, tenant_id: str | None = None
    ) -> Sequence[HumanTaskModel]:
        """Every task of an instance, oldest first (none if it is another tenant's)."""
        query = (
            select(HumanTaskModel)
            .where(HumanTaskModel.instance_id == _uuid(instance_id))
            .order_by(HumanTaskModel.created_at, HumanTaskModel.id)
        )
        if tenant_id is not None:
            query = query.where(HumanTaskModel.tenant_id == tenant_id)
        return (await self.session.execute(query)).scalars().all()

    async def find_overdue(
        self, now: datetime | None = None, *, tenant_id: str | None = None
    ) -> Sequence[HumanTaskModel]:
        """Pending tasks whose due date has passed."""
        moment = now or datetime.now(UTC)
        query = select(HumanTaskModel).where(
            HumanTaskModel.status == TaskStatus.PENDING.value, HumanTaskModel.due_at < moment
        )
        if tenant_id is not None:
            query = query.where(HumanTaskModel.tenant_id == tenant_id)
        return (await self.session.execute(query.order_by(HumanTaskModel.due_at))).scalars().all()
