"""The engine's task calls: claim, unclaim, complete, reassign, comment, audit trail.

Each takes ``user`` (None: a trusted back end) and applies ``flowstar.model.access``'s rules
before it builds its transition.  A change to a task is committed like every other change,
with the instance's version check: the state is loaded BEFORE the task is read, so a task
changed by someone else in between (every task change bumps the instance's version) makes
the commit fail, and the call starts over on fresh data instead of acting on a stale task.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from uuid import UUID

from flowstar.engine.ids import new_id
from flowstar.engine.loop import MAX_COMMIT_CONFLICTS, EngineLoop
from flowstar.engine.views import WorkflowInstance
from flowstar.model.access import (
    User,
    check_claim,
    check_complete,
    check_reassign,
    check_task,
    check_unclaim,
)
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.errors import ConcurrencyError, TaskAlreadyCompletedError, ValidationError
from flowstar.model.state import CommitPlan, HumanTask, InstanceState, TaskAuditEntry, Token
from flowstar.model.task_transitions import check_comment, claim_task, comment_task, unclaim_task
from flowstar.model.transitions import reassign_task

__all__ = ["EngineTasks"]

TaskBuild = Callable[[WorkflowDefinition, InstanceState, HumanTask], CommitPlan]


class EngineTasks(EngineLoop):
    """Task calls of ``Engine`` (its base class)."""

    # Engine's (core.py): validates the form and finishes the wait.
    _complete_task_token: Callable[[InstanceState, Token, str | None, Mapping[str, Any]], Awaitable[WorkflowInstance]]

    async def _change_task(
        self, task_id: UUID | str, user: User | None, check: Callable[[HumanTask], None], build: TaskBuild
    ) -> CommitPlan:
        """Check and change a task, starting over when the instance changed meanwhile."""
        instance_id = (await self.get_task(task_id, user=user)).instance_id
        for _ in range(MAX_COMMIT_CONFLICTS):
            state = await self._load(instance_id)
            task = await self.get_task(task_id, user=user)
            check(task)
            plan = build(self._definition(state), state, task)
            if await self._commit(plan):
                return plan
        raise ConcurrencyError(f"instance {instance_id} kept changing; gave up after {MAX_COMMIT_CONFLICTS} tries")

    async def claim_task(self, task_id: UUID | str, *, user: User) -> HumanTask:
        """``user`` claims the task: it is theirs to complete (claiming one's own claim again changes nothing).

        Raises:
            TaskNotFoundError: unknown id, or another tenant's task.
            PermissionDeniedError: not the user's task (nor an admin's).
            TaskClaimedError: another user has claimed it.
            TaskAlreadyCompletedError: the task is completed or canceled.
            TypeError: no user (a claim is always somebody's, also for a trusted caller).
        """
        if not isinstance(user, User):
            raise TypeError(f"claim_task needs the user who claims the task (user=User(...)), got {user!r}")
        task = await self.get_task(task_id, user=user)
        check_claim(task, user)
        if task.claimed_by == user.id:
            return task
        await self._change_task(
            task_id,
            user,
            lambda t: check_claim(t, user),
            lambda d, s, t: claim_task(
                d, s, t, user_id=user.id, now=self.clock.now(), new_id=new_id, events=self.events_enabled
            ),
        )
        return await self.get_task(task_id)

    async def unclaim_task(self, task_id: UUID | str, *, user: User | None) -> HumanTask:
        """End the task's claim (its claimer or an admin; anybody's for a trusted caller).

        Raises:
            TaskNotFoundError, PermissionDeniedError, TaskAlreadyCompletedError: as for claims.
            InvalidTransitionError: nobody has claimed the task.
        """

        def check(task: HumanTask) -> None:
            if user is None:
                check_unclaim(task, User(id=task.claimed_by or "", tenant_id=task.tenant_id, is_admin=True))
            else:
                check_unclaim(task, user)

        await self._change_task(
            task_id,
            user,
            check,
            lambda d, s, t: unclaim_task(
                d,
                s,
                t,
                actor=user.id if user else None,
                now=self.clock.now(),
                new_id=new_id,
                events=self.events_enabled,
            ),
        )
        return await self.get_task(task_id)

    async def complete_task(
        self,
        task_id: UUID | str,
        user_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        user: User | None = None,
    ) -> WorkflowInstance:
        """Submit the task's form and continue the workflow.

        With a ``user``, they complete it (``user_id`` may only repeat their id): a task
        assigned to someone is completed by that user, its claimer or an admin; a task with
        candidates and no assignee must first be claimed by the user.

        Raises:
            TaskNotFoundError: unknown id, or another tenant's task.
            PermissionDeniedError: the user may not complete it (see above).
            TaskAlreadyCompletedError: the task was completed or canceled already.
            FormValidationError: ``data`` breaks the step's ``form_schema`` (nothing changes).
        """
        task = await self.get_task(task_id, user=user)
        state = await self._load(task.instance_id)
        task = await self.get_task(task_id, user=user)
        completed_by = check_complete(task, user, user_id)
        token = next((t for t in state.tokens.values() if t.kind == "human" and t.task_id == task.id), None)
        if token is None:
            raise TaskAlreadyCompletedError(f"task {task.id} is {task.status.value}")
        return await self._complete_task_token(state, token, completed_by, data if data is not None else {})

    async def reassign_task(
        self,
        task_id: UUID | str,
        assignee_id: str | None,
        *,
        assignee_group: str | None = None,
        reason: str | None = None,
        reassigned_by: str | None = None,
        user: User | None = None,
    ) -> HumanTask:
        """Give an open task to another user (and/or group), with an optional reason; its claim ends.

        A user may hand on a task assigned to or claimed by them; an admin any task of the
        tenant.  With a user, ``reassigned_by`` is the user.

        Raises:
            TaskNotFoundError, PermissionDeniedError: as for claims.
            TaskAlreadyCompletedError: the task is completed or canceled.
            ValidationError: an empty user or group name, or a reason that is blank or too
                long (see ``check_comment``).
        """
        for what, name in (("user", assignee_id), ("group", assignee_group)):
            if name is not None and (not isinstance(name, str) or not name.strip()):
                # An empty name would leave the open task in nobody's inbox.
                raise ValidationError(f"a task is reassigned to a user or group name, not {name!r} ({what})")
        if reason is not None:
            reason = check_comment(reason, "reason")
        by = user.id if user is not None else reassigned_by
        await self._change_task(
            task_id,
            user,
            lambda t: check_reassign(t, user),
            lambda d, s, t: reassign_task(
                d,
                s,
                t,
                assignee_id=assignee_id,
                assignee_group=assignee_group,
                reassigned_by=by,
                reason=reason,
                now=self.clock.now(),
                new_id=new_id,
                events=self.events_enabled,
            ),
        )
        return await self.get_task(task_id)

    async def comment_task(
        self, task_id: UUID | str, text: str, *, user: User | None = None, author: str | None = None
    ) -> TaskAuditEntry:
        """Add a comment to the task's audit trail (the author is the user, if given).

        Raises:
            TaskNotFoundError, PermissionDeniedError: as for claims.
            ValidationError: an empty comment, or one over ``COMMENT_LIMIT`` characters.
        """
        text = check_comment(text)
        by = user.id if user is not None else author
        plan = await self._change_task(
            task_id,
            user,
            lambda t: None,
            lambda d, s, t: comment_task(
                d, s, t, text=text, author=by, now=self.clock.now(), new_id=new_id, events=self.events_enabled
            ),
        )
        return plan.audit[-1]

    async def task_audit(self, task_id: UUID | str, *, user: User | None = None) -> list[TaskAuditEntry]:
        """Who did what to the task, and when, oldest first.

        Raises:
            TaskNotFoundError, PermissionDeniedError: as ``get_task``.
        """
        task = await self.get_task(task_id, user=user)
        check_task(task, user)
        return await self.store.task_audit(task.id)
