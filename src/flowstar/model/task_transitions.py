"""Transitions of a human task that do not finish it: claim, unclaim, comment, escalate.

Like every transition, each returns the ``CommitPlan`` the engine commits with the
instance's version check; the audit trail entry and the event travel in the same plan.
Who may do them is checked before, by ``flowstar.model.access``.
"""

from __future__ import annotations

from datetime import datetime

from flowstar.model.builder import NewId, PlanBuilder, StaleTokenError
from flowstar.model.definition import WorkflowDefinition
from flowstar.model.enums import TaskStatus
from flowstar.model.errors import TaskAlreadyCompletedError, ValidationError
from flowstar.model.escalation import Escalation
from flowstar.model.events import HumanTaskClaimed, HumanTaskCommented, HumanTaskEscalated, HumanTaskUnclaimed
from flowstar.model.state import CommitPlan, HumanTask, InstanceState, TaskUpdate, Token
from flowstar.model.steps import BaseHumanStep
from flowstar.model.transitions import apply_reassignment

__all__ = ["COMMENT_LIMIT", "check_comment", "claim_task", "comment_task", "escalate_task", "unclaim_task"]

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


def check_comment(text: str, what: str = "comment") -> str:
    """The text of a comment (or of a reassignment's ``what="reason"``), stripped.

    Raises:
        ValidationError: not a string, empty, or longer than ``COMMENT_LIMIT``.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"a {what} needs some text")
    text = text.strip()
    if len(text) > COMMENT_LIMIT:
        raise ValidationError(f"a {what} has at most {COMMENT_LIMIT} characters, this one has {len(text)}")
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


def escalate_task(
    definition: WorkflowDefinition,
    state: InstanceState,
    token_id: str,
    task: HumanTask | None,
    *,
    now: datetime,
    new_id: NewId,
    events: bool = True,
) -> CommitPlan:
    """Fire the due escalation timer ``token_id`` of open ``task`` (see ``Escalation``).

    A timer whose task is gone or finished is only dropped.

    Raises:
        TaskAlreadyCompletedError: the timer was consumed already.
    """
    tr = PlanBuilder(definition, state, now, new_id, events)
    try:
        token = tr.take(token_id)
    except StaleTokenError as exc:
        raise TaskAlreadyCompletedError(f"escalation {exc} fired or was dropped already") from exc
    escalation = _escalation_of(definition, token)
    if escalation is None or task is None or task.status is not TaskStatus.PENDING:
        return tr.finish()
    if escalation.action == "escalated":
        reason = f"still open {escalation.after} after it was created"
        group = escalation.to_group or task.assignee_group
        apply_reassignment(tr, task, escalation.to_user, group, actor=None, reason=reason, action="escalated")
        owner = escalation.to_user
    else:
        group = task.assignee_group
        owner = task.claimed_by or task.assignee_id
        tr.record_audit(task.id, "reminded", None, {"open_since": task.created_at.isoformat()})
        if escalation.every is not None:
            tr.add_token(
                token.step, "escalation", due_at=now + escalation.every, task_id=task.id, escalation=token.escalation
            )
    tr.emit(
        HumanTaskEscalated,
        task_id=task.id,
        step_name=task.step_name,
        action=escalation.action,
        task_title=task.title,
        assignee=owner,
        assignee_group=group,
    )
    return tr.finish()


def _escalation_of(definition: WorkflowDefinition, token: Token) -> Escalation | None:
    step = definition.steps.get(token.step)
    if not isinstance(step, BaseHumanStep) or token.escalation is None:
        return None
    found = list(step.escalations)
    return found[token.escalation] if 0 <= token.escalation < len(found) else None
