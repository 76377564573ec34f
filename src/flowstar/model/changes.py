"""What applying a ``CommitPlan`` changes, field by field: the one rule every store follows.

The memory store applies these changes to its Structs; the SQL store turns the same changes
into column values (``flowstar.db._plan``).  So ``None`` means the same thing everywhere:

- a ``RecordUpdate`` sets every field it has, ``None`` included (a waiting step's outcome
  replaces the record's open fields);
- a ``TaskUpdate`` that reassigns sets both assignee fields (``None``: nobody, or no group)
  and clears the claim; one that changes the claim sets both claim fields (``None``: unclaimed);
  any other ``TaskUpdate`` sets only the fields it has a value for (``None``: unchanged);
- an update of an instance writes its state; the fields fixed when it was created
  (``CREATION_FIELDS``) keep their first value;
- an update naming a record or task that does not exist changes nothing.
"""

from __future__ import annotations

from typing import Any

import msgspec

from flowstar.model.state import InstanceState, RecordUpdate, TaskUpdate

__all__ = ["CREATION_FIELDS", "keep_creation_fields", "record_changes", "task_changes"]

# Written with the instance's first commit only: no transition changes them.
CREATION_FIELDS = (
    "workflow_name",
    "workflow_version",
    "tenant_id",
    "created_by",
    "metadata",
    "started_at",
    "idempotency_key",
)


def record_changes(update: RecordUpdate) -> dict[str, Any]:
    """The ``StepRecord`` fields ``update`` sets: all of them, ``None`` included."""
    return {
        "status": update.status,
        "completed_at": update.completed_at,
        "output_data": update.output_data,
        "error": update.error,
        "completed_by": update.completed_by,
    }


def task_changes(change: TaskUpdate) -> dict[str, Any]:
    """The ``HumanTask`` fields ``change`` sets (see the module's docstring for ``None``)."""
    if change.reassign:
        return {
            "assignee_id": change.assignee_id,
            "assignee_group": change.assignee_group,
            "claimed_by": None,
            "claimed_at": None,
        }
    if change.claim:
        return {"claimed_by": change.claimed_by, "claimed_at": change.claimed_at}
    values = {
        "status": change.status,
        "completed_at": change.completed_at,
        "completed_by": change.completed_by,
        "data": change.data,
    }
    return {name: value for name, value in values.items() if value is not None}


def keep_creation_fields(new: InstanceState, stored: InstanceState) -> InstanceState:
    """``new`` as a store keeps it over ``stored``: the creation fields stay ``stored``'s."""
    # Transitions copy the stored state, so the creation fields are usually the very same
    # objects: identity answers without comparing (written out, not a loop: it runs on every
    # commit of the memory store).  Otherwise the stored values are put back, equal or not.
    if (
        new.metadata is stored.metadata
        and new.workflow_name is stored.workflow_name
        and new.workflow_version is stored.workflow_version
        and new.tenant_id is stored.tenant_id
        and new.created_by is stored.created_by
        and new.started_at is stored.started_at
    ):
        return new
    return msgspec.structs.replace(new, **{name: getattr(stored, name) for name in CREATION_FIELDS})
