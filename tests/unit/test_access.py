"""The access rules of ``flowstar.model.access``, one by one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from flowstar.model.access import (
    User,
    candidate_pairs,
    check_admin,
    check_claim,
    check_complete,
    check_instance,
    check_reassign,
    check_task,
    check_unclaim,
    is_users_task,
)
from flowstar.model.enums import TaskStatus, WorkflowStatus
from flowstar.model.errors import (
    InstanceNotFoundError,
    InvalidTransitionError,
    PermissionDeniedError,
    TaskAlreadyCompletedError,
    TaskClaimedError,
    TaskNotFoundError,
)
from flowstar.model.state import HumanTask, InstanceState

NOW = datetime(2026, 12, 1, tzinfo=UTC)
ALICE = User(id="alice", groups=frozenset({"clerks"}), tenant_id="t1")
BOB = User(id="bob", tenant_id="t1")
ADMIN = User(id="root", tenant_id="t1", is_admin=True)
OTHER_ADMIN = User(id="root2", tenant_id="t2", is_admin=True)


def _task(**fields: Any) -> HumanTask:
    base = HumanTask(
        id="task", instance_id="i", workflow_name="w", step_name="s", title="T", created_at=NOW, tenant_id="t1"
    )
    return msgspec.structs.replace(base, **fields)


def _state(**fields: Any) -> InstanceState:
    base = InstanceState(
        id="i",
        workflow_name="w",
        workflow_version="1",
        status=WorkflowStatus.WAITING,
        data={},
        tenant_id="t1",
        started_at=NOW,
        updated_at=NOW,
    )
    return msgspec.structs.replace(base, **fields)


@pytest.mark.parametrize(
    "task",
    [
        _task(assignee_id="alice"),
        _task(claimed_by="alice"),
        _task(candidate_users=["alice"]),
        _task(candidate_groups=["clerks"]),
        _task(assignee_group="clerks"),
    ],
)
def test_a_task_is_the_users_by_each_rule(task: HumanTask) -> None:
    assert is_users_task(task, ALICE)
    check_task(task, ALICE)
    assert not is_users_task(task, BOB)
    with pytest.raises(PermissionDeniedError):
        check_task(task, BOB)


def test_trusted_caller_and_admin_see_everything_of_their_tenant() -> None:
    task = _task(assignee_id="carol")
    check_task(task, None)
    check_task(task, ADMIN)
    with pytest.raises(TaskNotFoundError):
        check_task(task, OTHER_ADMIN)  # another tenant's task does not exist for them


def test_claim_rules() -> None:
    check_claim(_task(candidate_groups=["clerks"]), ALICE)
    with pytest.raises(TaskClaimedError):
        check_claim(_task(candidate_groups=["clerks"], claimed_by="zoe"), ALICE)
    assert issubclass(TaskClaimedError, InvalidTransitionError)
    with pytest.raises(TaskAlreadyCompletedError):
        check_claim(_task(candidate_users=["alice"], status=TaskStatus.COMPLETED), ALICE)
    with pytest.raises(PermissionDeniedError):
        check_claim(_task(candidate_users=["carol"]), ALICE)


def test_unclaim_rules() -> None:
    claimed = _task(candidate_users=["alice", "bob"], claimed_by="alice")
    check_unclaim(claimed, ALICE)
    check_unclaim(claimed, ADMIN)
    with pytest.raises(PermissionDeniedError):
        check_unclaim(claimed, BOB)
    with pytest.raises(InvalidTransitionError):
        check_unclaim(_task(candidate_users=["alice"]), ALICE)


def test_complete_rules() -> None:
    candidates = _task(candidate_groups=["clerks"])
    with pytest.raises(PermissionDeniedError, match="claim the task first"):
        check_complete(candidates, ALICE, None)
    assert check_complete(_task(candidate_groups=["clerks"], claimed_by="alice"), ALICE, None) == "alice"
    assigned = _task(assignee_id="alice")
    assert check_complete(assigned, ALICE, "alice") == "alice"
    with pytest.raises(PermissionDeniedError):
        check_complete(assigned, ALICE, "mallory")  # a different explicit user id
    with pytest.raises(PermissionDeniedError):
        check_complete(_task(assignee_id="alice", candidate_users=["bob"]), BOB, None)
    assert check_complete(assigned, ADMIN, None) == "root"
    assert check_complete(assigned, None, "anyone") == "anyone"


def test_admin_only_actions() -> None:
    state = _state()
    check_admin(state, None, "cancel")
    check_admin(state, ADMIN, "cancel")
    with pytest.raises(PermissionDeniedError):
        check_admin(state, ALICE, "cancel")
    with pytest.raises(InstanceNotFoundError):
        check_admin(state, OTHER_ADMIN, "retry")


def test_reassign_rules() -> None:
    check_reassign(_task(assignee_id="alice"), ALICE)
    check_reassign(_task(candidate_users=["alice"], claimed_by="alice"), ALICE)
    check_reassign(_task(assignee_id="carol"), ADMIN)
    with pytest.raises(PermissionDeniedError):
        check_reassign(_task(candidate_users=["alice"]), ALICE)


def test_instance_visibility() -> None:
    check_instance(_state(created_by="alice"), ALICE)
    check_instance(_state(), ALICE, has_task=True)
    check_instance(_state(), ADMIN)
    with pytest.raises(PermissionDeniedError):
        check_instance(_state(), ALICE)
    with pytest.raises(InstanceNotFoundError):
        check_instance(_state(tenant_id="t2"), ALICE)


def test_candidate_pairs_include_the_assignee_group_once() -> None:
    assert candidate_pairs(["u"], ["g"], "h") == (("user", "u"), ("group", "g"), ("group", "h"))
    assert candidate_pairs([], ["g"], "g") == (("group", "g"),)
