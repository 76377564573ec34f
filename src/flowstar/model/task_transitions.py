"""Transitions of a human task that do not finish it: claim, unclaim, comment.

Like every transition, each returns the ``CommitPlan`` the engine commits with the
instance's version check; the audit trail entry and the event travel in the same plan.
Who may do them is checked before, by ``flowstar.model.access``.
"""

from __future__ import annotations

from datetime import datetime

from flowstar.model.builder import NewId, PlanBuilder
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.enums import TaskStatus
from flowstar.model.errors import TaskAlreadyCompletedError, ValidationError
from flowstar.model.events import HumanTaskClaimed, HumanTaskCommented, HumanTaskUnclaimed
from flowstar.model.state import CommitPlan, HumanTask, InstanceState, TaskUpdate

__all__ = ["COMMENT_LIMIT", "check_comment", "claim_task", "comment_task", "unclaim_task"]

# Characters of one comment: a note for colleagues, not a document store.
COMMENT_LIMIT = 4000


def _check_open(state: InstanceState, task: HumanTask, action: str) -> None:
    if task.status is not TaskStatus.PENDING or task.id not in {t.task_id for t in state.tokens.values()}:
        raise TaskAlreadyCompletedError(f"task {task.id} is {task.status.value} and cannot be {action}")


def claim_task(
    definition: WorkflowDefinition,
    state: InstanceState,
    task: HumanTask,
    *,
    user_id: str,
    now: datetime,
    new_id: NewId,
    events: bool = True,
) -> CommitPlan:
    """``user_id`` claims the open task.

    Raises:
        TaskAlreadyCompletedError: the task is completed or canceled.
    """
    _check_open(state, task, "claimed")
    tr = PlanBuilder(definition, state, now, new_id, events)
    tr.task_updates.append(TaskUpdate(id=task.id, claim=True, claimed_by=user_id, claimed_at=now))
    tr.record_audit(task.id, "claimed", user_id)
    tr.emit(HumanTaskClaimed, task_id=task.id, step_name=task.step_name, claimed_by=user_id)
    return tr.finish()


def unclaim_task(
    definition: WorkflowDefinition,
    state: InstanceState,
    task: HumanTask,
    *,
    actor: str | None,
    now: datetime,
    new_id: NewId,
    events: bool = True,
) -> CommitPlan:
    """End the task's claim (by its claimer, an admin or a trusted caller)."""
    _check_open(state, task, "unclaimed")
    tr = PlanBuilder(definition, state, now, new_id, events)
    tr.task_updates.append(TaskUpdate(id=task.id, claim=True))
    claimer = task.claimed_by or ""
    tr.record_audit(task.id, "unclaimed", actor, {"claimed_by": claimer})
    tr.emit(HumanTaskUnclaimed, task_id=task.id, step_name=task.step_name, claimed_by=claimer, unclaimed_by=actor)
    return tr.finish()


def check_comment(text: str) -> str:
    """The comment's text, stripped.

    Raises:
        ValidationError: not a string, empty, or longer than ``COMMENT_LIMIT``.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("a comment needs some text")
    text = text.strip()
    if len(text) > COMMENT_LIMIT:
        raise ValidationError(f"a comment has at most {COMMENT_LIMIT} characters, this one has {len(text)}")
    return text


def comment_task(
    definition: WorkflowDefinition,
    state: InstanceState,
    task: HumanTask,
    *,
    text: str,
    author: str | None,
    now: datetime,
    new_id: NewId,
    events: bool = True,
) -> CommitPlan:
    """Add a comment to the task's audit trail (open or finished tasks alike).

    Raises:
        ValidationError: see ``check_comment``.
    """
    text = check_comment(text)
    tr = PlanBuilder(definition, state, now, new_id, events)
    entry = tr.record_audit(task.id, "commented", author, {"text": text})
    tr.emit(HumanTaskCommented, task_id=task.id, step_name=task.step_name, entry_id=entry.id, author=author)
    return tr.finish()
