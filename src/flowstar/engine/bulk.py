"""Running bulk operations: retry or cancel every matching instance, reassign every matching task.

An operation is stored before it runs and saves its progress after every page, so it can be
followed from any process (``get``) and goes on after a restart (``resume``, called by
``Engine.recover``).  Each item goes through the engine's own calls (``retry``,
``cancel_workflow``, ``reassign_task``: their transitions, events and checks), and only when
it is not yet in the target state (see ``flowstar.model.bulk``), so no item is acted on twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from flowstar.engine.batches import in_batches
from flowstar.engine.ids import new_id
from flowstar.engine.ports import Store
from flowstar.model.access import User
from flowstar.model.bulk import (
    BULK_ERRORS_KEPT,
    BulkOperation,
    BulkRequest,
    instance_query,
    request_hash,
    task_query,
)
from flowstar.model.enums import TERMINAL_WORKFLOW_STATUSES, TaskStatus, WorkflowStatus
from flowstar.model.errors import (
    BulkOperationNotFoundError,
    InvalidTransitionError,
    PermissionDeniedError,
    WorkflowsError,
)
from flowstar.model.pages import MAX_LIMIT
from flowstar.model.state import HumanTask, scoped_idempotency_key

if TYPE_CHECKING:
    from flowstar.engine.core import Engine

__all__ = ["BulkOperations", "Progress"]

log = structlog.get_logger("flowstar.bulk")

Progress = Callable[[BulkOperation], None]
# An unfinished operation nobody saved progress of for this long is taken over by ``resume``.
STALE_AFTER = timedelta(seconds=60)
# Items of a page acted on at once: commits of different instances overlap on the database.
_CONCURRENCY = 16


class BulkOperations:
    """The bulk operations of one engine (``Engine.bulk``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._running: dict[str, asyncio.Task[BulkOperation]] = {}

    @property
    def _store(self) -> Store:
        return self.engine.store

    async def submit(
        self,
        request: BulkRequest,
        *,
        user: User | None = None,
        tenant_id: str | None = None,
        created_by: str | None = None,
        idempotency_key: str | None = None,
        run: bool = True,
    ) -> BulkOperation:
        """Store a new operation and start it in the background (unless ``run=False``).

        Sending the same request again returns the first operation: with the same
        ``idempotency_key`` always, without one while the first still runs.

        Raises:
            ValidationError: a request that cannot run (see ``BulkRequest.check``).
            PermissionDeniedError: a ``user`` who is no admin.
        """
        request.check()
        if user is not None:
            _check_admin(user)
            tenant_id, created_by = user.tenant_id, user.id
        key = scoped_idempotency_key(tenant_id, idempotency_key)
        fingerprint = request_hash(request, tenant_id)
        known = await self._store.bulk_for_key(key) if key is not None else None
        if known is None:
            running = await self._store.unfinished_bulk(request_hash=fingerprint)
            known = running[0] if running else None
        if known is not None:
            return known
        now = self.engine.clock.now()
        operation = BulkOperation(
            id=new_id(),
            request=request,
            tenant_id=tenant_id,
            created_by=created_by,
            total=await self.count(request, tenant_id=tenant_id),
            request_key=key,
            request_hash=fingerprint,
            created_at=now,
            updated_at=now,
        )
        await self._store.save_bulk(operation)
        if run:
            self._launch(operation.id)
        return operation

    async def count(self, request: BulkRequest, *, user: User | None = None, tenant_id: str | None = None) -> int:
        """How many items the request matches now (a dry run acts on nothing).

        Raises:
            ValidationError, PermissionDeniedError: as ``submit``.
        """
        request.check()
        if user is not None:
            _check_admin(user)
            tenant_id = user.tenant_id
        if request.filter.ids is not None:
            return len(request.filter.ids)
        total, after = 0, None
        while True:
            if request.kind == "reassign":
                tasks = await self._store.find_task_page(task_query(request, tenant_id, after))
                total += min(len(tasks), MAX_LIMIT)
                after = (tasks[MAX_LIMIT - 1].created_at, tasks[MAX_LIMIT - 1].id) if len(tasks) > MAX_LIMIT else None
            else:
                states = await self._store.find_instance_page(instance_query(request, tenant_id, after))
                total += min(len(states), MAX_LIMIT)
                last = states[MAX_LIMIT - 1] if len(states) > MAX_LIMIT else None
                after = (last.started_at, last.id) if last is not None else None
            if after is None:
                return total

    async def get(self, operation_id: str, *, user: User | None = None) -> BulkOperation:
        """The operation and its progress.

        Raises:
            BulkOperationNotFoundError: unknown, or another tenant's.
            PermissionDeniedError: a ``user`` who is no admin.
        """
        if user is not None:
            _check_admin(user)
        operation = await self._store.get_bulk(operation_id)
        if operation is None or (user is not None and operation.tenant_id != user.tenant_id):
            raise BulkOperationNotFoundError(f"no bulk operation {operation_id}")
        return operation

    async def wait(self, operation_id: str) -> BulkOperation:
        """Wait for an operation this process runs to finish (else return it as stored)."""
        task = self._running.get(operation_id)
        if task is not None:
            return await asyncio.shield(task)
        return await self.get(operation_id)

    async def run(self, operation_id: str, progress: Progress | None = None) -> BulkOperation:
        """Run (or go on with) the operation here until it is finished; ``progress`` is told
        after every page."""
        operation = await self.get(operation_id)
        if operation.finished:
            return operation
        operation.status = "running"
        await self._save(operation)
        try:
            if operation.request.filter.ids is not None:
                await self._run_ids(operation, progress)
            elif operation.request.kind == "reassign":
                await self._run_tasks(operation, progress)
            else:
                await self._run_instances(operation, progress)
            operation.status = "completed"
        except asyncio.CancelledError:
            await self._save(operation)  # left running: ``resume`` goes on from here
            raise
        except Exception as exc:
            log.exception("bulk operation failed", operation_id=operation.id)
            operation.status = "failed"
            _remember(operation, f"stopped: {exc}")
        operation.finished_at = self.engine.clock.now()
        await self._save(operation)
        if progress is not None:
            progress(operation)
        return operation

    async def resume(self) -> int:
        """Go on with the unfinished operations nobody saved progress of lately; how many."""
        stale = await self._store.unfinished_bulk(updated_before=self.engine.clock.now() - STALE_AFTER)
        for operation in stale:
            self._launch(operation.id)
        return len(stale)

    async def close(self) -> None:
        """Stop the operations running here (they go on where they were after a restart)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the items ------------------------------------------------------------------------

    def _launch(self, operation_id: str) -> None:
        if operation_id in self._running:
            return
        task = asyncio.create_task(self.run(operation_id))
        self._running[operation_id] = task
        task.add_done_callback(lambda _t: self._running.pop(operation_id, None))

    async def _save(self, operation: BulkOperation) -> None:
        operation.updated_at = self.engine.clock.now()
        await self._store.save_bulk(operation)

    async def _page_done(self, operation: BulkOperation, progress: Progress | None) -> None:
        await self._save(operation)
        if progress is not None:
            progress(operation)

    async def _run_instances(self, operation: BulkOperation, progress: Progress | None) -> None:
        while True:
            query = instance_query(operation.request, operation.tenant_id, operation.cursor)
            states = await self._store.find_instance_page(query)
            page = states[:MAX_LIMIT]
            await in_batches(page, lambda state: self._act_on_instance(operation, state.id), _CONCURRENCY)
            if page:
                operation.cursor = (page[-1].started_at, page[-1].id)
            await self._page_done(operation, progress)
            if len(states) <= MAX_LIMIT:
                return

    async def _run_tasks(self, operation: BulkOperation, progress: Progress | None) -> None:
        while True:
            tasks = await self._store.find_task_page(
                task_query(operation.request, operation.tenant_id, operation.cursor)
            )
            page = tasks[:MAX_LIMIT]
            await in_batches(page, lambda task: self._act_on_task(operation, task), _CONCURRENCY)
            if page:
                operation.cursor = (page[-1].created_at, page[-1].id)
            await self._page_done(operation, progress)
            if len(tasks) <= MAX_LIMIT:
                return

    async def _run_ids(self, operation: BulkOperation, progress: Progress | None) -> None:
        ids = operation.request.filter.ids or ()
        while operation.position < len(ids):
            page = list(ids[operation.position : operation.position + MAX_LIMIT])
            # One item at a time: a list may name an item twice.
            for item_id in page:
                await self._act_on_listed(operation, item_id)
            operation.position = min(operation.position + MAX_LIMIT, len(ids))
            await self._page_done(operation, progress)

    async def _act_on_listed(self, operation: BulkOperation, item_id: str) -> None:
        if operation.request.kind != "reassign":
            await self._act_on_instance(operation, item_id)
            return
        task = await self._store.get_task(item_id)
        if task is None or (operation.tenant_id is not None and task.tenant_id != operation.tenant_id):
            _failed(operation, item_id, "no such task")
        else:
            await self._act_on_task(operation, task)

    async def _act_on_instance(self, operation: BulkOperation, instance_id: str) -> None:
        request, engine = operation.request, self.engine
        try:
            # Read from the database (not a cached state): another process may have
            # retried a failed instance this one saw fail.
            self._store.forget(instance_id)
            state = await self._store.load_instance(instance_id)
            if state is None or (operation.tenant_id is not None and state.tenant_id != operation.tenant_id):
                _failed(operation, instance_id, "no such instance")
                return
            if request.kind == "cancel":
                if state.status in TERMINAL_WORKFLOW_STATUSES:
                    operation.skipped += 1
                    return
                reason = request.reason or f"bulk operation {operation.id}"
                await engine.cancel_workflow(instance_id, reason, operation.created_by)
            else:
                if state.status is not WorkflowStatus.FAILED:
                    operation.skipped += 1
                    return
                await engine.retry(instance_id, request.from_step)
            operation.acted += 1
        except InvalidTransitionError:
            operation.skipped += 1  # it moved on meanwhile
        except WorkflowsError as exc:
            _failed(operation, instance_id, str(exc))

    async def _act_on_task(self, operation: BulkOperation, task: HumanTask) -> None:
        request = operation.request
        same_user = request.to_user is None or task.assignee_id == request.to_user
        same_group = request.to_group is None or task.assignee_group == request.to_group
        if task.status is not TaskStatus.PENDING or (same_user and same_group):
            operation.skipped += 1
            return
        try:
            await self.engine.reassign_task(
                task.id,
                request.to_user,
                assignee_group=request.to_group,
                reason=request.reason,
                reassigned_by=operation.created_by,
            )
            operation.acted += 1
        except InvalidTransitionError:
            operation.skipped += 1
        except WorkflowsError as exc:
            _failed(operation, task.id, str(exc))


def _check_admin(user: User) -> None:
    if not user.is_admin:
        raise PermissionDeniedError("bulk operations need an admin")


def _failed(operation: BulkOperation, item_id: str, why: str) -> None:
    operation.failed += 1
    _remember(operation, f"{item_id}: {why}")


def _remember(operation: BulkOperation, error: str) -> None:
    if len(operation.errors) < BULK_ERRORS_KEPT:
        operation.errors.append(error)
