"""Who is acting, and what they may do: the rules every entry point applies.

The engine's read and write calls take an optional ``user``.  With one, they enforce the
task's assignment and candidates, admin rights and the tenant themselves (through the
functions below), so the REST API, the HTML inbox, the SSE feed and the CLI cannot disagree
about who may do what.  Without one (``user=None``) the caller is a trusted back end, as in
the reference API.

The rules:

- another tenant's task or instance does not exist for the user (a not-found error);
- an admin may see and act on every task and instance of their tenant;
- otherwise a task is the user's when it is assigned to them, claimed by them, names them
  among its candidate users, or names one of their groups among its candidate groups (its
  ``assignee_group`` included); any other task is refused (``PermissionDeniedError``).
"""

from __future__ import annotations

import msgspec

from flowstar.model.enums import TaskStatus
from flowstar.model.errors import (
    InstanceNotFoundError,
    InvalidTransitionError,
    PermissionDeniedError,
    TaskAlreadyCompletedError,
    TaskClaimedError,
    TaskNotFoundError,
    ValidationError,
)
from flowstar.model.state import HumanTask, InstanceState

__all__ = [
    "User",
    "candidate_pairs",
    "check_admin",
    "check_claim",
    "check_complete",
    "check_instance",
    "check_name",
    "check_reassign",
    "check_task",
    "check_unclaim",
    "has_candidates",
    "is_users_task",
]


class User(msgspec.Struct, frozen=True, kw_only=True):
    """A signed-in user.

    Attributes:
        id: the user's id (what ``completed_by``, ``claimed_by`` and the audit trail hold).
        groups: the groups the user belongs to (candidate groups of tasks).
        tenant_id: the user's tenant; None outside a multi-tenant deployment.
        is_admin: may use admin actions (cancel, retry, reassign anybody's task) in its tenant.
        display_name: a name to show; the id when None.
    """

    id: str
    groups: frozenset[str] = frozenset()
    tenant_id: str | None = None
    is_admin: bool = False
    display_name: str | None = None

    @property
    def name(self) -> str:
        """The name to show."""
        return self.display_name or self.id


# Ids of users and tenants are stored in columns of this size.
MAX_NAME_LENGTH = 255


def check_name(value: str | None, what: str) -> str | None:
    """``value``, a user's or tenant's id as a caller gives it (None: nobody, no tenant).

    Checked where it enters, so that every store takes or refuses the same ids.

    Raises:
        ValidationError: not a string, empty, longer than 255 characters, or with a NUL.
    """
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > MAX_NAME_LENGTH:
        raise ValidationError(f"{what} has at most {MAX_NAME_LENGTH} characters, this one has {len(value)}")
    if "\x00" in value:
        raise ValidationError(f"{what} must not contain a NUL character")
    return value


def candidate_pairs(users: list[str], groups: list[str], assignee_group: str | None) -> tuple[tuple[str, str], ...]:
    """A task's candidate rows as ``(kind, name)``: its users, its groups and its assignee group."""
    pairs = [("user", name) for name in users] + [("group", name) for name in groups]
    if assignee_group and assignee_group not in groups:
        pairs.append(("group", assignee_group))
    return tuple(pairs)


def has_candidates(task: HumanTask) -> bool:
    """Whether the task names candidates (users, groups or an assignee group) who must claim it."""
    return bool(task.candidate_users or task.candidate_groups or task.assignee_group)


def is_users_task(task: HumanTask, user: User) -> bool:
    """Whether the task is ``user``'s: assigned, claimed, or naming them or a group of theirs."""
    uid = user.id
    if uid in (task.assignee_id, task.claimed_by) or uid in task.candidate_users:
        return True
    groups = user.groups
    return bool(groups) and (task.assignee_group in groups or not groups.isdisjoint(task.candidate_groups))


def check_task(task: HumanTask, user: User | None) -> None:
    """Refuse a user who may not see ``task``.

    Raises:
        TaskNotFoundError: another tenant's task.
        PermissionDeniedError: not the user's task, and the user is no admin.
    """
    if user is None:
        return
    if task.tenant_id != user.tenant_id:
        raise TaskNotFoundError(f"no task with id {task.id}")
    if not user.is_admin and not is_users_task(task, user):
        raise PermissionDeniedError(f"task {task.id} is not assigned to {user.id} or their groups")


