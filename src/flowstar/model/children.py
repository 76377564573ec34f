"""Child workflows: the names and records that tie a child instance to the parent waiting for it.

A parent's step returns ``StartChild``; the engine starts the child (idempotently, keyed by
the parent's activation, so a step run again after a crash finds the same child) and the
step's commit turns the command into a wait for the signal ``child:<child id>``.  When the
child ends, the engine sends that signal to the parent with ``child_outcome`` as payload;
signals are logged, so a child that ends before its parent's wait is committed is still
delivered (the wait's lookback covers the parent's whole life).
"""

from __future__ import annotations

from typing import Any

from flowstar.model.commands import StartChild, Wait, WaitFor
from flowstar.model.state import InstanceState

__all__ = [
    "CHILD_PREFIX",
    "PARENT_KEY",
    "child_key",
    "child_outcome",
    "child_signal",
    "children_of",
    "parent_of",
    "waiting_for_child",
]

CHILD_PREFIX = "child:"
# The child instance's metadata key naming its parent: {"instance_id": ..., "step": ...}.
PARENT_KEY = "parent"


def child_signal(child_id: str) -> str:
    """The signal a parent waits for until child ``child_id`` ends."""
    return CHILD_PREFIX + child_id


def child_key(parent_id: str, token_id: str) -> str:
    """The idempotency key of the child started by the parent's activation ``token_id``."""
    return f"{CHILD_PREFIX}{parent_id}:{token_id}"


def waiting_for_child(command: StartChild, child_id: str) -> Wait:
    """The wait a ``StartChild`` becomes once its child exists."""
    return Wait(waits=(WaitFor("signal", child_signal(child_id)),), next=command.next)


def parent_of(state: InstanceState) -> str | None:
    """The id of the instance that started ``state`` as its child, if one did."""
    parent = state.metadata.get(PARENT_KEY)
    if not isinstance(parent, dict):
        return None
    instance_id = parent.get("instance_id")
    return instance_id if isinstance(instance_id, str) else None


def children_of(state: InstanceState) -> list[str]:
    """The ids of the children ``state`` waits for now."""
    found = []
    for token in state.tokens.values():
        name = token.wait.name if token.wait is not None else None
        if token.kind == "signal" and name is not None and name.startswith(CHILD_PREFIX):
            found.append(name.removeprefix(CHILD_PREFIX))
    return found


def child_outcome(state: InstanceState, *, data: bool = True) -> dict[str, Any]:
    """What the parent learns of its ended child, under the command's ``result_key``.

    The child's data without the runtime's own ``_``-prefixed keys (left out with
    ``data=False``); ``error`` for a failed or canceled child.
    """
    parent = state.metadata.get(PARENT_KEY)
    key = parent.get("result_key", "child") if isinstance(parent, dict) else "child"
    return {
        key: {
            "id": state.id,
            "workflow": state.workflow_name,
            "version": state.workflow_version,
            "status": state.status.value,
            "data": {k: v for k, v in state.data.items() if not k.startswith("_")} if data else {},
            "error": state.error,
        }
    }
