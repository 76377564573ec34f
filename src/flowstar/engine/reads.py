"""The engine's read side: instances, tasks, history, and waiting for a status.

Kept apart from ``core.py``, which holds the one write path; everything here only reads the
store (and the commits this process makes, to wake waiters early).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from flowstar.engine.clock import Clock
from flowstar.engine.ports import Store
from flowstar.engine.runner import describe_error
from flowstar.engine.views import VersionUsage, WorkflowInstance, instance_view
from flowstar.model.access import User, check_instance, check_task, is_users_task
from flowstar.model.context import WorkflowContext
from flowstar.model.enums import TERMINAL_WORKFLOW_STATUSES, TaskStatus, WorkflowStatus
from flowstar.model.errors import InstanceNotFoundError, StepExecutionError, TaskNotFoundError
from flowstar.model.pages import InstanceQuery, Page, TaskQuery, check_limit, decode_cursor, page_of
from flowstar.model.registry import WorkflowRegistry
from flowstar.model.semver import is_semver, semver_key
from flowstar.model.state import HumanTask, InstanceState, StepRecord
from flowstar.model.steps import Step

__all__ = ["EngineReads"]


class EngineReads:
    """Read calls of ``Engine`` (its base class)."""

    store: Store
    clock: Clock
    registry: WorkflowRegistry

    def __init__(self) -> None:
        self._watchers: dict[str, list[tuple[frozenset[WorkflowStatus], asyncio.Future[None]]]] = {}

    async def _read(self, instance_id: str) -> InstanceState | None:
        """The latest committed state, or None: read from the database, not from what this
        process cached when it last committed (other processes may have committed since)."""
        self.store.forget(instance_id)
        return await self.store.load_instance(instance_id)

    async def _load(self, instance_id: str) -> InstanceState:
        """``_read`` for calls from outside (API, other processes' work): unknown ids raise."""
        try:
            state = await self._read(instance_id)
        except ValueError as exc:  # a malformed id
            raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}") from exc
        if state is None:
            raise InstanceNotFoundError(f"no workflow instance with id {instance_id!r}")
        return state

    async def get_instance(self, instance_id: UUID | str, *, user: User | None = None) -> WorkflowInstance:
        """The instance's current state (with a ``user``: an admin, its creator, or one with a task in it).

        Raises:
            InstanceNotFoundError: (a ``KeyError``) no such instance (or another tenant's).
            PermissionDeniedError: the user may not see it.
        """
        state = await self._load(str(instance_id))
        if user is not None:
            has_task = not user.is_admin and any(
                is_users_task(t, user) for t in await self.store.find_tasks(instance_id=state.id)
            )
            check_instance(state, user, has_task=has_task)
        return instance_view(state)

    async def get_task(self, task_id: UUID | str, *, user: User | None = None) -> HumanTask:
        """One task by id (with a ``user``: only one they may see, see ``flowstar.model.access``).

        Raises:
            TaskNotFoundError: unknown id (or another tenant's task).
            PermissionDeniedError: not the user's task.
        """
        try:
            task = await self.store.get_task(str(task_id))
        except ValueError:  # a malformed id
            task = None
        if task is None:
            raise TaskNotFoundError(f"no task with id {task_id}")
        check_task(task, user)
        return task

    async def get_tasks(
        self,
        *,
        instance_id: UUID | str | None = None,
        status: TaskStatus | None = TaskStatus.PENDING,
        assignee_id: str | None = None,
        assignee_group: str | None = None,
        tenant_id: str | None = None,
    ) -> list[HumanTask]:
        """Tasks matching the filters (pending ones by default)."""
        return await self.store.find_tasks(
            instance_id=str(instance_id) if instance_id is not None else None,
            status=status,
            assignee_id=assignee_id,
            assignee_group=assignee_group,
            tenant_id=tenant_id,
        )

    async def definition_versions(self, *, tenant_id: str | None = None) -> list[VersionUsage]:
        """Every version registered here or still run by an instance, by name then version.

        What an operator checks before dropping an old version from the code: its
        ``running`` count must be 0 (an instance runs to its end on the version it
        started on).
        """
        running = await self.store.active_versions(tenant_id)
        known = {(d.name, d.version) for d in self.registry.list_definitions(active_only=False)}
        keys = sorted(known | running.keys(), key=_version_order)
        return [
            VersionUsage(
                name=name,
                version=version,
                registered=(name, version) in known,
                active=(name, version) in known and self.registry.is_active(name, version),
                running=running.get((name, version), 0),
            )
            for name, version in keys
        ]

    async def get_history(self, instance_id: UUID | str) -> list[StepRecord]:
        """Every step execution of the instance, in order.

        Raises:
            InstanceNotFoundError: no such instance (the same on every store, also for an
                id that is no UUID).
        """
        state = await self._load(str(instance_id))
        return await self.store.step_records(state.id)

    async def list_instances(
        self,
        *,
        workflow_name: str | None = None,
        status: WorkflowStatus | Sequence[WorkflowStatus] | None = None,
        tenant_id: str | None = None,
        created_by: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[WorkflowInstance], int]:
        """A page of instances (newest first) and the total count.

        The reference API's page: ``offset`` rows are read and skipped and every matching row
        is counted, so a call costs time in proportion to the matches, not to the page.
        Lists that grow use ``find_instances`` (keyset pages, no count).
        """
        states, total = await self.store.find_instances(
            workflow_name=workflow_name,
            status=status,
            tenant_id=tenant_id,
            created_by=created_by,
            limit=limit,
            offset=offset,
        )
        return [instance_view(s) for s in states], total

    async def find_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        assignee_id: str | None = None,
        group: str | None = None,
        workflow_name: str | None = None,
        instance_id: UUID | str | None = None,
        due_before: datetime | None = None,
        overdue: bool = False,
        min_priority: int | None = None,
        completed_by: str | None = None,
        claimable: bool | None = None,
        user: User | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[HumanTask]:
        """A page of the tasks matching every given filter, oldest first by ``(created_at, id)``.

        Args:
            group: tasks assigned to this group.
            due_before: tasks due before this time.
            overdue: only pending tasks whose due date has passed (by the engine's clock).
            min_priority: only tasks of at least this priority (``BaseHumanStep.priority``).
            claimable: True, only pending tasks assigned to a group and to nobody yet;
                False, only the others.
            user: only the tasks meant for this user (assigned to them or to one of their
                groups) in their tenant; None: every task (a trusted caller).
            limit: the page size, 1..500.
            cursor: the ``next_cursor`` of the previous page.

        Raises:
            ValidationError: a bad ``limit`` or ``cursor``.
        """
        if overdue:
            now = self.clock.now()
            due_before = now if due_before is None else min(due_before, now)
            if status is None:
                status = TaskStatus.PENDING
        query = TaskQuery(
            status=status,
            assignee_id=assignee_id,
            group=group,
            workflow_name=workflow_name,
            instance_id=str(instance_id) if instance_id is not None else None,
            due_before=due_before,
            min_priority=min_priority,
            completed_by=completed_by,
            claimable=claimable,
            scoped=user is not None,
            tenant_id=user.tenant_id if user is not None else None,
            user_id=user.id if user is not None and not user.is_admin else None,
            user_groups=user.groups if user is not None else frozenset(),
            after=decode_cursor("tasks", cursor) if cursor is not None else None,
            limit=check_limit(limit),
        )
        rows = await self.store.find_task_page(query)
        return page_of("tasks", rows, query.limit, lambda t: (t.created_at, t.id))

    async def find_instances(
        self,
        *,
        workflow_name: str | None = None,
        status: WorkflowStatus | Sequence[WorkflowStatus] | None = None,
        created_by: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        user: User | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[WorkflowInstance]:
        """A page of the instances matching every given filter, newest first by ``(started_at, id)``.

        Args:
            status: one status or several.
            created_after: started at or after this time.
            created_before: started before this time.
            user: only the instances this user may open (``check_instance``): for an admin
                every instance of the tenant, for anyone else the tenant's instances they
                started (``created_by`` naming someone else then matches none); None: every
                instance.
            limit: the page size, 1..500.
            cursor: the ``next_cursor`` of the previous page.

        Raises:
            ValidationError: a bad ``limit`` or ``cursor``, a time without a time zone.
        """
        if user is not None and not user.is_admin:
            # A non-admin may also open an instance they have a task in; the inbox leads
            # there, and a list cannot ask every instance for its tasks.
            if created_by not in (None, user.id):
                return Page(items=[])
            created_by = user.id
        query = InstanceQuery(
            workflow_name=workflow_name,
            statuses=frozenset([status] if isinstance(status, WorkflowStatus) else status) if status else None,
            created_by=created_by,
            created_after=created_after,
            created_before=created_before,
            scoped=user is not None,
            tenant_id=user.tenant_id if user is not None else None,
            after=decode_cursor("instances", cursor) if cursor is not None else None,
            limit=check_limit(limit),
        )
        states = await self.store.find_instance_page(query)
        page = page_of("instances", states, query.limit, lambda s: (s.started_at, s.id))
        return Page(items=[instance_view(s) for s in page.items], next_cursor=page.next_cursor)

    async def execute_step(self, step: Step, context: WorkflowContext, previous_result: Any = None) -> Any:
        """Run one step outside any workflow (guards and hooks included).

        Raises:
            StepExecutionError: the step raised; the original error is its ``__cause__``.
        """
        if not await step.can_execute(context):
            return previous_result
        try:
            result = await step.execute(context)
        except Exception as exc:
            await step.on_failure(context, exc)
            raise StepExecutionError(f"step {step.name!r} failed: {describe_error(exc)}") from exc
        await step.on_success(context, result)
        return result

    async def wait_for_status(
        self,
        instance_id: UUID | str,
        statuses: WorkflowStatus | Iterable[WorkflowStatus] = TERMINAL_WORKFLOW_STATUSES,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - part of the public helper's signature
        poll_interval: float = 0.5,
    ) -> WorkflowInstance:
        """Return the instance once it reaches one of ``statuses``.

        Commits made by this engine wake the waiter at once; commits made by other
        processes are noticed within ``poll_interval``.

        Raises:
            TimeoutError: the status was not reached within ``timeout`` seconds.
        """
        iid = str(instance_id)
        wanted = frozenset([statuses] if isinstance(statuses, WorkflowStatus) else statuses)
        await self._watching()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (wanted, future)
        self._watchers.setdefault(iid, []).append(entry)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    state = await self._load(iid)
                    if state.status in wanted:
                        return instance_view(state)
                    try:
                        await asyncio.wait_for(asyncio.shield(future), poll_interval)
                    except TimeoutError:
                        continue
        except TimeoutError:
            state = await self._load(iid)
            raise TimeoutError(
                f"instance {iid} is {state.status.value}, not {sorted(s.value for s in wanted)}, after {timeout}s"
            ) from None
        finally:
            watchers = self._watchers.get(iid, [])
            if entry in watchers:
                watchers.remove(entry)
            if not watchers:
                self._watchers.pop(iid, None)

    async def _watching(self) -> None:
        """Hook for engines that learn about other processes' commits (SAQ: pub/sub)."""

    def _notify_status(self, instance_id: str, status: WorkflowStatus) -> None:
        """Wake the waiters of ``instance_id`` that wait for ``status``."""
        for wanted, future in self._watchers.get(instance_id, ()):
            if status in wanted and not future.done():
                future.set_result(None)


def _version_order(key: tuple[str, str]) -> tuple[str, int, Any]:
    """By name, then by semantic version (any other version string after, by its text)."""
    name, version = key
    return (name, 0, semver_key(version)) if is_semver(version) else (name, 1, version)
