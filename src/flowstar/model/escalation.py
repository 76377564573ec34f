"""Reminders and escalations of human tasks: durable timers that fire while a task is open.

A human step lists them (``BaseHumanStep(escalations=[...])``).  Each becomes a timer token
of the task's instance when the task opens, so it survives restarts like any timer and
fires on every engine; finishing the task (completed, canceled, the instance failed) drops
its timers, so a late one never acts on a closed task.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import msgspec

from flowstar.model.moments import duration_problem

__all__ = ["Escalation", "EscalationAction"]

EscalationAction = Literal["reminded", "escalated"]


class Escalation(msgspec.Struct, frozen=True, kw_only=True):
    """What happens when a task is still open ``after`` its creation.

    Without a target it is a reminder: the task's people are notified (a
    ``HumanTaskEscalated`` event with ``action="reminded"``, which the notification
    senders deliver), again every ``every`` while the task stays open if that is set.
    With ``to_user`` and/or ``to_group`` it reassigns the task there (its claim ends)
    and notifies the new owners (``action="escalated"``).

    Args:
        after: delay from the task's creation.
        to_user: reassign the task to this user.
        to_group: reassign the task to this group.
        every: repeat a reminder this often while the task is open.
    """

    after: timedelta
    to_user: str | None = None
    to_group: str | None = None
    every: timedelta | None = None

    @property
    def action(self) -> EscalationAction:
        """``"escalated"`` when the task moves, ``"reminded"`` when it only notifies."""
        return "escalated" if self.to_user or self.to_group else "reminded"

    def problems(self, step_name: str) -> list[str]:
        """What is wrong with this escalation of step ``step_name`` (for definition validation)."""
        where = f"step {step_name!r}: escalation"
        found: list[str] = []
        if not isinstance(self.after, timedelta) or self.after <= timedelta(0):
            found.append(f"{where} needs a positive 'after' delay")
        for name, delay in (("after", self.after), ("every", self.every)):
            if isinstance(delay, timedelta) and (problem := duration_problem(delay, f"{where} '{name}'")) is not None:
                found.append(problem)
        if self.every is not None:
            if not isinstance(self.every, timedelta) or self.every <= timedelta(0):
                found.append(f"{where} 'every' must be a positive delay")
            elif self.action == "escalated":
                found.append(f"{where} that reassigns cannot repeat ('every' is for reminders)")
        for name, value in (("to_user", self.to_user), ("to_group", self.to_group)):
            if value is not None and (not isinstance(value, str) or not value):
                found.append(f"{where} '{name}' must be a non-empty string")
        return found
