"""What a task page offers and does besides its form: claim, unclaim, comment, reassign.

Which buttons show comes from the engine's own rules (``flowstar.model.access``), so the
page offers exactly what the engine would accept; the actions themselves call the engine
with ``user=``, which checks again. The audit trail is turned into lines to show here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flowstar.engine.core import Engine
from flowstar.model.access import User, check_claim, check_complete, check_reassign, check_unclaim, has_candidates
from flowstar.model.enums import TaskStatus
from flowstar.model.errors import PermissionDeniedError, ValidationError, WorkflowsError
from flowstar.model.state import HumanTask, TaskAuditEntry
from flowstar.web.auth import UserDirectory
from flowstar.web.ui.forms import FormValues

__all__ = [
    "ACTIONS",
    "ANONYMOUS",
    "ActionCall",
    "AuditLine",
    "TaskAbilities",
    "abilities",
    "action_context",
    "assignable_users",
    "audit_lines",
    "check_assignee",
]

ANONYMOUS = "anonymous"
"""Who acts when no user provider is configured (a trusted back office)."""


def _allowed(check: Callable[[], object]) -> bool:
    try:
        check()
    except WorkflowsError:
        return False
    return True


@dataclass(frozen=True)
class TaskAbilities:
    """What the page offers the user for one task."""

    claim: bool = False
    unclaim: bool = False
    reassign: bool = False
    complete: bool = False
    complete_note: str = ""
    """Why the completion form is disabled (empty when it is not)."""


def _complete_note(task: HumanTask, user: User) -> str:
    if task.claimed_by is not None and task.claimed_by != user.id:
        return f"This task is claimed by {task.claimed_by}; only they can complete it."
    if task.claimed_by is None and has_candidates(task):
        return "Claim this task to work on it: the form opens once it is yours."
    return "You may not complete this task."


def abilities(task: HumanTask, user: User | None) -> TaskAbilities:
    """The actions that apply to ``task`` for ``user`` (None: a trusted back office)."""
    if task.status is not TaskStatus.PENDING:
        return TaskAbilities()
    if user is None:
        # A trusted caller may do anything but claim (a claim needs a user to hold it).
        return TaskAbilities(unclaim=task.claimed_by is not None, reassign=True, complete=True)
    complete = _allowed(lambda: check_complete(task, user, None))
    return TaskAbilities(
        # Claiming is for tasks offered to candidates; a task assigned to one user is theirs already.
        claim=task.claimed_by is None and has_candidates(task) and _allowed(lambda: check_claim(task, user)),
        unclaim=task.claimed_by is not None and _allowed(lambda: check_unclaim(task, user)),
        reassign=_allowed(lambda: check_reassign(task, user)),
        complete=complete,
        complete_note="" if complete else _complete_note(task, user),
    )


@dataclass(frozen=True)
class AuditLine:
    """One line of the audit trail as the page shows it."""

    at: datetime
    actor: str | None
    what: str
    detail: str = ""


_LABELS: dict[str, str] = {
    "created": "Created",
    "claimed": "Claimed",
    "unclaimed": "Unclaimed",
    "reassigned": "Reassigned",
    "commented": "Commented",
    "completed": "Completed",
    "canceled": "Canceled",
    "reminded": "Reminder sent",
    "escalated": "Escalated",
}


def _target(user_id: Any, group: Any) -> str:
    parts = [str(user_id)] if user_id else []
    if group:
        parts.append(f"group {group}")
    return " / ".join(parts) or "nobody"


def _detail(entry: TaskAuditEntry) -> str:
    details = entry.details
    if entry.action == "commented":
        return str(details.get("text", ""))
    if entry.action in ("reassigned", "escalated"):
        reason = details.get("reason")
        moved = f"to {_target(details.get('new_assignee'), details.get('new_group'))}"
        return f"{moved}; reason: {reason}" if reason else moved
    claimer = details.get("claimed_by")
    if entry.action == "unclaimed" and claimer and claimer != entry.actor:
        return f"claim of {claimer}"
    return ""


def audit_lines(entries: list[TaskAuditEntry]) -> list[AuditLine]:
    """The trail's entries, oldest first, as who / what / details lines."""
    return [AuditLine(at=e.at, actor=e.actor, what=_LABELS.get(e.action, e.action), detail=_detail(e)) for e in entries]


@dataclass(frozen=True)
class ActionCall:
    """One posted action: the task (visible to the user), who acts, and the posted fields."""

    engine: Engine
    task: HumanTask
    user: User | None
    form: FormValues
    directory: UserDirectory | None = None

    def field(self, name: str) -> str:
        """The posted field's first value, stripped ("" when absent)."""
        return (self.form.get(name) or [""])[0].strip()


async def _claim(call: ActionCall) -> None:
    if call.user is None:
        raise PermissionDeniedError("a claim needs a signed-in user")
    await call.engine.claim_task(call.task.id, user=call.user)


async def _unclaim(call: ActionCall) -> None:
    await call.engine.unclaim_task(call.task.id, user=call.user)


async def _comment(call: ActionCall) -> None:
    author = None if call.user is not None else ANONYMOUS
    await call.engine.comment_task(call.task.id, call.field("text"), user=call.user, author=author)


def check_assignee(directory: UserDirectory | None, user: User | None, assignee: str) -> None:
    """Refuse an assignee the directory does not know in ``user``'s tenant.

    A task handed to an id nobody signs in with would vanish from every inbox.

    Raises:
        ValidationError: no such user (with no directory, any id is taken).
    """
    if directory is None:
        return
    known = directory.get(assignee)
    if known is None or (user is not None and known.tenant_id != user.tenant_id):
        raise ValidationError(f"there is no user {assignee!r} to give the task to")


async def _reassign(call: ActionCall) -> None:
    assignee, group, reason = call.field("assignee") or None, call.field("group") or None, call.field("reason")
    if assignee is None and group is None:
        raise ValidationError("name the user or the group to give the task to")
    if not reason:
        raise ValidationError("a reassignment needs a reason")
    if assignee is not None:
        check_assignee(call.directory, call.user, assignee)
    await call.engine.reassign_task(
        call.task.id,
        assignee,
        assignee_group=group,
        reason=reason,
        user=call.user,
        reassigned_by=None if call.user is not None else ANONYMOUS,
    )


ACTIONS: Mapping[str, Callable[[ActionCall], Awaitable[None]]] = {
    "claim": _claim,
    "unclaim": _unclaim,
    "comment": _comment,
    "reassign": _reassign,
}
"""The task page's actions by the name in their URL (``POST /tasks/{id}/{name}``)."""


def assignable_users(directory: UserDirectory | None, user: User | None) -> list[User]:
    """The users a task may be given to: the directory's, in ``user``'s tenant."""
    if directory is None:
        return []
    tenant = user.tenant_id if user is not None else None
    return [u for u in directory.users() if user is None or u.tenant_id == tenant]


async def action_context(
    engine: Engine, task: HumanTask, user: User | None, directory: UserDirectory | None
) -> dict[str, Any]:
    """What the task page shows beside its form: buttons that apply, comments, the audit trail."""
    entries = await engine.task_audit(task.id, user=user)
    return {
        "can": abilities(task, user),
        "comments": [e for e in entries if e.action == "commented"],
        "audit": audit_lines(entries),
        "assignable": assignable_users(directory, user),
    }