def check_instance(state: InstanceState, user: User | None, *, has_task: bool = False) -> None:
    """Refuse a user who may not see the instance: an admin, its creator, or one with a task in it may.

    Raises:
        InstanceNotFoundError: another tenant's instance.
        PermissionDeniedError: the user is none of those.
    """
    if user is None:
        return
    if state.tenant_id != user.tenant_id:
        raise InstanceNotFoundError(f"no workflow instance with id {state.id!r}")
    if not (user.is_admin or state.created_by == user.id or has_task):
        raise PermissionDeniedError(f"instance {state.id} is not visible to {user.id}")


def check_admin(state: InstanceState, user: User | None, action: str) -> None:
    """Refuse a user who is not an admin of the instance's tenant (cancel, retry).

    Raises:
        InstanceNotFoundError: another tenant's instance.
        PermissionDeniedError: the user is no admin.
    """
    if user is None:
        return
    if state.tenant_id != user.tenant_id:
        raise InstanceNotFoundError(f"no workflow instance with id {state.id!r}")
    if not user.is_admin:
        raise PermissionDeniedError(f"only an admin may {action} a workflow instance")


def _check_open(task: HumanTask, action: str) -> None:
    if task.status is not TaskStatus.PENDING:
        raise TaskAlreadyCompletedError(f"task {task.id} is {task.status.value} and cannot be {action}")


def check_claim(task: HumanTask, user: User) -> None:
    """Refuse a claim: not the user's task, not open, or claimed by someone else.

    Raises:
        TaskNotFoundError, PermissionDeniedError: as ``check_task``.
        TaskAlreadyCompletedError: the task is completed or canceled.
        TaskClaimedError: another user has claimed it.
    """
    check_task(task, user)
    _check_open(task, "claimed")
    if task.claimed_by is not None and task.claimed_by != user.id:
        raise TaskClaimedError(f"task {task.id} is claimed by {task.claimed_by}")


def check_unclaim(task: HumanTask, user: User) -> None:
    """Refuse an unclaim by anyone but the claimer or an admin, or of an unclaimed task.

    Raises:
        TaskNotFoundError: another tenant's task.
        PermissionDeniedError: the user is neither the claimer nor an admin.
        TaskAlreadyCompletedError: the task is completed or canceled.
        InvalidTransitionError: nobody has claimed the task.
    """
    check_task(task, user)
    _check_open(task, "unclaimed")
    if task.claimed_by is None:
        raise InvalidTransitionError(f"task {task.id} is not claimed")
    if task.claimed_by != user.id and not user.is_admin:
        raise PermissionDeniedError(f"task {task.id} is claimed by another user; only they or an admin may unclaim it")


def check_complete(task: HumanTask, user: User | None, user_id: str | None) -> str | None:
    """Who completes ``task``: ``user_id`` for a trusted caller, else the user, if they may.

    A task assigned to someone may be completed by that user, its claimer or an admin; a
    task with candidates only and no assignee must first be claimed by the user who
    completes it (an admin too need not claim).

    Raises:
        TaskNotFoundError, PermissionDeniedError: as ``check_task``; also for a
            ``user_id`` other than the user's, and for a candidate who has not claimed it.
    """
    if user is None:
        return user_id
    check_task(task, user)
    if user_id is not None and user_id != user.id:
        raise PermissionDeniedError(f"{user.id} may not complete a task as {user_id}")
    if user.is_admin:
        return user.id
    if task.assignee_id is not None:
        if user.id not in (task.assignee_id, task.claimed_by):
            raise PermissionDeniedError(f"task {task.id} is assigned to another user")
    elif task.claimed_by != user.id and (has_candidates(task) or task.claimed_by is not None):
        raise PermissionDeniedError(f"claim the task first: task {task.id} has candidates")
    return user.id


def check_reassign(task: HumanTask, user: User | None) -> None:
    """Refuse a reassignment: a user may hand on a task assigned to or claimed by them; an admin any.

    Raises:
        TaskNotFoundError, PermissionDeniedError: as ``check_task``; also for a task that
            is not assigned to or claimed by the (non-admin) user.
    """
    if user is None:
        return
    check_task(task, user)
    if not user.is_admin and user.id not in (task.assignee_id, task.claimed_by):
        raise PermissionDeniedError(f"only an admin may reassign task {task.id} of another user")
