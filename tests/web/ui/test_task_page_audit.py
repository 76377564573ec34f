"""How the task page words the audit trail and which buttons it offers (the engine's rules)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flowstar.model.access import User
from flowstar.model.enums import TaskStatus
from flowstar.model.state import HumanTask, TaskAuditEntry
from flowstar.web.ui.task_actions import AuditLine, TaskAbilities, abilities, audit_lines

AT = datetime(2030, 1, 1, tzinfo=UTC)
BOB = User(id="bob", groups=frozenset({"managers"}), tenant_id="acme")
CAROL = User(id="carol", groups=frozenset({"finance"}), tenant_id="acme")
ADMIN = User(id="admin", tenant_id="acme", is_admin=True)


def _entry(action: Any, actor: str | None, **details: Any) -> TaskAuditEntry:
    return TaskAuditEntry(id=action, task_id="t", instance_id="i", action=action, actor=actor, at=AT, details=details)


def _task(**fields: Any) -> HumanTask:
    base: dict[str, Any] = {
        "id": "t",
        "instance_id": "i",
        "workflow_name": "w",
        "step_name": "s",
        "title": "T",
        "created_at": AT,
        "tenant_id": "acme",
    }
    return HumanTask(**{**base, **fields})


def test_audit_lines_say_who_did_what() -> None:
    moved = {"old_assignee": "bob", "old_group": None}
    lines = audit_lines(
        [
            _entry("created", None),
            _entry("claimed", "bob"),
            _entry("unclaimed", "admin", claimed_by="bob"),
            _entry("unclaimed", "bob", claimed_by="bob"),
            _entry("reassigned", "bob", **moved, new_assignee="carol", new_group="finance", reason="on leave"),
            _entry("escalated", None, **moved, new_assignee=None, new_group="managers"),
            _entry("commented", "carol", text="done soon"),
            _entry("reminded", None, open_since=AT.isoformat()),
            _entry("completed", "carol"),
        ]
    )
    assert [(line.actor, line.what, line.detail) for line in lines] == [
        (None, "Created", ""),
        ("bob", "Claimed", ""),
        ("admin", "Unclaimed", "claim of bob"),
        ("bob", "Unclaimed", ""),
        ("bob", "Reassigned", "to carol / group finance; reason: on leave"),
        (None, "Escalated", "to group managers"),
        ("carol", "Commented", "done soon"),
        (None, "Reminder sent", ""),
        ("carol", "Completed", ""),
    ]
    assert lines[0] == AuditLine(at=AT, actor=None, what="Created")


def test_buttons_follow_the_claim() -> None:
    offered = _task(candidate_groups=["managers"])
    assert abilities(offered, BOB) == TaskAbilities(
        claim=True, complete_note="Claim this task to work on it: the form opens once it is yours."
    )
    claimed = _task(candidate_groups=["managers"], candidate_users=["carol"], claimed_by="bob")
    assert abilities(claimed, BOB) == TaskAbilities(unclaim=True, reassign=True, complete=True)
    assert abilities(claimed, CAROL) == TaskAbilities(
        complete_note="This task is claimed by bob; only they can complete it."
    )
    # An admin may end anybody's claim, hand the task on and complete it without claiming.
    assert abilities(claimed, ADMIN) == TaskAbilities(unclaim=True, reassign=True, complete=True)


def test_an_assigned_task_needs_no_claim_and_a_finished_one_offers_nothing() -> None:
    mine = _task(assignee_id="bob")
    assert abilities(mine, BOB) == TaskAbilities(reassign=True, complete=True)
    assert abilities(_task(assignee_id="bob", status=TaskStatus.COMPLETED), BOB) == TaskAbilities()
    assert abilities(_task(candidate_groups=["managers"]), None) == TaskAbilities(reassign=True, complete=True)
